"""A small condition algebra over flat facts, and each leaf's (true, false) conditions.

A condition is a tuple: ``("cmp", op, key, value)``, ``("ex", key)``, ``("nex", key)``,
``("and", conds)``, ``("or", conds)``, ``TRUE`` or ``FALSE``. A comparison on an absent key is
false, so a leaf is true when its true-condition holds, false when its false-condition holds, and
unknown when neither does. The durable_rules compiler writes conditions as its JSON; the
vectorized evaluator evaluates them over columns. Both get every leaf's meaning from
:func:`leaf_conditions`, over the keys of :mod:`screening.evaluators.flat`.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import EvaluatorGap
from ..facts.catalog import FACTS
from ..facts.intervals import Interval
from ..rules.loader import THRESHOLD_MAGNITUDE
from ..rules.model import Compare, HasCondition, HasMedication, HasProcedure, ImagingFinding, Is, LabResult, Op, Range
from .explain import _ACCEPT, _threshold

# -- the algebra ---------------------------------------------------------------------

Cond = tuple  # ("cmp", op, key, value) | ("ex", key) | ("nex", key) | ("and", conds) | ("or", conds) | ("true",) | ("false",)
TRUE: Cond = ("true",)
FALSE: Cond = ("false",)
_NEGATED_OP = {"lt": "gte", "lte": "gt", "gt": "lte", "gte": "lt", "eq": "neq", "neq": "eq"}


def cmp(op: str, key: str, value: float | int) -> Cond:
    return ("cmp", op, key, value)


def and_(*conds: Cond) -> Cond:
    flat: list[Cond] = []
    for c in conds:
        if c == FALSE:
            return FALSE
        if c == TRUE:
            continue
        flat.extend(c[1] if c[0] == "and" else [c])
    return TRUE if not flat else flat[0] if len(flat) == 1 else ("and", tuple(flat))


def or_(*conds: Cond) -> Cond:
    flat: list[Cond] = []
    for c in conds:
        if c == TRUE:
            return TRUE
        if c == FALSE:
            continue
        flat.extend(c[1] if c[0] == "or" else [c])
    return FALSE if not flat else flat[0] if len(flat) == 1 else ("or", tuple(flat))


def negate(cond: Cond) -> Cond:
    """The complement of ``cond``, where a comparison on an absent key is false."""
    kind = cond[0]
    if kind == "true":
        return FALSE
    if kind == "false":
        return TRUE
    if kind == "and":
        return or_(*(negate(c) for c in cond[1]))
    if kind == "or":
        return and_(*(negate(c) for c in cond[1]))
    if kind == "ex":
        return ("nex", cond[1])
    if kind == "nex":
        return ("ex", cond[1])
    _, op, key, value = cond
    return or_(("nex", key), cmp(_NEGATED_OP[op], key, value))


# json writes a float of magnitude below 1e-4, or from 1e16, with an exponent, which durable_rules
# refuses (error 204). Thresholds must lie strictly inside (PLAIN_LOW, PLAIN_HIGH); a fact value
# outside is sent as +-PLAIN_LOW or +-PLAIN_HIGH, which compares with every threshold as it does.
PLAIN_LOW, PLAIN_HIGH = THRESHOLD_MAGNITUDE  # the loader refuses a threshold outside them


def plain_number(value: float) -> float | int:
    """A threshold durable_rules accepts: a plain decimal (no exponent), never NaN."""
    if not math.isfinite(value):
        return value  # only compile-time bounds are infinite, and those are never sent
    if value == int(value) and abs(value) < PLAIN_HIGH:
        return int(value)
    if not PLAIN_LOW < abs(value) < PLAIN_HIGH:
        raise EvaluatorGap(f"threshold {value!r} has no plain decimal form durable_rules accepts")
    return value


def plain_value(value: float) -> float | int:
    """A fact value as a plain decimal that compares with every threshold as ``value`` does."""
    if abs(value) >= PLAIN_HIGH:
        return int(math.copysign(PLAIN_HIGH, value))
    if value == int(value):
        return int(value)
    return math.copysign(PLAIN_LOW, value) if abs(value) < PLAIN_LOW else value


def to_json(cond: Cond) -> dict[str, Any]:
    kind = cond[0]
    if kind in ("and", "or"):
        return {f"${kind}": [to_json(c) for c in cond[1]]}
    if kind in ("ex", "nex"):
        return {f"${kind}": {cond[1]: 1}}
    if kind == "cmp":
        _, op, key, value = cond
        value = plain_number(value) if isinstance(value, float) else value
        return {key: value} if op == "eq" else {f"${op}": {key: value}}
    raise EvaluatorGap(f"condition {cond!r} cannot be written as durable_rules JSON")


def _interval_conditions(key: str, accepted: Interval, integer: bool) -> tuple[Cond, Cond]:
    """(every value accepted, no value accepted) for a fact interval stored under ``key``."""
    if accepted.is_empty():
        return FALSE, TRUE  # a range that accepts nothing is false whatever the fact is
    lo, hi, lox, hix = f"{key}_lo", f"{key}_hi", f"{key}_lox", f"{key}_hix"
    open_low = FALSE if integer else cmp("eq", lox, 1)  # integer facts are sent as closed bounds
    open_high = FALSE if integer else cmp("eq", hix, 1)
    a_lo, a_hi = accepted.low, accepted.high
    above_low = TRUE
    if math.isfinite(accepted.low):
        above_low = (or_(cmp("gt", lo, a_lo), and_(cmp("eq", lo, a_lo), open_low)) if accepted.low_open else cmp("gte", lo, a_lo))
    below_high = TRUE
    if math.isfinite(accepted.high):
        below_high = (or_(cmp("lt", hi, a_hi), and_(cmp("eq", hi, a_hi), open_high)) if accepted.high_open else cmp("lte", hi, a_hi))
    all_in = and_(above_low, below_high)
    below = FALSE
    if math.isfinite(accepted.low):
        below = or_(cmp("lt", hi, a_lo), and_(cmp("eq", hi, a_lo), TRUE if accepted.low_open else open_high))
    above = FALSE
    if math.isfinite(accepted.high):
        above = or_(cmp("gt", lo, a_hi), and_(cmp("eq", lo, a_hi), TRUE if accepted.high_open else open_low))
    return all_in, or_(below, above)




def leaf_conditions(node: Any, key: str) -> tuple[Cond, Cond]:
    """(true, false) conditions of a leaf whose flat facts are under ``key``."""
    if isinstance(node, Compare):
        accepted = _ACCEPT[node.op](_threshold(node.fact, node.value, node.unit))
        true, false = _interval_conditions(key, accepted, FACTS[node.fact].integer)
        return (false, true) if node.op is Op.NE else (true, false)
    if isinstance(node, Range):
        low = _threshold(node.fact, node.min, node.unit) if node.min is not None else -math.inf
        high = _threshold(node.fact, node.max, node.unit) if node.max is not None else math.inf
        return _interval_conditions(key, Interval(low, high, not node.min_inclusive, not node.max_inclusive), FACTS[node.fact].integer)
    if isinstance(node, Is):
        values = FACTS[node.fact].values
        accepted = [i for i, v in enumerate(values) if v in node.accepted]
        rejected = [i for i, v in enumerate(values) if v not in node.accepted]
        return and_(*(cmp("eq", f"{key}_{i}", 0) for i in rejected)), and_(*(cmp("eq", f"{key}_{i}", 0) for i in accepted))
    if isinstance(node, (LabResult, HasCondition, HasMedication, HasProcedure, ImagingFinding)):
        return cmp("eq", key, 1), cmp("eq", key, 0)
    raise EvaluatorGap(f"{type(node).__name__} is not a leaf")
