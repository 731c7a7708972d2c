"""MELD, MELD-Na and MELD 3.0: bounds, dialysis, caps, rounding, worked examples, monotonicity.

Arithmetic in the comments is rounded to 6 decimals (ln 3 = 1.098612).

Sources of the worked examples:
- [Kim21] Kim WR et al., Gastroenterology 2021;161:1887-1895, Table 4: the *inputs* of its sample
  patients, as transcribed in CU-Anschutz-DOS-CORP/sas-macros, meld.sas. The published score
  column could not be retrieved, so every expected value below is computed by hand from the
  formula, with the arithmetic shown.
- [CalcLib] calculatorlib.com MELD worked example: bilirubin 1.9, INR 1.2, creatinine 1.3 ->
  "13.41, which rounds to a MELD score of 13".
- [ameld] R package ampel-leipzig/ameld, tests/testthat/test_meld.R: creatinine 1.9, bilirubin
  4.2, INR 1.2 -> MELD 20 (20.039 unrounded); with sodium 125, UNOS MELD-Na rounded -> 28.
- [TheCalc] thecalculator.co MELD calculator example inputs (INR 1.1, bilirubin 1.5, creatinine
  2.7, sodium 135, no dialysis); its result is computed by hand here.
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from screening.clinical.meld import meld, meld_3, meld_initial, meld_na

# ---------------------------------------------------------------------------------------------
# MELD(i) and MELD: (id, bilirubin, creatinine, INR, dialysis, MELD(i) x 10, MELD)
MELD_CASES = [
    # floors: 0.5 -> 1.0 for all three, MELD(i) = 0.643 -> 0.6 -> 6
    ("floors", 0.5, 0.5, 0.5, False, 6.0, 6),
    ("all normal", 1.0, 1.0, 1.0, False, 6.0, 6),
    # dialysis: creatinine 1.0 -> 4.0; 0.957 ln 4 = 1.326684; + 0.643 = 1.969684 -> 2.0 -> 20
    ("dialysis", 1.0, 1.0, 1.0, True, 20.0, 20),
    # cap: 0.957 ln 4 = 1.326684, 0.378 ln 40 = 1.394396, 1.12 ln 10 = 2.578895; + 0.643
    #   = 5.942975 -> 5.9 -> 59, capped at 40 (meld_initial is not capped)
    ("cap 40", 40.0, 4.0, 10.0, False, 59.0, 40),
    # MELD(i) = 11 exactly: 0.957 ln 1.6 = 0.449793; + 0.643 = 1.092793 -> 1.1 -> 11
    ("meld 11", 1.0, 1.6, 1.0, False, 11.0, 11),
    # 0.957 ln 1.7 = 0.507811; + 0.643 = 1.150811 -> 1.2 -> 12
    ("meld 12", 1.0, 1.7, 1.0, False, 12.0, 12),
    # [CalcLib] 0.957 ln 1.3 = 0.251083, 0.378 ln 1.9 = 0.242621, 1.12 ln 1.2 = 0.204200;
    #   + 0.643 = 1.340904 -> 1.3 -> 13
    ("calculatorlib", 1.9, 1.3, 1.2, False, 13.0, 13),
    # [ameld] 0.957 ln 1.9 = 0.614254, 0.378 ln 4.2 = 0.542462, 1.12 ln 1.2 = 0.204200;
    #   + 0.643 = 2.003916 -> 2.0 -> 20
    ("ameld", 4.2, 1.9, 1.2, False, 20.0, 20),
    # [TheCalc] 0.957 ln 2.7 = 0.950542, 0.378 ln 1.5 = 0.153266, 1.12 ln 1.1 = 0.106747;
    #   + 0.643 = 1.853555 -> 1.9 -> 19
    ("thecalculator", 1.5, 2.7, 1.1, False, 19.0, 19),
    # [Kim21] 0.378 ln 2.5 = 0.346358, 0.957 ln 1.2 = 0.174482, INR 1.0 -> 0; + 0.643
    #   = 1.163840 -> 1.2 -> 12
    ("Kim21 bili 2.5", 2.5, 1.2, 1.0, False, 12.0, 12),
    # [Kim21] 0.378 ln 6 = 0.677285, 1.12 ln 1.5 = 0.454121, 0.957 ln 1.5 = 0.388030; + 0.643
    #   = 2.162436 -> 2.2 -> 22
    ("Kim21 bili 6", 6.0, 1.5, 1.5, False, 22.0, 22),
    # [Kim21] 0.378 ln 12 = 0.939295, 1.12 ln 2.2 = 0.883072, 0.957 ln 1.8 = 0.562512; + 0.643
    #   = 3.027879 -> 3.0 -> 30
    ("Kim21 bili 12 cr 1.8", 12.0, 1.8, 2.2, False, 30.0, 30),
    # [Kim21] as above with 0.957 ln 2.8 = 0.985346: 3.450713 -> 3.5 -> 35
    ("Kim21 bili 12 cr 2.8", 12.0, 2.8, 2.2, False, 35.0, 35),
    # [Kim21] bounds: INR 0.9 -> 1.0, creatinine 4.5 -> 4.0: 0.939295 + 1.326684 + 0.643
    #   = 2.908978 -> 2.9 -> 29
    ("Kim21 bounds", 12.0, 4.5, 0.9, False, 29.0, 29),
]


@pytest.mark.parametrize(
    ("bilirubin", "creatinine", "inr", "dialysis", "initial", "expected"),
    [c[1:] for c in MELD_CASES],
    ids=[c[0] for c in MELD_CASES],
)
def test_meld(bilirubin, creatinine, inr, dialysis, initial, expected):
    assert meld_initial(bilirubin, creatinine, inr, dialysis=dialysis) == initial
    assert meld(bilirubin, creatinine, inr, dialysis=dialysis) == expected


# ---------------------------------------------------------------------------------------------
# MELD-Na: (id, bilirubin, creatinine, INR, sodium, dialysis, expected)
MELD_NA_CASES = [
    # MELD(i) = 11 is not > 11: the sodium term is not applied
    ("meld 11, Na 125", 1.0, 1.6, 1.0, 125.0, False, 11),
    # MELD(i) = 12: 12 + 1.32 x 12 - 0.033 x 12 x 12 = 12 + 15.84 - 4.752 = 23.088 -> 23
    ("meld 12, Na 125", 1.0, 1.7, 1.0, 125.0, False, 23),
    ("meld 12, Na 137", 1.0, 1.7, 1.0, 137.0, False, 12),
    ("floors", 0.5, 0.5, 0.5, 125.0, False, 6),
    # dialysis: MELD(i) 20; 20 + 15.84 - 0.033 x 20 x 12 = 20 + 15.84 - 7.92 = 27.92 -> 28
    ("dialysis", 1.0, 1.0, 1.0, 125.0, True, 28),
    # MELD(i) 59: 59 + 15.84 - 23.364 = 51.476 -> 51, capped at 40
    ("cap 40", 40.0, 4.0, 10.0, 125.0, False, 40),
    # [ameld] MELD(i) 20, Na 125: 27.92 -> 28 (the value ameld's test expects)
    ("ameld", 4.2, 1.9, 1.2, 125.0, False, 28),
    # [TheCalc] MELD(i) 19, Na 135: 19 + 1.32 x 2 - 0.033 x 19 x 2 = 19 + 2.64 - 1.254 = 20.386 -> 20
    ("thecalculator", 1.5, 2.7, 1.1, 135.0, False, 20),
    # [Kim21] MELD(i) 12, Na 131: 12 + 7.92 - 2.376 = 17.544 -> 18
    ("Kim21 bili 2.5", 2.5, 1.2, 1.0, 131.0, False, 18),
    # [Kim21] MELD(i) 22, Na 131: 22 + 7.92 - 4.356 = 25.564 -> 26
    ("Kim21 bili 6", 6.0, 1.5, 1.5, 131.0, False, 26),
    # [Kim21] MELD(i) 30, Na 128: 30 + 11.88 - 8.91 = 32.97 -> 33
    ("Kim21 bili 12 cr 1.8", 12.0, 1.8, 2.2, 128.0, False, 33),
    # [Kim21] MELD(i) 35, Na 128: 35 + 11.88 - 10.395 = 36.485 -> 36
    ("Kim21 bili 12 cr 2.8", 12.0, 2.8, 2.2, 128.0, False, 36),
    # [Kim21] MELD(i) 29, Na 120 -> 125: 29 + 15.84 - 11.484 = 33.356 -> 33
    ("Kim21 bounds", 12.0, 4.5, 0.9, 120.0, False, 33),
]


@pytest.mark.parametrize(
    ("bilirubin", "creatinine", "inr", "sodium", "dialysis", "expected"),
    [c[1:] for c in MELD_NA_CASES],
    ids=[c[0] for c in MELD_NA_CASES],
)
def test_meld_na(bilirubin, creatinine, inr, sodium, dialysis, expected):
    assert meld_na(bilirubin, creatinine, inr, sodium, dialysis=dialysis) == expected


# ---------------------------------------------------------------------------------------------
# MELD 3.0: (id, bilirubin, creatinine, INR, sodium, albumin, female, dialysis, expected)
MELD_3_CASES = [
    ("all normal, male", 1.0, 1.0, 1.0, 137.0, 3.5, False, False, 6),
    ("all normal, female", 1.0, 1.0, 1.0, 137.0, 3.5, True, False, 7),  # 7.33 -> 7
    ("floors", 0.5, 0.5, 0.5, 140.0, 4.0, False, False, 6),
    # dialysis: creatinine -> 3.0; 6 + 11.14 ln 3 = 6 + 12.238541 = 18.238541 -> 18
    ("dialysis", 1.0, 1.0, 1.0, 137.0, 3.5, False, True, 18),
    # 4.56 ln 40 = 16.821290, -0.24 x 12 x ln 40 = -10.623973, 0.82 x 12 = 9.84,
    #   9.09 ln 10 = 20.930498, 11.14 ln 3 = 12.238541, 1.85 x 2 = 3.7,
    #   -1.83 x 2 x ln 3 = -4.020921; + 6 + 1.33 = 56.215436 -> 56, capped at 40
    ("cap 40", 40.0, 3.0, 10.0, 125.0, 1.5, True, False, 40),
    # Albumin alone (bilirubin, creatinine, INR at 1.0, so ln = 0; Na 137): 6 + 1.85 (3.5 - alb).
    #   2.0 -> 6 + 2.775 = 8.775 -> 9; 1.5 -> 6 + 3.7 = 9.7 -> 10; 1.0 is set to 1.5 -> 10
    #   (unbounded it would be 6 + 4.625 = 10.625 -> 11)
    ("albumin 2.0", 1.0, 1.0, 1.0, 137.0, 2.0, False, False, 9),
    ("albumin floor 1.5", 1.0, 1.0, 1.0, 137.0, 1.5, False, False, 10),
    ("albumin 1.0 -> 1.5", 1.0, 1.0, 1.0, 137.0, 1.0, False, False, 10),
    # Rounding half up, exactly on .5 (bilirubin, creatinine, INR at 1.0, so no logarithms):
    # 6 + 0.82 x 11 + 1.85 x 0.8 = 6 + 9.02 + 1.48 = 16.5 -> 17 (Python's round() gives 16)
    ("half up 16.5", 1.0, 1.0, 1.0, 126.0, 2.7, False, False, 17),
    # 6 + 1.33 + 0.82 x 11.5 + 1.85 x 0.4 = 6 + 1.33 + 9.43 + 0.74 = 17.5 -> 18
    #   (in binary floating point this sum is 17.499999999999996)
    ("half up 17.5", 1.0, 1.0, 1.0, 125.5, 3.1, True, False, 18),
    # Not monotone in sodium when bilirubin > 30.5: 4.56 ln 40 = 16.821290, + 6 = 22.821290 -> 23;
    #   with Na 125: + 12 x (0.82 - 0.24 ln 40) = 12 x -0.065331 = -0.783973 -> 22.037317 -> 22
    ("bili 40, Na 137", 40.0, 1.0, 1.0, 137.0, 3.5, False, False, 23),
    ("bili 40, Na 125", 40.0, 1.0, 1.0, 125.0, 3.5, False, False, 22),
    # Not monotone in albumin when creatinine > 2.75: 11.14 ln 3 = 12.238541,
    #   9.09 ln 1.3 = 2.384891; + 6 = 20.623432 -> 21; with albumin 1.5:
    #   + 2 x (1.85 - 1.83 ln 3) = 2 x -0.160460 = -0.320921 -> 20.302511 -> 20
    ("cr 3, albumin 3.5", 1.0, 3.0, 1.3, 137.0, 3.5, False, False, 21),
    ("cr 3, albumin 1.5", 1.0, 3.0, 1.3, 137.0, 1.5, False, False, 20),
    # [Kim21] 4.56 ln 2.5 = 4.178286, 0.82 x 6 = 4.92, -0.24 x 6 x ln 2.5 = -1.319459,
    #   11.14 ln 1.2 = 2.031062, albumin 3.8 -> 3.5 -> 0; + 6 = 15.809889 -> 16
    ("Kim21 bili 2.5 male", 2.5, 1.2, 1.0, 131.0, 3.8, False, False, 16),
    ("Kim21 bili 2.5 female", 2.5, 1.2, 1.0, 131.0, 3.8, True, False, 17),  # 17.139889 -> 17
    # [Kim21] 4.56 ln 6 = 8.170423, 4.92, -0.24 x 6 x ln 6 = -2.580134, 9.09 ln 1.5 = 3.685678,
    #   11.14 ln 1.5 = 4.516881; + 6 = 24.712849 -> 25
    ("Kim21 bili 6 alb 3.5", 6.0, 1.5, 1.5, 131.0, 3.5, False, False, 25),
    # [Kim21] as above + 1.85 x 1.3 = 2.405, -1.83 x 1.3 x ln 1.5 = -0.964601: 26.153247 -> 26
    ("Kim21 bili 6 alb 2.2 male", 6.0, 1.5, 1.5, 131.0, 2.2, False, False, 26),
    ("Kim21 bili 6 alb 2.2 female", 6.0, 1.5, 1.5, 131.0, 2.2, True, False, 27),  # 27.483247 -> 27
    # [Kim21] 4.56 ln 12 = 11.331174, 0.82 x 9 = 7.38, -0.24 x 9 x ln 12 = -5.367398,
    #   9.09 ln 2.2 = 7.167077, 11.14 ln 1.8 = 6.547943, 1.85 x 1.5 = 2.775,
    #   -1.83 x 1.5 x ln 1.8 = -1.613474; + 6 = 34.220322 -> 34
    ("Kim21 bili 12 cr 1.8", 12.0, 1.8, 2.2, 128.0, 2.0, False, False, 34),
    # [Kim21] creatinine 2.8: 11.14 ln 2.8 = 11.469960, -1.83 x 1.5 x ln 2.8 = -2.826305:
    #   37.929508 -> 38; female 39.259508 -> 39
    ("Kim21 bili 12 cr 2.8 male", 12.0, 2.8, 2.2, 128.0, 2.0, False, False, 38),
    ("Kim21 bili 12 cr 2.8 female", 12.0, 2.8, 2.2, 128.0, 2.0, True, False, 39),
    # [Kim21] bounds: Na 120 -> 125, INR 0.9 -> 1.0, creatinine 4.5 -> 3.0: 11.331174 + 9.84
    #   - 0.24 x 12 x ln 12 (7.156531) + 12.238541 + 6 = 32.253184 -> 32; female 33.583184 -> 34
    ("Kim21 bounds male", 12.0, 4.5, 0.9, 120.0, 3.5, False, False, 32),
    ("Kim21 bounds female", 12.0, 4.5, 0.9, 120.0, 3.5, True, False, 34),
]


@pytest.mark.parametrize(
    ("bilirubin", "creatinine", "inr", "sodium", "albumin", "female", "dialysis", "expected"),
    [c[1:] for c in MELD_3_CASES],
    ids=[c[0] for c in MELD_3_CASES],
)
def test_meld_3(bilirubin, creatinine, inr, sodium, albumin, female, dialysis, expected):
    assert meld_3(bilirubin, creatinine, inr, sodium, albumin, female=female, dialysis=dialysis) == expected


# ---------------------------------------------------------------------------------------------
# Bounds and the dialysis rule: each pair of argument sets must give the same score.
BASE = {
    "bilirubin_mg_dl": 2.0,
    "creatinine_mg_dl": 1.4,
    "inr": 1.5,
    "sodium_mmol_l": 130.0,
    "albumin_g_dl": 2.6,
}
MELD_KEYS = ("bilirubin_mg_dl", "creatinine_mg_dl", "inr")
MELD_NA_KEYS = (*MELD_KEYS, "sodium_mmol_l")


KEYS = {meld_initial: MELD_KEYS, meld: MELD_KEYS, meld_na: MELD_NA_KEYS, meld_3: tuple(BASE)}


def _name(value):
    return getattr(value, "__name__", repr(value))


def _call(function, changes, **flags):
    """``function`` on BASE updated with ``changes``, passing only the inputs it takes."""
    keys = KEYS[function]
    arguments = {k: v for k, v in {**BASE, **changes}.items() if k in keys}
    return function(**arguments, **flags)


SAME_SCORE = [
    (meld_initial, {"bilirubin_mg_dl": 0.5}, {"bilirubin_mg_dl": 1.0}),
    (meld_initial, {"creatinine_mg_dl": 0.5}, {"creatinine_mg_dl": 1.0}),
    (meld_initial, {"inr": 0.5}, {"inr": 1.0}),
    (meld_initial, {"creatinine_mg_dl": 5.0}, {"creatinine_mg_dl": 4.0}),
    (meld_na, {"sodium_mmol_l": 120.0}, {"sodium_mmol_l": 125.0}),
    (meld_na, {"sodium_mmol_l": 145.0}, {"sodium_mmol_l": 137.0}),
    (meld_3, {"bilirubin_mg_dl": 0.5}, {"bilirubin_mg_dl": 1.0}),
    (meld_3, {"creatinine_mg_dl": 0.5}, {"creatinine_mg_dl": 1.0}),
    (meld_3, {"inr": 0.5}, {"inr": 1.0}),
    (meld_3, {"creatinine_mg_dl": 3.5}, {"creatinine_mg_dl": 3.0}),
    (meld_3, {"sodium_mmol_l": 118.0}, {"sodium_mmol_l": 125.0}),
    (meld_3, {"sodium_mmol_l": 142.0}, {"sodium_mmol_l": 137.0}),
    (meld_3, {"albumin_g_dl": 1.0}, {"albumin_g_dl": 1.5}),
    (meld_3, {"albumin_g_dl": 4.4}, {"albumin_g_dl": 3.5}),
]


@pytest.mark.parametrize(("function", "left", "right"), SAME_SCORE, ids=_name)
def test_bounds(function, left, right):
    flags = {"female": True} if function is meld_3 else {}
    assert _call(function, left, dialysis=False, **flags) == _call(function, right, dialysis=False, **flags)


@pytest.mark.parametrize(("function", "ceiling"), [(meld_initial, 4.0), (meld_na, 4.0), (meld_3, 3.0)])
def test_dialysis_sets_creatinine_to_its_ceiling(function, ceiling):
    flags = {"female": False} if function is meld_3 else {}
    on_dialysis = _call(function, {"creatinine_mg_dl": 1.1}, dialysis=True, **flags)
    assert on_dialysis == _call(function, {"creatinine_mg_dl": ceiling}, dialysis=False, **flags)
    assert on_dialysis > _call(function, {"creatinine_mg_dl": 1.1}, dialysis=False, **flags)


def test_meld_3_creatinine_ceiling_is_3_not_4():
    flags = {"female": False, "dialysis": False}
    four, three = {"creatinine_mg_dl": 4.0}, {"creatinine_mg_dl": 3.0}
    assert _call(meld_3, four, **flags) == _call(meld_3, three, **flags)
    assert _call(meld_initial, four, dialysis=False) > _call(meld_initial, three, dialysis=False)


# ---------------------------------------------------------------------------------------------
# Invalid input: every laboratory value of every score, and the flags.
SCORES = [meld_initial, meld, meld_na, meld_3]
BAD_VALUES = [
    (math.nan, ValueError),
    (math.inf, ValueError),
    (0.0, ValueError),
    (-1.0, ValueError),
    ("1.2", TypeError),
    (None, TypeError),
    (True, TypeError),
]


def _flags_for(function):
    return {"female": False, "dialysis": False} if function is meld_3 else {"dialysis": False}


INVALID_LABS = [
    (function, key, value, error)
    for function in SCORES
    for key in KEYS[function]
    for value, error in BAD_VALUES
]


@pytest.mark.parametrize(("function", "key", "value", "error"), INVALID_LABS, ids=_name)
def test_invalid_lab_value(function, key, value, error):
    with pytest.raises(error, match=key):
        _call(function, {key: value}, **_flags_for(function))


def test_invalid_value_rejected_even_when_bounded_away():
    # sodium is validated although MELD(i) <= 11 means it is not used
    with pytest.raises(ValueError, match="sodium"):
        meld_na(1.0, 1.0, 1.0, math.nan, dialysis=False)


INVALID_FLAGS = [
    (function, flag, value)
    for function in SCORES
    for flag in _flags_for(function)
    for value in (None, "yes", math.nan, 2)
]


@pytest.mark.parametrize(("function", "flag", "value"), INVALID_FLAGS, ids=_name)
def test_invalid_flag(function, flag, value):
    with pytest.raises(TypeError, match=flag):
        _call(function, {}, **{**_flags_for(function), flag: value})


# ---------------------------------------------------------------------------------------------
# Properties: the monotone directions the module docstring promises, and corners for MELD 3.0.
LAB_RANGES = {
    "bilirubin_mg_dl": (0.05, 80.0),
    "creatinine_mg_dl": (0.05, 15.0),
    "inr": (0.3, 12.0),
    "sodium_mmol_l": (100.0, 170.0),
    "albumin_g_dl": (0.5, 6.5),
}


def _lab(key):
    low, high = LAB_RANGES[key]
    return st.floats(min_value=low, max_value=high, allow_nan=False)


patients = st.fixed_dictionaries({key: _lab(key) for key in LAB_RANGES})

# (score, input, +1 non-decreasing / -1 non-increasing)
MONOTONE = [
    *[(f, key, 1) for f in (meld_initial, meld, meld_na) for key in MELD_KEYS],
    (meld_na, "sodium_mmol_l", -1),
    *[(meld_3, key, 1) for key in MELD_KEYS],
]


@pytest.mark.parametrize(("function", "key", "sign"), MONOTONE, ids=_name)
@settings(deadline=None)
@given(data=st.data(), patient=patients, female=st.booleans(), dialysis=st.booleans())
def test_monotone_in_lab(function, key, sign, data, patient, female, dialysis):
    low, high = sorted((patient[key], data.draw(_lab(key), label="other")))
    flags = {"female": female, "dialysis": dialysis} if function is meld_3 else {"dialysis": dialysis}
    at_low = _call(function, {**patient, key: low}, **flags)
    at_high = _call(function, {**patient, key: high}, **flags)
    assert sign * at_low <= sign * at_high


MONOTONE_FLAGS = [(f, "dialysis") for f in SCORES] + [(meld_3, "female")]


@pytest.mark.parametrize(("function", "flag"), MONOTONE_FLAGS, ids=_name)
@settings(deadline=None)
@given(patient=patients, other=st.booleans())
def test_monotone_in_flag(function, flag, patient, other):
    flags = {name: other for name in _flags_for(function)}  # the other flag, if any, varies too
    assert _call(function, patient, **{**flags, flag: False}) <= _call(function, patient, **{**flags, flag: True})


@settings(deadline=None)
@given(data=st.data(), female=st.booleans(), dialysis=st.booleans())
def test_meld_3_extremes_over_a_box_are_at_corners(data, female, dialysis):
    box, point = {}, {}
    for key in LAB_RANGES:
        low, middle, high = sorted(data.draw(st.lists(_lab(key), min_size=3, max_size=3), label=key))
        box[key], point[key] = (low, high), middle
    flags = {"female": female, "dialysis": dialysis}
    corners = [_call(meld_3, dict(zip(box, corner)), **flags) for corner in itertools.product(*box.values())]
    assert min(corners) <= _call(meld_3, point, **flags) <= max(corners)
