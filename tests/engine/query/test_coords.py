"""Coordinates typed by users: degrees and sexagesimal, clear errors otherwise."""

from __future__ import annotations

import pytest
from astropy import units as u
from astropy.coordinates import Angle

from dvo.errors import QueryError
from dvo.query.coords import parse_dec, parse_ra, parse_radius


@pytest.mark.parametrize(
    "text", ["12:34:56.7", "00:00:00", "23:59:59.99", "12h34m56.7s", "12 34 56.7"]
)
def test_ra_sexagesimal_matches_astropy(text):
    assert parse_ra(text) == pytest.approx(
        Angle(text.replace(" ", ":"), unit=u.hourangle).deg % 360
    )


@pytest.mark.parametrize(
    "text", ["+54:18:00", "-00:30:00", "-05d30m00s", "89:59:59.9", "-90:00:00"]
)
def test_dec_sexagesimal_matches_astropy(text):
    assert parse_dec(text) == pytest.approx(Angle(text, unit=u.deg).deg)


def test_degrees_and_radius_units():
    assert parse_ra("359.5") == 359.5 and parse_ra("360") == 0.0
    assert parse_dec("-12.25") == -12.25
    assert parse_radius("0.5") == 0.5
    assert parse_radius("30arcsec") == pytest.approx(30 / 3600)
    assert parse_radius("10'") == pytest.approx(10 / 60)
    assert parse_radius("1deg") == 1.0


@pytest.mark.parametrize(
    ("fn", "text", "match"),
    [
        (parse_ra, "361", "ra must lie"),
        (parse_ra, "-1", "ra must lie"),
        (parse_ra, "nan", "finite"),
        (parse_ra, "12:61:00", "below 60"),
        (parse_ra, "abc", "cannot read"),
        (parse_dec, "91", "dec must lie"),
        (parse_dec, "-90:00:01", "dec must lie"),
        (parse_dec, "inf", "finite"),
        (parse_radius, "0", "radius must lie"),
        (parse_radius, "200", "radius must lie"),
        (parse_radius, "5 parsec", "cannot read"),
    ],
)
def test_bad_coordinates_are_query_errors(fn, text, match):
    with pytest.raises(QueryError, match=match):
        fn(text)
