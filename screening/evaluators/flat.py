"""Flat facts: one record of plain numbers per patient and trial, the input of the compiled
evaluators (durable_rules asserts it as a document; the vectorized evaluator makes it a column set).

Each distinct leaf of a trial's rules gets a key prefix (:class:`Slots`); :data:`FLATTENERS` turn
what the reference fact resolver knows into keys under it, so every evaluator reads a profile
the same way:

- a numeric fact (``compare``/``range``) is an interval: ``<k>_lo``/``<k>_hi`` and, for
  non-integer facts, the open-bound flags ``<k>_lox``/``<k>_hix``; an unbounded side is left out.
  Integer facts (age, scores, grades) are sent as closed integer bounds;
- a categorical fact (``is``) is one 0/1 flag per possible value, ``<k>_<i>``: 1 if possible;
- a record finding (condition, medication, procedure, imaging, qualitative lab) is ``<k>``: 1 or
  0, left out when unknown.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import logic
from ..facts.catalog import FACTS
from ..facts.resolve import PatientFacts
from ..rules.model import Compare, HasCondition, HasMedication, HasProcedure, ImagingFinding, Is, LabResult, Range

Flattener = Callable[[Any, str, PatientFacts], dict[str, float]]
LEAF_PREFIX = {Compare: "n", Range: "n", Is: "c", LabResult: "b", HasCondition: "b", HasMedication: "b", HasProcedure: "b", ImagingFinding: "b"}


@dataclass
class Slots:
    """Assigns each distinct leaf node a key prefix in the flat record."""

    index: dict[Any, str] = field(default_factory=dict)

    def key(self, node: Any) -> str:
        if node not in self.index:
            self.index[node] = f"{LEAF_PREFIX[type(node)]}{len(self.index)}"
        return self.index[node]

    @property
    def leaves(self) -> tuple[tuple[Any, str], ...]:
        return tuple(self.index.items())


def _number(node: Compare | Range, key: str, facts: PatientFacts) -> dict[str, float]:
    interval = facts.number(node.fact, node.within).interval
    record: dict[str, float] = {}
    if FACTS[node.fact].integer:
        if math.isfinite(interval.low):
            record[f"{key}_lo"] = math.ceil(interval.inner_low())
        if math.isfinite(interval.high):
            record[f"{key}_hi"] = math.floor(interval.inner_high())
        return record
    if math.isfinite(interval.low):
        record[f"{key}_lo"], record[f"{key}_lox"] = interval.low, int(interval.low_open)
    if math.isfinite(interval.high):
        record[f"{key}_hi"], record[f"{key}_hix"] = interval.high, int(interval.high_open)
    return record


def _category(node: Is, key: str, facts: PatientFacts) -> dict[str, float]:
    possible = facts.category(node.fact).possible
    return {f"{key}_{i}": int(v in possible) for i, v in enumerate(FACTS[node.fact].values)}


def _finding(key: str, value: logic.Truth) -> dict[str, float]:
    return {} if value is None else {key: int(value)}


FLATTENERS: dict[type, Flattener] = {
    Compare: _number,
    Range: _number,
    Is: _category,
    LabResult: lambda n, k, f: _finding(k, f.lab_result(n.analyte, n.result == "positive", n.within).value),
    HasCondition: lambda n, k, f: _finding(k, f.condition(n.codes, n.timing, n.within).value),
    HasMedication: lambda n, k, f: _finding(k, f.medication(n.codes, n.timing, n.within).value),
    HasProcedure: lambda n, k, f: _finding(k, f.procedure(n.codes, n.within, n.at_least).value),
    ImagingFinding: lambda n, k, f: _finding(k, f.imaging(n.finding, n.modality, n.within).value),
}


def leaf_keys(node: Any, key: str) -> tuple[str, ...]:
    """Every key a leaf's flat facts may hold (a record holds a subset)."""
    if isinstance(node, (Compare, Range)):
        return (f"{key}_lo", f"{key}_hi") if FACTS[node.fact].integer else (f"{key}_lo", f"{key}_lox", f"{key}_hi", f"{key}_hix")
    if isinstance(node, Is):
        return tuple(f"{key}_{i}" for i in range(len(FACTS[node.fact].values)))
    return (key,)


def flatten(leaves: tuple[tuple[Any, str], ...], facts: PatientFacts) -> dict[str, float]:
    """The flat record of one patient for the given leaves."""
    record: dict[str, float] = {}
    for node, key in leaves:
        record.update(FLATTENERS[type(node)](node, key, facts))
    return record
