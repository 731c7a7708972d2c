"""Child-Pugh (Child-Turcotte-Pugh) score: the points for each item, and the class of a total.

Sources: Child CG, Turcotte JG. Surgery and portal hypertension. In: Child CG, ed. *The Liver and
Portal Hypertension*. Philadelphia: Saunders; 1964:50-64 (the original classification);
Pugh RNH, Murray-Lyon IM, Dawson JL, Pietroni MC, Williams R. Transection of the oesophagus for
bleeding oesophageal varices. *Br J Surg* 1973;60:646-9 (the 1-3 point table, prothrombin time
prolongation, classes A 5-6, B 7-9, C 10-15). The INR bands are the later modified convention
(e.g. Cleveland Clinic J Med and Harrison's tables: <1.7, 1.7-2.3, >2.3).

Inputs are plain numbers in conventional units; unit conversion happens before this module.

Boundary convention: a value exactly on a cut-off scores in the middle band (both ends of the
middle band are inclusive), as Pugh's "2-3 mg/dL" reads:

    item                                1 point   2 points       3 points
    bilirubin, mg/dL                    < 2       2 to 3         > 3       (2.0 and 3.0 score 2)
    albumin, g/dL                       > 3.5     2.8 to 3.5     < 2.8     (3.5 and 2.8 score 2)
    INR                                 < 1.7     1.7 to 2.3     > 2.3     (1.7 and 2.3 score 2)
    prothrombin time, s over control    < 4       4 to 6         > 6       (4.0 and 6.0 score 2)
    ascites, International Ascites      0 none    1 mild         2 moderate, 3 severe
      Club grade                                  ("slight")     ("moderate" or worse)
    encephalopathy, West Haven grade    0         1-2            3-4

Invalid input raises ``ValueError`` (NaN, infinity, a negative concentration or ratio, a grade out
of range) or ``TypeError`` (not a number; a bool or float where a grade is expected). A prothrombin
time shorter than control (negative prolongation) is a valid result and scores 1.
"""

from __future__ import annotations

import math
import numbers
from typing import Literal

ChildPughClass = Literal["A", "B", "C"]

# (low, high) of the inclusive middle band, per item.
_BILIRUBIN_MG_DL = (2.0, 3.0)
_ALBUMIN_G_DL = (2.8, 3.5)
_INR = (1.7, 2.3)
_PT_PROLONGATION_S = (4.0, 6.0)

_ASCITES_POINTS = {0: 1, 1: 2, 2: 3, 3: 3}  # International Ascites Club grade -> points
_ENCEPHALOPATHY_POINTS = {0: 1, 1: 2, 2: 2, 3: 3, 4: 3}  # West Haven grade -> points

_CLASSES: tuple[tuple[int, int, ChildPughClass], ...] = ((5, 6, "A"), (7, 9, "B"), (10, 15, "C"))


def _number(name: str, value: float, *, negative_ok: bool = False) -> float:
    if type(value) not in (float, int) and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if value < 0 and not negative_ok:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    return value


def _grade(name: str, value: int, table: dict[int, int]) -> int:
    if type(value) is not int and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{name} must be an integer grade, got {value!r}")
    if int(value) not in table:
        raise ValueError(f"{name} must be one of {sorted(table)}, got {value!r}")
    return table[int(value)]


def _rising(value: float, band: tuple[float, float]) -> int:
    low, high = band
    return 1 if value < low else 2 if value <= high else 3


def bilirubin_points(mg_dl: float) -> int:
    """Points for total bilirubin in mg/dL: <2 -> 1, 2-3 inclusive -> 2, >3 -> 3 (Pugh 1973)."""
    return _rising(_number("bilirubin_mg_dl", mg_dl), _BILIRUBIN_MG_DL)


def albumin_points(g_dl: float) -> int:
    """Points for serum albumin in g/dL: >3.5 -> 1, 2.8-3.5 inclusive -> 2, <2.8 -> 3 (Pugh 1973)."""
    value = _number("albumin_g_dl", g_dl)
    low, high = _ALBUMIN_G_DL
    return 1 if value > high else 2 if value >= low else 3


def inr_points(inr: float) -> int:
    """Points for INR: <1.7 -> 1, 1.7-2.3 inclusive -> 2, >2.3 -> 3 (modified Child-Pugh)."""
    return _rising(_number("inr", inr), _INR)


def prothrombin_prolongation_points(seconds: float) -> int:
    """Points for prothrombin time prolonged over control, in seconds: <4 -> 1, 4-6 -> 2, >6 -> 3.

    Pugh 1973. A negative value (clotting faster than control) is valid and scores 1.
    """
    return _rising(_number("prothrombin_prolongation_s", seconds, negative_ok=True), _PT_PROLONGATION_S)


def ascites_points(grade: int) -> int:
    """Points for ascites by International Ascites Club grade (0 none, 1 mild, 2 moderate, 3 severe).

    Child-Pugh scores none 1, mild ("slight") 2, moderate or severe 3.
    """
    return _grade("ascites_grade", grade, _ASCITES_POINTS)


def encephalopathy_points(west_haven_grade: int) -> int:
    """Points for hepatic encephalopathy by West Haven grade: 0 -> 1, 1-2 -> 2, 3-4 -> 3."""
    return _grade("encephalopathy_grade", west_haven_grade, _ENCEPHALOPATHY_POINTS)


def child_pugh_class(total: int) -> ChildPughClass:
    """Class of a Child-Pugh total: A 5-6, B 7-9, C 10-15 (Pugh 1973). ValueError outside 5..15."""
    if isinstance(total, bool) or not isinstance(total, numbers.Integral):
        raise TypeError(f"Child-Pugh total must be an integer, got {total!r}")
    for low, high, label in _CLASSES:
        if low <= total <= high:
            return label
    raise ValueError(f"Child-Pugh total must be between 5 and 15, got {total!r}")
