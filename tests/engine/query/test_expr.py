"""The where-language: parsing, checking and evaluation (never eval)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dvo.errors import QuerySyntaxError
from dvo.query.expr import check, evaluate, parse

KINDS = {"g": "f", "r": "f", "n": "i", "flt": "U"}


def _cols(rng, n=50):
    return {
        "g": rng.normal(19, 2, n),
        "r": np.where(rng.random(n) < 0.2, np.nan, rng.normal(19, 2, n)),
        "n": rng.integers(0, 10, n),
        "flt": rng.choice(["g", "r", "i"], n),
    }


@pytest.mark.parametrize(
    ("text", "fn"),
    [
        ("g < 19", lambda c: c["g"] < 19),
        ("g<19 AND n>=3", lambda c: (c["g"] < 19) & (c["n"] >= 3)),
        ("not (g < 19 or n == 2)", lambda c: ~((c["g"] < 19) | (c["n"] == 2))),
        ("-g + 2 * r / 4 > -10", lambda c: -c["g"] + 2 * c["r"] / 4 > -10),
        ("abs(g - r) <= 1e-1 * 5", lambda c: np.abs(c["g"] - c["r"]) <= 0.5),
        ("isnan(r) or flt == 'i'", lambda c: np.isnan(c["r"]) | (c["flt"] == "i")),
        ('flt != "g" and isfinite(r)', lambda c: (c["flt"] != "g") & np.isfinite(c["r"])),
        ("g - 1 - 1 < r", lambda c: c["g"] - 2 < c["r"]),
        ("g / 2 / 2 > 4.5", lambda c: c["g"] / 4 > 4.5),
        ("n > .5", lambda c: c["n"] > 0.5),
    ],
)
def test_evaluation_matches_numpy(rng, text, fn):
    cols = _cols(rng)
    e = parse(text)
    check(e, KINDS)
    with np.errstate(invalid="ignore"):
        assert np.array_equal(evaluate(e, cols), fn(cols))


def test_precedence_and_associativity():
    e = parse("a or b and not c")
    assert e.root.op == "or" and e.root.args[1].op == "and"
    assert parse("1 - 2 - 3 < 0").root.args[0].args[0].value == "-"


def test_never_evaluates_python():
    for text in ("__import__('os').system('true')", "g.__class__ < 1", "lambda: 1", "g[0] < 1"):
        with pytest.raises(QuerySyntaxError):
            check(parse(text), KINDS)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="gr n<>=!()+-*/'\"andotis0123456789.e ", max_size=30))
def test_random_text_parses_or_raises_query_syntax_error(text):
    try:
        e = parse(text)
        check(e, KINDS)
    except QuerySyntaxError as exc:
        assert 0 <= exc.position <= len(text)
        return
    cols = {
        "g": np.array([1.0, np.nan]),
        "r": np.array([2.0, 3.0]),
        "n": np.array([1, 2]),
        "flt": np.array(["g", "r"]),
    }
    assert evaluate(e, cols).dtype == bool


def test_column_names_are_case_sensitive_with_a_hint():
    with pytest.raises(QuerySyntaxError, match="unknown column 'G' \\(did you mean 'g'\\?\\)"):
        check(parse("G < 19"), KINDS)
