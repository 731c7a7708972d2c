"""Child-Pugh points and classes: every cut-off on both sides, worked examples, invalid input."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from screening.clinical.child_pugh import (
    albumin_points,
    ascites_points,
    bilirubin_points,
    child_pugh_class,
    encephalopathy_points,
    inr_points,
    prothrombin_prolongation_points,
)

def _name(value):
    return getattr(value, "__name__", repr(value))


# (function, input, expected points). Values on a cut-off score in the middle band.
POINT_CASES = [
    (bilirubin_points, 0.0, 1),
    (bilirubin_points, 1.99, 1),
    (bilirubin_points, 2.0, 2),
    (bilirubin_points, 2.5, 2),
    (bilirubin_points, 3.0, 2),
    (bilirubin_points, 3.01, 3),
    (bilirubin_points, 25.0, 3),
    (albumin_points, 4.5, 1),
    (albumin_points, 3.51, 1),
    (albumin_points, 3.5, 2),
    (albumin_points, 3.0, 2),
    (albumin_points, 2.8, 2),
    (albumin_points, 2.79, 3),
    (albumin_points, 0.0, 3),
    (inr_points, 0.9, 1),
    (inr_points, 1.69, 1),
    (inr_points, 1.7, 2),
    (inr_points, 2.0, 2),
    (inr_points, 2.3, 2),
    (inr_points, 2.31, 3),
    (inr_points, 6.0, 3),
    (prothrombin_prolongation_points, -1.5, 1),  # faster than control: valid, not prolonged
    (prothrombin_prolongation_points, 0.0, 1),
    (prothrombin_prolongation_points, 3.99, 1),
    (prothrombin_prolongation_points, 4.0, 2),
    (prothrombin_prolongation_points, 5.0, 2),
    (prothrombin_prolongation_points, 6.0, 2),
    (prothrombin_prolongation_points, 6.01, 3),
    (ascites_points, 0, 1),  # International Ascites Club grade 0: none
    (ascites_points, 1, 2),  # grade 1: mild ("slight")
    (ascites_points, 2, 3),  # grade 2: moderate
    (ascites_points, 3, 3),  # grade 3: severe (tense)
    (encephalopathy_points, 0, 1),  # West Haven grade
    (encephalopathy_points, 1, 2),
    (encephalopathy_points, 2, 2),
    (encephalopathy_points, 3, 3),
    (encephalopathy_points, 4, 3),
]


@pytest.mark.parametrize(("points", "value", "expected"), POINT_CASES, ids=_name)
def test_points(points, value, expected):
    assert points(value) == expected


CLASS_CASES = [(5, "A"), (6, "A"), (7, "B"), (8, "B"), (9, "B"), (10, "C"), (12, "C"), (15, "C")]


@pytest.mark.parametrize(("total", "expected"), CLASS_CASES)
def test_class(total, expected):
    assert child_pugh_class(total) == expected


def _total(bilirubin, albumin, inr, ascites, encephalopathy):
    return (
        bilirubin_points(bilirubin)
        + albumin_points(albumin)
        + inr_points(inr)
        + ascites_points(ascites)
        + encephalopathy_points(encephalopathy)
    )


# Worked examples. No published example with exact inputs was found, so each is computed by hand:
# (bilirubin mg/dL, albumin g/dL, INR, ascites IAC grade, West Haven grade) -> total, class.
WORKED_EXAMPLES = [
    # compensated: 1.2 -> 1, 3.9 -> 1, 1.1 -> 1, none -> 1, none -> 1: total 5, class A
    ((1.2, 3.9, 1.1, 0, 0), 5, "A"),
    # every item on a lower cut-off: 2.0 -> 2, 3.5 -> 2, 1.7 -> 2, mild -> 2, grade 1 -> 2: 10, C
    ((2.0, 3.5, 1.7, 1, 1), 10, "C"),
    # 2.5 -> 2, 3.0 -> 2, 1.5 -> 1, mild -> 2, none -> 1: 8, class B
    ((2.5, 3.0, 1.5, 1, 0), 8, "B"),
    # decompensated: 4.1 -> 3, 2.5 -> 3, 2.4 -> 3, severe -> 3, grade 3 -> 3: 15, class C
    ((4.1, 2.5, 2.4, 3, 3), 15, "C"),
    # just below every cut-off: 1.99 -> 1, 3.51 -> 1, 1.69 -> 1, none -> 1, grade 2 -> 2: 6, A
    ((1.99, 3.51, 1.69, 0, 2), 6, "A"),
]


@pytest.mark.parametrize(("inputs", "total", "label"), WORKED_EXAMPLES)
def test_worked_examples(inputs, total, label):
    assert _total(*inputs) == total
    assert child_pugh_class(total) == label


# Any real number is accepted, not only float and int: numpy scalars (read from columns) and
# fractions score as the equal float; integral numpy grades as the equal int.
OTHER_NUMBER_TYPES = [
    (bilirubin_points, np.float64(3.0), 2),
    (bilirubin_points, np.float32(3.5), 3),
    (albumin_points, Fraction(7, 2), 2),
    (inr_points, np.float64(2.31), 3),
    (prothrombin_prolongation_points, np.int64(7), 3),
    (ascites_points, np.int64(2), 3),
    (encephalopathy_points, np.int8(1), 2),
    (child_pugh_class, np.int64(7), "B"),
]


@pytest.mark.parametrize(("function", "value", "expected"), OTHER_NUMBER_TYPES, ids=_name)
def test_other_number_types(function, value, expected):
    assert function(value) == expected


NUMERIC_POINTS = [bilirubin_points, albumin_points, inr_points, prothrombin_prolongation_points]

INVALID_CASES = [
    *[(f, math.nan, ValueError) for f in NUMERIC_POINTS],
    *[(f, math.inf, ValueError) for f in NUMERIC_POINTS],
    *[(f, -math.inf, ValueError) for f in NUMERIC_POINTS],
    *[(f, "2.0", TypeError) for f in NUMERIC_POINTS],
    *[(f, None, TypeError) for f in NUMERIC_POINTS],
    *[(f, True, TypeError) for f in NUMERIC_POINTS],
    (bilirubin_points, -0.1, ValueError),
    (albumin_points, -0.1, ValueError),
    (inr_points, -0.1, ValueError),
    (ascites_points, -1, ValueError),
    (ascites_points, 4, ValueError),
    (ascites_points, 1.0, TypeError),
    (ascites_points, True, TypeError),
    (ascites_points, None, TypeError),
    (encephalopathy_points, -1, ValueError),
    (encephalopathy_points, 5, ValueError),
    (encephalopathy_points, 2.0, TypeError),
    (encephalopathy_points, False, TypeError),
    (ascites_points, np.float64(1.0), TypeError),  # a grade is an integer, whatever its type
    (bilirubin_points, np.bool_(True), TypeError),
    (child_pugh_class, 0, ValueError),
    (child_pugh_class, 4, ValueError),
    (child_pugh_class, 16, ValueError),
    (child_pugh_class, 7.0, TypeError),
    (child_pugh_class, True, TypeError),
]


@pytest.mark.parametrize(("function", "value", "error"), INVALID_CASES, ids=_name)
def test_invalid_input(function, value, error):
    with pytest.raises(error):
        function(value)


# Property: points never fall as the finding worsens (albumin worsens as it falls).
finite = st.floats(min_value=0, max_value=100, allow_nan=False)


RISING_OR_FALLING = [
    (bilirubin_points, 1),
    (inr_points, 1),
    (prothrombin_prolongation_points, 1),
    (albumin_points, -1),
]


@pytest.mark.parametrize(("points", "sign"), RISING_OR_FALLING, ids=_name)
@settings(deadline=None)
@given(a=finite, b=finite)
def test_points_monotone(points, sign, a, b):
    low, high = sorted((a, b))
    assert sign * points(low) <= sign * points(high)


@pytest.mark.parametrize(("points", "grades"), [(ascites_points, range(4)), (encephalopathy_points, range(5))])
def test_grade_points_monotone(points, grades):
    scored = [points(g) for g in grades]
    assert scored == sorted(scored)
