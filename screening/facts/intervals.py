"""Numeric facts as intervals of possible values, and three-valued tests against them.

A fact known exactly is a point; a censored lab (``< 20``) or a score with missing components is
an interval; a missing fact is unbounded. A test is decided only when every possible value gives
the same answer.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ..logic import Truth


class Interval(NamedTuple):
    """Possible values from ``low`` to ``high``; an open end excludes its bound. A tuple: several
    are built per fact test."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    @classmethod
    def point(cls, value: float) -> Interval:
        return cls(value, value, False, False)

    @property
    def is_point(self) -> bool:
        return self.low == self.high

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def contains(self, value: float) -> bool:
        above = value > self.low or (value == self.low and not self.low_open)
        below = value < self.high or (value == self.high and not self.high_open)
        return above and below

    def is_empty(self) -> bool:
        return self.low > self.high or (self.low == self.high and (self.low_open or self.high_open))

    def intersect(self, other: Interval) -> Interval:
        if self.low > other.low or (self.low == other.low and self.low_open):
            low, low_open = self.low, self.low_open
        else:
            low, low_open = other.low, other.low_open
        if self.high < other.high or (self.high == other.high and self.high_open):
            high, high_open = self.high, self.high_open
        else:
            high, high_open = other.high, other.high_open
        return Interval(low, high, low_open, high_open)

    def within(self, other: Interval) -> bool:
        """Every value of self lies in other."""
        low_ok = self.low > other.low or (self.low == other.low and (self.low_open or not other.low_open))
        high_ok = self.high < other.high or (self.high == other.high and (self.high_open or not other.high_open))
        return low_ok and high_ok

    def hull(self, other: Interval) -> Interval:
        low, low_open = min((self.low, self.low_open), (other.low, other.low_open))
        high, high_open = max((self.high, not self.high_open), (other.high, not other.high_open))
        return Interval(low, high, low_open, not high_open)

    def inner_low(self) -> float:
        """The smallest value in the interval (or just above an open bound)."""
        return math.nextafter(self.low, math.inf) if self.low_open else self.low

    def inner_high(self) -> float:
        return math.nextafter(self.high, -math.inf) if self.high_open else self.high


def test(fact: Interval, accepted: Interval) -> Truth:
    """True if every possible value is accepted, False if none is, else unknown."""
    if fact.within(accepted):
        return True
    if fact.intersect(accepted).is_empty():
        return False
    return None


def test_integer(fact: Interval, accepted: Interval) -> Truth:
    """As :func:`test`, for a fact that takes integer values only (scores, grades, age)."""
    low = math.ceil(fact.inner_low()) if math.isfinite(fact.low) else fact.low
    high = math.floor(fact.inner_high()) if math.isfinite(fact.high) else fact.high
    return test(Interval(low, high), accepted)
