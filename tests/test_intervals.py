"""Numeric facts as intervals: membership, emptiness, intersection, inclusion, hull, inner bounds
and the three-valued tests, with open and closed ends (a censored lab ``< 20`` is ``[0, 20)``,
a missing fact ``[-inf, inf]``).

Intervals are written as in mathematics: ``[`` and ``]`` include the bound, ``(`` and ``)`` exclude it.
"""

from __future__ import annotations

import math

import pytest

from screening.facts.intervals import Interval
from screening.facts.intervals import test as interval_test  # not collected as a test
from screening.facts.intervals import test_integer as integer_test

T, F, U = True, False, None


def iv(text: str) -> Interval:
    """``"[1, 2)"`` -> ``Interval(1.0, 2.0, False, True)``; ``inf`` and ``-inf`` are allowed."""
    low, high = (float(part) for part in text[1:-1].split(","))
    return Interval(low, high, text[0] == "(", text[-1] == ")")


def test_the_default_interval_is_unbounded():
    assert Interval() == iv("[-inf, inf]")
    assert (Interval(high=2.0).low, Interval(low=2.0).high) == (-math.inf, math.inf)


CONTAINS = [  # interval, value, contained
    ("[1, 2]", 1.0, T), ("[1, 2]", 1.5, T), ("[1, 2]", 2.0, T), ("[1, 2]", 0.5, F), ("[1, 2]", 2.5, F),
    ("(1, 2)", 1.0, F), ("(1, 2)", 1.5, T), ("(1, 2)", 2.0, F),
    ("(1, 2]", 1.0, F), ("(1, 2]", 2.0, T), ("[1, 2)", 1.0, T), ("[1, 2)", 2.0, F),
    ("[3, 3]", 3.0, T), ("[3, 3]", 3.5, F),
    ("[-inf, 20)", -1e300, T), ("[-inf, 20)", 20.0, F),
]


@pytest.mark.parametrize(("interval", "value", "expected"), CONTAINS)
def test_contains(interval, value, expected):
    assert iv(interval).contains(value) is expected


SHAPE = [  # interval, is_point, bounded, is_empty
    ("[3, 3]", T, T, F),
    ("[1, 2]", F, T, F),
    ("(1, 2)", F, T, F),
    ("[3, 3)", T, T, T),
    ("(3, 3]", T, T, T),
    ("[2, 1]", F, T, T),
    ("[1, inf]", F, F, F),
    ("[-inf, 1]", F, F, F),
    ("[-inf, inf]", F, F, F),
]


@pytest.mark.parametrize(("interval", "point", "bounded", "empty"), SHAPE)
def test_shape(interval, point, bounded, empty):
    got = iv(interval)
    assert (got.is_point, got.bounded, got.is_empty()) == (point, bounded, empty)


INTERSECT = [  # a, b, a & b (also b & a)
    ("[1, 3]", "[2, 4]", "[2, 3]"),
    ("[1, 3]", "(1, 3)", "(1, 3)"),  # same bounds: the open end wins, on either side
    ("[1, 3)", "[1, 3]", "[1, 3)"),
    ("(0, 3]", "[1, 3]", "[1, 3]"),  # the higher low wins whatever its openness
    ("[1, 5)", "[1, 3]", "[1, 3]"),  # the lower high wins whatever its openness
    ("[-inf, 2)", "[2, inf]", "[2, 2)"),  # touching at an open end: empty
]


@pytest.mark.parametrize(("a", "b", "expected"), INTERSECT)
def test_intersect(a, b, expected):
    assert iv(a).intersect(iv(b)) == iv(b).intersect(iv(a)) == iv(expected)


WITHIN = [  # a, b, every value of a lies in b
    ("[1, 2]", "[1, 2]", T),
    ("(1, 2)", "[1, 2]", T),
    ("(1, 2]", "(1, 2]", T),
    ("[1, 2]", "(1, 2]", F),
    ("[1, 2]", "[1, 2)", F),
    ("[1, 2)", "[1, 2]", T),
    ("[0, 2]", "[1, 3]", F),
    ("[2, 4]", "[1, 3]", F),
    ("[1, 2]", "[-inf, inf]", T),
    ("[-inf, 2]", "[0, inf]", F),
]


@pytest.mark.parametrize(("a", "b", "expected"), WITHIN)
def test_within(a, b, expected):
    assert iv(a).within(iv(b)) is expected


HULL = [  # a, b, the smallest interval holding both (also b hull a)
    ("[1, 2]", "[3, 4]", "[1, 4]"),
    ("[1, 3]", "[0, 2]", "[0, 3]"),
    ("(1, 2)", "[1, 2]", "[1, 2]"),  # same bounds: the closed end wins
    ("(1, 2)", "(1, 3]", "(1, 3]"),
    ("[1, 2)", "(1, 2)", "[1, 2)"),
    ("(0, 5)", "[1, 2]", "(0, 5)"),
]


@pytest.mark.parametrize(("a", "b", "expected"), HULL)
def test_hull(a, b, expected):
    assert iv(a).hull(iv(b)) == iv(b).hull(iv(a)) == iv(expected)


INNER = [  # interval, inner_low, inner_high
    ("[1, 2]", 1.0, 2.0),
    ("(1, 2)", math.nextafter(1.0, 2.0), math.nextafter(2.0, 1.0)),
    ("(-5, -1)", math.nextafter(-5.0, 0.0), math.nextafter(-1.0, -2.0)),  # negative ends move inwards too
    ("[-inf, 20)", -math.inf, math.nextafter(20.0, 0.0)),
]


@pytest.mark.parametrize(("interval", "low", "high"), INNER)
def test_inner_bounds(interval, low, high):
    assert (iv(interval).inner_low(), iv(interval).inner_high()) == (low, high)


TESTS = [  # fact, accepted, test
    ("[5, 5]", "[5, inf]", T),
    ("[5, 5]", "(5, inf]", F),
    ("[4, 6]", "[5, inf]", U),
    ("[0, 20)", "[-inf, 20]", T),  # "< 20" against "<= 20"
    ("[0, 20)", "[20, inf]", F),
    ("[-inf, 2]", "[-1, inf]", U),  # a fact unbounded below may lie under any cut-off
    ("[-inf, inf]", "[0, 1]", U),
]


@pytest.mark.parametrize(("fact", "accepted", "expected"), TESTS)
def test_three_valued_test(fact, accepted, expected):
    assert interval_test(iv(fact), iv(accepted)) is expected


INTEGER_TESTS = [  # integer fact, accepted, test: only integer values are possible
    ("(4, 6)", "[5, 5]", T),
    ("[4.5, 5.5]", "[5, 5]", T),
    ("[-inf, 2.5]", "[-inf, 2]", T),
    ("(7, 10)", "[10, inf]", F),
    ("(6, 10]", "[10, inf]", U),
    ("[7, inf]", "[-inf, 9]", U),
]


@pytest.mark.parametrize(("fact", "accepted", "expected"), INTEGER_TESTS)
def test_integer_test(fact, accepted, expected):
    assert integer_test(iv(fact), iv(accepted)) is expected
