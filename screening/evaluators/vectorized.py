"""The vectorized evaluator: trial rules compiled to column operations over a frame of flat facts.

A cohort becomes one frame per trial, a row per patient and a column per flat-fact key
(:mod:`screening.evaluators.flat`; NaN where a key is absent). Leaves evaluate their (true, false)
conditions (:func:`screening.evaluators.conditions.leaf_conditions`, the same ones durable_rules
receives) over the columns into pandas' nullable ``boolean`` arrays, where NA is unknown; the
connectives are pandas' Kleene ``&``, ``|`` and ``~`` (:data:`HANDLERS`, one per rule node class).
Unknown is collapsed in one place only, :func:`verdicts`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._version import __version__
from ..errors import EvaluatorGap
from ..facts.resolve import PatientFacts
from ..logic import CriterionKind, Outcome, Verdict
from ..patient.model import PatientProfile
from ..rules.codelists import CodeList
from ..results import ScreeningResult
from ..rules.loader import LoadedTrial, RuleSet
from ..rules.model import (
    AllOf,
    AnyOf,
    AtLeast,
    Compare,
    HasCondition,
    HasMedication,
    HasProcedure,
    ImagingFinding,
    Is,
    LabResult,
    Not,
    Range,
    trial_nodes,
)
from .conditions import Cond, leaf_conditions
from .explain import explained_trial
from .flat import LEAF_PREFIX, Slots, flatten

# Rule node kinds this evaluator cannot express, with the reason. Empty: every kind is vectorized.
UNSUPPORTED: dict[type, str] = {}

OUTCOMES = pd.CategoricalDtype([o.value for o in Outcome])
VERDICTS = pd.CategoricalDtype([v.value for v in Verdict] + ["error"])

Handler = Callable[[Any, Slots, pd.DataFrame], pd.arrays.BooleanArray]


def _column(frame: pd.DataFrame, key: str) -> np.ndarray:
    if key not in frame:
        return np.full(len(frame), np.nan)
    return frame[key].to_numpy(dtype=float, na_value=np.nan)


_COMPARE = {"lt": np.less, "lte": np.less_equal, "gt": np.greater, "gte": np.greater_equal, "eq": np.equal}


def holds(cond: Cond, frame: pd.DataFrame) -> np.ndarray:
    """Rows where ``cond`` surely holds (a comparison on an absent key does not)."""
    kind = cond[0]
    if kind == "true":
        return np.ones(len(frame), dtype=bool)
    if kind == "false":
        return np.zeros(len(frame), dtype=bool)
    if kind in ("ex", "nex"):
        present = ~np.isnan(_column(frame, cond[1]))
        return present if kind == "ex" else ~present
    if kind == "and":
        return np.logical_and.reduce([holds(c, frame) for c in cond[1]])
    if kind == "or":
        return np.logical_or.reduce([holds(c, frame) for c in cond[1]])
    _, op, key, value = cond
    values = _column(frame, key)
    if op == "neq":
        return ~np.isnan(values) & (values != value)
    return _COMPARE[op](values, value)  # NaN compares false


def truth(true: np.ndarray, false: np.ndarray) -> pd.arrays.BooleanArray:
    """Kleene truth: True where ``true`` holds, False where ``false`` does, NA (unknown) elsewhere."""
    return pd.arrays.BooleanArray(true.copy(), ~(true | false))


def evaluate(node: Any, slots: Slots, frame: pd.DataFrame) -> pd.arrays.BooleanArray:
    try:
        handler = HANDLERS[type(node)]
    except KeyError:
        raise EvaluatorGap(f"the vectorized evaluator has no handler for {type(node).__name__}") from None
    return handler(node, slots, frame)


def _leaf(node: Any, slots: Slots, frame: pd.DataFrame) -> pd.arrays.BooleanArray:
    true, false = leaf_conditions(node, slots.key(node))
    return truth(holds(true, frame), holds(false, frame))


def _all(node: AllOf, slots: Slots, frame: pd.DataFrame) -> pd.arrays.BooleanArray:
    result = evaluate(node.of[0], slots, frame)
    for child in node.of[1:]:
        result = result & evaluate(child, slots, frame)
    return result


def _any(node: AnyOf, slots: Slots, frame: pd.DataFrame) -> pd.arrays.BooleanArray:
    result = evaluate(node.of[0], slots, frame)
    for child in node.of[1:]:
        result = result | evaluate(child, slots, frame)
    return result


def _not(node: Not, slots: Slots, frame: pd.DataFrame) -> pd.arrays.BooleanArray:
    return ~evaluate(node.of, slots, frame)


def _at_least(node: AtLeast, slots: Slots, frame: pd.DataFrame) -> pd.arrays.BooleanArray:
    children = [evaluate(child, slots, frame) for child in node.of]
    true = sum(np.asarray(c.fillna(False), dtype=int) for c in children)
    unknown = sum(np.asarray(c.isna(), dtype=int) for c in children)
    return truth(true >= node.n, true + unknown < node.n)


HANDLERS: dict[type, Handler] = {
    AllOf: _all,
    AnyOf: _any,
    Not: _not,
    AtLeast: _at_least,
    Compare: _leaf,
    Range: _leaf,
    Is: _leaf,
    LabResult: _leaf,
    HasCondition: _leaf,
    HasMedication: _leaf,
    HasProcedure: _leaf,
    ImagingFinding: _leaf,
}


def _outcomes(rule: pd.arrays.BooleanArray, applies: pd.arrays.BooleanArray | None, kind: CriterionKind) -> np.ndarray:
    """Outcome per row, with the applicability rule of :func:`screening.logic.applicable`."""
    known = ~np.asarray(rule.isna())
    value = np.asarray(rule.fillna(False), dtype=bool)
    decided = np.where(value, Outcome.MET.value, Outcome.NOT_MET.value)
    outcome = np.where(known, decided, Outcome.UNKNOWN.value).astype(object)
    if applies is None:
        return outcome
    applies_known = ~np.asarray(applies.isna())
    applies_true = np.asarray(applies.fillna(False), dtype=bool)
    passing = known & (value == (kind is CriterionKind.INCLUSION))
    outcome = np.where(applies_known & ~applies_true, Outcome.NOT_APPLICABLE.value, outcome)
    return np.where(~applies_known & ~passing, Outcome.UNKNOWN.value, outcome)


@dataclass(frozen=True)
class VectorTrial:
    """A trial compiled for frames of flat facts."""

    loaded: LoadedTrial
    slots: Slots

    @property
    def leaves(self) -> tuple[tuple[Any, str], ...]:
        return self.slots.leaves

    def outcomes(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Patients x criteria outcome matrix (categorical ``met``/``not_met``/``unknown``/``not_applicable``)."""
        columns = {}
        for criterion in self.loaded.trial.criteria:
            rule = evaluate(criterion.rule, self.slots, frame)
            applies = evaluate(criterion.applies_when, self.slots, frame) if criterion.applies_when else None
            columns[criterion.id] = pd.Categorical(_outcomes(rule, applies, criterion.kind), dtype=OUTCOMES)
        return pd.DataFrame(columns, index=frame.index)


def compile_trial(loaded: LoadedTrial) -> VectorTrial:
    slots = Slots()
    for node in trial_nodes(loaded.trial):
        if type(node) in LEAF_PREFIX:
            slots.key(node)
    return VectorTrial(loaded, slots)


def frame_of(records: Mapping[int, dict[str, float]]) -> pd.DataFrame:
    """The frame of flat facts for rows ``records`` (row label -> flat record; absent keys NaN)."""
    order = sorted(records)
    return pd.DataFrame([records[i] for i in order], index=order, dtype=float)


def verdicts(trial: LoadedTrial, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Verdict per row, the criteria that decided an ineligible one, and the unknown ones."""
    fails = pd.DataFrame(
        {c.id: outcomes[c.id] == (Outcome.NOT_MET.value if c.kind is CriterionKind.INCLUSION else Outcome.MET.value) for c in trial.trial.criteria},
        index=outcomes.index,
    )
    unknown = outcomes == Outcome.UNKNOWN.value
    verdict = np.where(fails.any(axis=1), Verdict.INELIGIBLE.value, np.where(unknown.any(axis=1), Verdict.UNDETERMINED.value, Verdict.ELIGIBLE.value))
    ids = np.array(list(outcomes.columns), dtype=object)
    return pd.DataFrame(
        {
            "verdict": pd.Categorical(verdict, dtype=VERDICTS),
            "deciding": [";".join(ids[row]) for row in fails.to_numpy()],
            "unknown": [";".join(ids[row]) for row in unknown.to_numpy()],
        },
        index=outcomes.index,
    )


class VectorizedEngine:
    """The vectorized evaluator behind the single-patient API (a cohort of one), for agreement
    tests and ``engine="vectorized"``; cohorts use :func:`screening.cohort.screen_cohort`."""

    def __init__(self, rules: RuleSet):
        self.rules = rules
        self.compiled = {trial_id: compile_trial(loaded) for trial_id, loaded in rules.trials.items()}

    def outcomes(self, profile: PatientProfile, as_of: dt.date, trial_id: str, facts: PatientFacts | None = None) -> dict[str, Outcome]:
        compiled = self.compiled[trial_id]
        facts = facts or PatientFacts(profile, as_of, compiled.loaded.trial.defaults, self.rules.codelists)
        row = compiled.outcomes(frame_of({0: flatten(compiled.leaves, facts)})).iloc[0]
        return {criterion_id: Outcome(value) for criterion_id, value in row.items()}

    def screen(self, profile: PatientProfile, as_of: dt.date, trial_ids: Iterable[str] | None = None) -> ScreeningResult:
        selected = sorted(set(trial_ids)) if trial_ids is not None else list(self.rules.trials)
        results = []
        for trial_id in selected:
            loaded = self.rules.trials[trial_id]
            facts = PatientFacts(profile, as_of, loaded.trial.defaults, self.rules.codelists)
            results.append(explained_trial(loaded, facts, self.outcomes(profile, as_of, trial_id, facts), "vectorized"))
        return ScreeningResult(patient_id=profile.id, as_of=as_of, engine_version=__version__, results=tuple(results))


def facts_frame(compiled: VectorTrial, profiles: Iterable[PatientProfile], as_of: dt.date, codelists: Mapping[str, CodeList]) -> pd.DataFrame:
    """The flat facts of each profile as one frame (row order kept)."""
    defaults = compiled.loaded.trial.defaults
    return frame_of({i: flatten(compiled.leaves, PatientFacts(p, as_of, defaults, codelists)) for i, p in enumerate(profiles)})
