"""Coordinates as users type them: decimal degrees or sexagesimal.

RA: ``210.8``, ``14:03:12.5``, ``14h03m12.5s``, ``14 03 12.5`` (hours when sexagesimal).
Dec: ``54.3``, ``+54:18:00``, ``-05d30m00s``, ``54 18 00`` (degrees). Radii: degrees by
default, or with a unit suffix ``30s``/``30"``/``30arcsec``, ``10m``/``10'``/``10arcmin``,
``1d``/``1deg``. Anything else, NaN, or out of range is a :class:`dvo.errors.QueryError`.

Examples
--------
>>> parse_ra("12:34:56.7")
188.73625
>>> parse_dec("-00:30:00")
-0.5
>>> parse_radius("90arcsec")
0.025
"""

from __future__ import annotations

import math
import re

from dvo.errors import QueryError

__all__ = ["parse_ra", "parse_dec", "parse_radius", "parse_position"]

_SEXA = re.compile(
    r"^\s*([+-]?)\s*(\d+(?:\.\d*)?)\s*[:hd° ]\s*(\d+(?:\.\d*)?)\s*"
    r"(?:[:m' ]\s*(\d+(?:\.\d*)?)\s*[s\"]?)?\s*$",
    re.IGNORECASE,
)
_RADIUS = re.compile(
    r"^\s*(\d*\.?\d+(?:[eE][+-]?\d+)?)\s*(deg|d|°|arcmin|amin|m|'|arcsec|asec|s|\")?\s*$"
)
_RADIUS_UNIT = {
    None: 1.0,
    "deg": 1.0,
    "d": 1.0,
    "°": 1.0,
    "arcmin": 1 / 60,
    "amin": 1 / 60,
    "m": 1 / 60,
    "'": 1 / 60,
    "arcsec": 1 / 3600,
    "asec": 1 / 3600,
    "s": 1 / 3600,
    '"': 1 / 3600,
}


def _number(text: str, what: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value):
        raise QueryError(f"{what}: not a finite number: {text!r}")
    return value


def _sexagesimal(text: str, what: str) -> float:
    m = _SEXA.match(text)
    if m is None:
        raise QueryError(f"{what}: cannot read {text!r} (degrees, or sexagesimal like 12:34:56.7)")
    sign, a, b, c = m.groups()
    minutes, seconds = float(b), float(c or 0.0)
    if minutes >= 60 or seconds >= 60:
        raise QueryError(f"{what}: minutes and seconds must be below 60 in {text!r}")
    value = float(a) + minutes / 60 + seconds / 3600
    return -value if sign == "-" else value


def parse_ra(text) -> float:
    """Right ascension in degrees from degrees or ``HH:MM:SS.s``; must lie in [0, 360]."""
    value = _number(str(text), "ra")
    if value is None:
        value = _sexagesimal(str(text), "ra") * 15.0
    if not 0.0 <= value <= 360.0:
        raise QueryError(f"ra must lie in [0, 360] deg, got {text}")
    return round(value, 12) % 360.0


def parse_dec(text) -> float:
    """Declination in degrees from degrees or ``±DD:MM:SS.s``; must lie in [-90, 90]."""
    value = _number(str(text), "dec")
    if value is None:
        value = _sexagesimal(str(text), "dec")
    if not -90.0 <= value <= 90.0:
        raise QueryError(f"dec must lie in [-90, 90] deg, got {text}")
    return round(value, 12)


def parse_radius(text) -> float:
    """A radius in degrees (a bare number) or with a unit suffix; must lie in (0, 180]."""
    m = _RADIUS.match(str(text))
    if m is None:
        raise QueryError(f"radius: cannot read {text!r} (degrees, or 10arcsec, 5arcmin, 1deg)")
    value = float(m.group(1)) * _RADIUS_UNIT[m.group(2)]
    if not 0.0 < value <= 180.0:
        raise QueryError(f"radius must lie in (0, 180] deg, got {text}")
    return value


def parse_position(ra, dec) -> tuple[float, float]:
    """(ra, dec) in degrees from two strings (see :func:`parse_ra`, :func:`parse_dec`)."""
    return parse_ra(ra), parse_dec(dec)
