"""MELD, MELD-Na and MELD 3.0, as the OPTN (US liver allocation) computes them.

Sources:

- MELD: Kamath PS et al. *Hepatology* 2001;33:464-70; bounds from Wiesner R et al.
  *Gastroenterology* 2003;124:91-6; OPTN Policy 9.1.D *MELD Score* (as amended January 2016).
- MELD-Na: Kim WR et al. *N Engl J Med* 2008;359:1018-26; OPTN Policy 9.1.D (January 2016).
- MELD 3.0: Kim WR et al. *Gastroenterology* 2021;161:1887-1895.e4; OPTN Policy 9.1.D (in effect
  13 July 2023). The paper sets no maximum; the OPTN caps the allocation score at 40, as here.

Inputs are plain numbers in conventional units (mg/dL, mmol/L = mEq/L, g/dL); ``dialysis`` means
two or more dialysis treatments, or 24 hours of CVVHD, in the week before the creatinine test.
Every laboratory value must be finite and positive (``ValueError`` otherwise; ``TypeError`` for a
non-number or a non-boolean flag), even one that a bound or the dialysis rule then replaces.

Rounding: the policy's "round" is implemented as round half up with ``decimal.ROUND_HALF_UP``,
never Python's ``round`` (which rounds half to even: ``round(12.5) == 12``). Float noise is first
removed by rounding to 9 decimal places, so a score that is exactly ``x.5`` in decimal arithmetic
(possible for MELD 3.0 when bilirubin, creatinine and INR are at most 1.0) rounds up whatever its
binary representation.

Monotonicity, for callers that bound a score over a box of inputs by evaluating its corners:

- ``meld_initial``, ``meld`` and ``meld_na`` are non-decreasing in bilirubin, creatinine, INR and
  ``dialysis``; ``meld_na`` is non-increasing in sodium. The all-low and all-high corners bound them.
- ``meld_3`` is non-decreasing in bilirubin, creatinine, INR, ``female`` and ``dialysis``, but is
  **not** monotone in sodium or albumin: a lower sodium raises it only while bilirubin is below
  exp(0.82/0.24) = 30.5 mg/dL, a lower albumin only while creatinine is below exp(1.85/1.83) =
  2.75 mg/dL. After bounding it is multilinear in (ln bilirubin, sodium, ln INR, ln creatinine,
  albumin), so its extremes over a box lie at corners: evaluate all 2^5 of them.

The monotone directions hold exactly in floating point too: each input enters one term that is
monotone in it (the interactions are written as ``ln(bili) * (4.56 - 0.24 * (137 - Na))``), and the
sodium step of MELD-Na is done in decimal arithmetic.
"""

from __future__ import annotations

import math
import numbers
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

LAB_FLOOR = 1.0  # bilirubin, creatinine and INR below 1.0 are set to 1.0 (all three scores)
MELD_CREATININE_MAX = 4.0  # MELD / MELD-Na; also the value used after dialysis
MELD3_CREATININE_MAX = 3.0  # MELD 3.0; also the value used after dialysis
SODIUM_BOUNDS = (125.0, 137.0)  # mmol/L
ALBUMIN_BOUNDS = (1.5, 3.5)  # g/dL, MELD 3.0
SODIUM_STEP_ABOVE = 11  # MELD-Na applies the sodium term only when MELD(i) > 11
MAX_SCORE = 40

_DENOISE = Decimal("1e-9")


def _lab(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return value


def _flag(name: str, value: bool) -> bool:
    if value not in (True, False):  # accepts numpy booleans; rejects None and NaN
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return min(max(value, low), high)


def _round_half_up(value: float | Decimal, quantum: str) -> Decimal:
    exact = value if isinstance(value, Decimal) else Decimal(value)
    return exact.quantize(_DENOISE, ROUND_HALF_EVEN).quantize(Decimal(quantum), ROUND_HALF_UP)


def _meld_i(bilirubin_mg_dl: float, creatinine_mg_dl: float, inr: float, dialysis: bool) -> Decimal:
    bilirubin = max(_lab("bilirubin_mg_dl", bilirubin_mg_dl), LAB_FLOOR)
    creatinine = _clamp(_lab("creatinine_mg_dl", creatinine_mg_dl), (LAB_FLOOR, MELD_CREATININE_MAX))
    inr = max(_lab("inr", inr), LAB_FLOOR)
    if _flag("dialysis", dialysis):
        creatinine = MELD_CREATININE_MAX
    raw = 0.957 * math.log(creatinine) + 0.378 * math.log(bilirubin) + 1.120 * math.log(inr) + 0.643
    return _round_half_up(raw, "0.1") * 10


def meld_initial(bilirubin_mg_dl: float, creatinine_mg_dl: float, inr: float, *, dialysis: bool) -> float:
    """MELD(i) of OPTN Policy 9.1.D: rounded to the tenth, times 10; not capped at 40.

    MELD(i) = 0.957 ln(Cr) + 0.378 ln(bili) + 1.120 ln(INR) + 0.643, with bilirubin, creatinine and
    INR below 1.0 set to 1.0 and creatinine above 4.0, or after dialysis, set to 4.0; "rounded to
    the tenth decimal place and then multiplied by 10" (half up). The result is a whole number
    (e.g. 1.8536 -> 1.9 -> 19.0). Non-decreasing in every input.
    """
    return float(_meld_i(bilirubin_mg_dl, creatinine_mg_dl, inr, dialysis))


def meld(bilirubin_mg_dl: float, creatinine_mg_dl: float, inr: float, *, dialysis: bool) -> int:
    """The original (pre-2016) OPTN MELD: ``meld_initial`` capped at 40.

    Kamath 2001 with the UNOS bounds (OPTN Policy 9.1.D). Ranges from 6 to 40; non-decreasing in
    bilirubin, creatinine, INR and dialysis.
    """
    return min(MAX_SCORE, int(_meld_i(bilirubin_mg_dl, creatinine_mg_dl, inr, dialysis)))


def meld_na(
    bilirubin_mg_dl: float, creatinine_mg_dl: float, inr: float, sodium_mmol_l: float, *, dialysis: bool
) -> int:
    """MELD-Na, the OPTN allocation MELD from January 2016 to July 2023.

    OPTN Policy 9.1.D (2016), in this order:

    1. MELD(i) as in :func:`meld_initial`: rounded to the tenth decimal place, then times 10.
    2. Only if MELD(i) > 11: MELD = MELD(i) + 1.32 (137 - Na) - 0.033 MELD(i) (137 - Na), with
       sodium below 125 set to 125 and above 137 set to 137 (computed in decimal arithmetic).
    3. Round half up to a whole number. The policy text gives no rounding for step 2; the OPTN
       reports whole-number scores, and step 2 is rounded once, after the sodium term.
    4. Cap at 40. (Capping MELD(i) at 40 before step 2 gives the same result: at MELD(i) = 40 the
       sodium term vanishes, 1.32 = 0.033 x 40, and above it the result exceeds 40.)

    Non-decreasing in bilirubin, creatinine, INR and dialysis; non-increasing in sodium.
    """
    sodium = _clamp(_lab("sodium_mmol_l", sodium_mmol_l), SODIUM_BOUNDS)
    score = _meld_i(bilirubin_mg_dl, creatinine_mg_dl, inr, dialysis)
    if score > SODIUM_STEP_ABOVE:
        deficit = Decimal(137) - Decimal(sodium)
        score = score + Decimal("1.32") * deficit - Decimal("0.033") * score * deficit
    return min(MAX_SCORE, int(_round_half_up(score, "1")))


def meld_3(
    bilirubin_mg_dl: float,
    creatinine_mg_dl: float,
    inr: float,
    sodium_mmol_l: float,
    albumin_g_dl: float,
    *,
    female: bool,
    dialysis: bool,
) -> int:
    """MELD 3.0 (Kim 2021), the OPTN allocation MELD since 13 July 2023.

    MELD 3.0 = 1.33 (female) + 4.56 ln(bili) + 0.82 (137 - Na) - 0.24 (137 - Na) ln(bili)
    + 9.09 ln(INR) + 11.14 ln(Cr) + 1.85 (3.5 - alb) - 1.83 (3.5 - alb) ln(Cr) + 6,
    with bilirubin, creatinine and INR below 1.0 set to 1.0; creatinine above 3.0, or after
    dialysis, set to 3.0; sodium bounded to 125-137 mmol/L; albumin bounded to 1.5-3.5 g/dL.
    Rounded half up to a whole number, then capped at 40 (OPTN; the paper has no cap). The minimum
    is 6 by construction.

    OPTN gives candidates aged 12-17 the 1.33 points whatever their sex (intercept 7.33): pass
    ``female=True`` for them. Non-decreasing in bilirubin, creatinine, INR, ``female`` and
    ``dialysis``; not monotone in sodium or albumin (see the module docstring): bound it over a box
    by evaluating all corners.
    """
    bilirubin = max(_lab("bilirubin_mg_dl", bilirubin_mg_dl), LAB_FLOOR)
    creatinine = _clamp(_lab("creatinine_mg_dl", creatinine_mg_dl), (LAB_FLOOR, MELD3_CREATININE_MAX))
    inr = max(_lab("inr", inr), LAB_FLOOR)
    sodium = _clamp(_lab("sodium_mmol_l", sodium_mmol_l), SODIUM_BOUNDS)
    albumin = _clamp(_lab("albumin_g_dl", albumin_g_dl), ALBUMIN_BOUNDS)
    female = _flag("female", female)
    if _flag("dialysis", dialysis):
        creatinine = MELD3_CREATININE_MAX
    sodium_deficit = 137.0 - sodium
    albumin_deficit = 3.5 - albumin
    raw = (
        6.0
        + (1.33 if female else 0.0)
        + 9.09 * math.log(inr)
        + math.log(bilirubin) * (4.56 - 0.24 * sodium_deficit)
        + 0.82 * sodium_deficit
        + math.log(creatinine) * (11.14 - 1.83 * albumin_deficit)
        + 1.85 * albumin_deficit
    )
    return min(MAX_SCORE, int(_round_half_up(raw, "1")))
