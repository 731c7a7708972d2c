"""The vectorized evaluator: trial rules compiled to column operations over flat facts.

A batch of patients becomes :class:`FactColumns`: an array per flat-fact key
(:mod:`screening.evaluators.flat`; NaN where a key is absent) and, per leaf, what the leaf
misses where it is unknown. Leaves evaluate their (true, false) conditions
(:func:`screening.evaluators.conditions.leaf_conditions`, the same ones durable_rules receives)
over the columns into pandas' nullable ``boolean`` arrays, where NA is unknown; the connectives
combine their operands with pandas' Kleene ``&``, ``|`` and ``~`` (:data:`COMBINE`;
:data:`HANDLERS` has one entry per rule node class). Outcomes
are small integer codes (:data:`OUTCOMES` order); unknown is collapsed in one place only,
:func:`trial_rows`. The missing data of a row follows the reference's rule: what the unknown
leaves under unknown nodes of its unknown criteria miss (:func:`missing_masks`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from ..errors import EvaluatorGap
from ..facts.resolve import PatientFacts
from ..logic import CriterionKind, Outcome, Truth, Verdict, applicable, outcome_of
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
from .explain import compile_node, explained_trial, imprecise, screening_result
from .flat import LEAF_PREFIX, Slots, flatten, leaf_keys

# Rule node kinds this evaluator cannot express, with the reason. Empty: every kind is vectorized.
UNSUPPORTED: dict[type, str] = {}

OUTCOMES = pd.CategoricalDtype([o.value for o in Outcome])
VERDICTS = pd.CategoricalDtype([v.value for v in Verdict] + ["error"])
CODE = {o: np.int8(i) for i, o in enumerate(Outcome)}


@dataclass
class FactColumns:
    """Flat facts of a batch of rows: a float array per key (NaN: absent) and, per leaf key, the
    items the leaf misses where it is unknown (per row a code into a list of item tuples, -1:
    none). ``imprecise`` names the number and category leaves, whose unknown rows with no missing
    item miss more precise results (:func:`screening.evaluators.explain.imprecise`)."""

    rows: int
    columns: dict[str, np.ndarray]
    missing: dict[str, tuple[np.ndarray, list[tuple[str, ...]]]] = field(default_factory=dict)
    imprecise: dict[str, str] = field(default_factory=dict)

    def column(self, key: str) -> np.ndarray:
        found = self.columns.get(key)
        return np.full(self.rows, np.nan) if found is None else found

    def take(self, at: np.ndarray) -> FactColumns:
        return FactColumns(len(at), {k: v[at] for k, v in self.columns.items()},
                           {k: (codes[at], items) for k, (codes, items) in self.missing.items()}, dict(self.imprecise))

    def put(self, at: np.ndarray, other: FactColumns) -> None:
        """Overwrite rows ``at`` with the rows of ``other`` (same leaves). Leaves asking the same
        question may share one (codes, items) pair, where ``other`` may hold them apart (a leaf
        decided on a row misses nothing there): the pair takes, per row, whichever misses an item."""
        for key, values in self.columns.items():
            values[at] = other.column(key)
        shared: dict[int, list[str]] = {}
        for key, (codes, _) in self.missing.items():
            shared.setdefault(id(codes), []).append(key)
        for keys in shared.values():
            codes, items = self.missing[keys[0]]
            merged = np.full(other.rows, -1)
            for key in keys:  # a row's item: the first key of the group that misses one there
                other_codes, other_items = other.missing.get(key, (np.full(other.rows, -1), []))
                merged = np.where(merged >= 0, merged, np.where(other_codes >= 0, other_codes + len(items), -1))
                items.extend(other_items)
            codes[at] = merged


Handler = Callable[[Any, Slots, FactColumns], pd.arrays.BooleanArray]

_COMPARE = {"lt": np.less, "lte": np.less_equal, "gt": np.greater, "gte": np.greater_equal, "eq": np.equal}


def holds(cond: Cond, facts: FactColumns) -> np.ndarray:
    """Rows where ``cond`` surely holds (a comparison on an absent key does not)."""
    kind = cond[0]
    if kind == "true":
        return np.ones(facts.rows, dtype=bool)
    if kind == "false":
        return np.zeros(facts.rows, dtype=bool)
    if kind in ("ex", "nex"):
        present = ~np.isnan(facts.column(cond[1]))
        return present if kind == "ex" else ~present
    if kind == "and":
        return np.logical_and.reduce([holds(c, facts) for c in cond[1]])
    if kind == "or":
        return np.logical_or.reduce([holds(c, facts) for c in cond[1]])
    _, op, key, value = cond
    values = facts.column(key)
    if op == "neq":
        return ~np.isnan(values) & (values != value)
    return _COMPARE[op](values, value)  # NaN compares false


def truth(true: np.ndarray, false: np.ndarray) -> pd.arrays.BooleanArray:
    """Kleene truth: True where ``true`` holds, False where ``false`` does, NA (unknown) elsewhere."""
    return pd.arrays.BooleanArray(true.copy(), ~(true | false))


def evaluate(node: Any, slots: Slots, facts: FactColumns) -> pd.arrays.BooleanArray:
    try:
        handler = HANDLERS[type(node)]
    except KeyError:
        raise EvaluatorGap(f"the vectorized evaluator has no handler for {type(node).__name__}") from None
    return handler(node, slots, facts)


def _leaf(node: Any, slots: Slots, facts: FactColumns) -> pd.arrays.BooleanArray:
    true, false = leaf_conditions(node, slots.key(node))
    return truth(holds(true, facts), holds(false, facts))


def _operands(node: AllOf | AnyOf | Not | AtLeast) -> tuple[Any, ...]:
    return node.of if isinstance(node.of, tuple) else (node.of,)


def _connective(node: Any, slots: Slots, facts: FactColumns) -> pd.arrays.BooleanArray:
    return COMBINE[type(node)](node, [evaluate(child, slots, facts) for child in _operands(node)])


def _all(node: AllOf, values: list[pd.arrays.BooleanArray]) -> pd.arrays.BooleanArray:
    result = values[0]
    for value in values[1:]:
        result = result & value
    return result


def _any(node: AnyOf, values: list[pd.arrays.BooleanArray]) -> pd.arrays.BooleanArray:
    result = values[0]
    for value in values[1:]:
        result = result | value
    return result


def _not(node: Not, values: list[pd.arrays.BooleanArray]) -> pd.arrays.BooleanArray:
    return ~values[0]


def _at_least(node: AtLeast, values: list[pd.arrays.BooleanArray]) -> pd.arrays.BooleanArray:
    true = sum(np.asarray(v.fillna(False), dtype=int) for v in values)
    unknown = sum(np.asarray(v.isna(), dtype=int) for v in values)
    return truth(true >= node.n, true + unknown < node.n)


# A connective's truth from its operands' truths (so a caller holding them need not evaluate again).
COMBINE: dict[type, Callable[[Any, list[pd.arrays.BooleanArray]], pd.arrays.BooleanArray]] = {
    AllOf: _all, AnyOf: _any, Not: _not, AtLeast: _at_least,
}


HANDLERS: dict[type, Handler] = {
    AllOf: _connective,
    AnyOf: _connective,
    Not: _connective,
    AtLeast: _connective,
    Compare: _leaf,
    Range: _leaf,
    Is: _leaf,
    LabResult: _leaf,
    HasCondition: _leaf,
    HasMedication: _leaf,
    HasProcedure: _leaf,
    ImagingFinding: _leaf,
}


_TRUTHS: tuple[Truth, ...] = (None, False, True)  # a truth's index: 0 unknown, 1 false, 2 true


def _truth_index(values: pd.arrays.BooleanArray) -> np.ndarray:
    """Per row the index of its truth in :data:`_TRUTHS`."""
    true = values.to_numpy(dtype=bool, na_value=False)
    return true.astype(np.intp) + ~np.asarray(values.isna())


@lru_cache(maxsize=None)
def _outcome_table(kind: CriterionKind) -> np.ndarray:
    """Outcome code by (applies, rule) truth indexes, from the reference rule itself
    (:func:`screening.logic.applicable`; row 3: no applicability condition)."""
    table = np.empty((4, 3), dtype=np.int8)
    for a, applies in enumerate(_TRUTHS):
        for r, value in enumerate(_TRUTHS):
            table[a, r] = CODE[applicable(applies, value, kind)]
    for r, value in enumerate(_TRUTHS):
        table[3, r] = CODE[outcome_of(value)]
    return table


def _outcome_codes(rule: pd.arrays.BooleanArray, applies: pd.arrays.BooleanArray | None, kind: CriterionKind) -> np.ndarray:
    """Outcome code per row, looked up in :func:`_outcome_table`."""
    table = _outcome_table(kind)
    return table[3][_truth_index(rule)] if applies is None else table[_truth_index(applies), _truth_index(rule)]


# -- missing data ----------------------------------------------------------------------------------


class _Vocabulary:
    """Missing items as bits: a row's missing data is a bit mask, ``words`` 64-bit words wide."""

    def __init__(self, facts: FactColumns):
        items = {item for _, entries in facts.missing.values() for entry in entries for item in entry}
        items |= {imprecise(label) for label in facts.imprecise.values()}
        self.items = sorted(items)
        self.bit = {item: i for i, item in enumerate(self.items)}
        self.words = max(1, -(-len(self.items) // 64))

    def mask(self, entries: Iterable[str]) -> np.ndarray:
        mask = np.zeros(self.words, dtype=np.uint64)
        for item in entries:
            bit = self.bit[item]
            mask[bit // 64] |= np.uint64(1) << np.uint64(bit % 64)
        return mask

    def marks(self, masks: np.ndarray) -> np.ndarray:
        """Per mask (rows of ``masks``), whether it holds each item (rows x items, bool)."""
        marks = np.zeros((len(masks), len(self.items)), dtype=bool)
        for i in range(len(self.items)):
            marks[:, i] = (masks[:, i // 64] >> np.uint64(i % 64)) & np.uint64(1) == 1
        return marks


def _missing(node: Any, slots: Slots, facts: FactColumns, words: _Vocabulary) -> tuple[pd.arrays.BooleanArray, np.ndarray]:
    """(truth, missing masks) of a node: what its unknown leaves miss, through unknown nodes only."""
    if type(node) in LEAF_PREFIX:
        value = evaluate(node, slots, facts)
        key = slots.key(node)
        codes, entries = facts.missing.get(key, (np.full(facts.rows, -1), []))
        table = np.stack([words.mask(entry) for entry in entries] + [np.zeros(words.words, dtype=np.uint64)])
        masks = table[codes]
        unknown = np.asarray(value.isna())
        if key in facts.imprecise:
            masks[unknown & (codes < 0)] = words.mask([imprecise(facts.imprecise[key])])
        masks[~unknown] = 0
        return value, masks
    children = [_missing(child, slots, facts, words) for child in _operands(node)]
    value = COMBINE[type(node)](node, [v for v, _ in children])
    masks = np.bitwise_or.reduce([m for _, m in children]) if children else np.zeros((facts.rows, words.words), dtype=np.uint64)
    masks[~np.asarray(value.isna())] = 0
    return value, masks


def missing_masks(compiled: VectorTrial, facts: FactColumns, outcome_codes: np.ndarray) -> tuple[np.ndarray, _Vocabulary]:
    """Per row, the mask of items its unknown criteria miss (as :func:`evaluate_criterion`)."""
    words = _Vocabulary(facts)
    total = np.zeros((facts.rows, words.words), dtype=np.uint64)
    for i, criterion in enumerate(compiled.loaded.trial.criteria):
        unknown = outcome_codes[:, i] == CODE[Outcome.UNKNOWN]
        if not unknown.any():
            continue
        _, masks = _missing(criterion.rule, compiled.slots, facts, words)
        if criterion.applies_when is not None:
            masks = masks | _missing(criterion.applies_when, compiled.slots, facts, words)[1]
        total |= np.where(unknown[:, None], masks, np.uint64(0))
    return total, words


@dataclass(frozen=True)
class VectorTrial:
    """A trial compiled for columns of flat facts."""

    loaded: LoadedTrial
    slots: Slots

    @property
    def leaves(self) -> tuple[tuple[Any, str], ...]:
        return self.slots.leaves

    def outcome_codes(self, facts: FactColumns) -> np.ndarray:
        """Patients x criteria outcome codes (int8, :data:`OUTCOMES` order)."""
        matrix = np.empty((facts.rows, len(self.loaded.trial.criteria)), dtype=np.int8)
        for i, criterion in enumerate(self.loaded.trial.criteria):
            rule = evaluate(criterion.rule, self.slots, facts)
            applies = evaluate(criterion.applies_when, self.slots, facts) if criterion.applies_when else None
            matrix[:, i] = _outcome_codes(rule, applies, criterion.kind)
        return matrix

    def outcomes(self, facts: FactColumns) -> pd.DataFrame:
        """Patients x criteria outcome matrix (categorical ``met``/``not_met``/``unknown``/``not_applicable``)."""
        codes = self.outcome_codes(facts)
        return pd.DataFrame({c.id: pd.Categorical.from_codes(codes[:, i], dtype=OUTCOMES) for i, c in enumerate(self.loaded.trial.criteria)})


def compile_trial(loaded: LoadedTrial) -> VectorTrial:
    slots = Slots()
    for node in trial_nodes(loaded.trial):
        if type(node) in LEAF_PREFIX:
            slots.key(node)
    return VectorTrial(loaded, slots)


def row_facts(compiled: VectorTrial, facts: Iterable[PatientFacts]) -> FactColumns:
    """Fact columns from the reference resolver, one patient at a time (every input kind)."""
    records, missing = [], []
    explainers = [(key, compile_node(node)) for node, key in compiled.leaves]  # compiled once, not per patient
    for patient in facts:
        records.append(flatten(compiled.leaves, patient))
        missing.append({key: explain(patient).missing for key, explain in explainers})
    return frame_of(compiled, records, missing)


def frame_of(compiled: VectorTrial, records: list[dict[str, float]], missing: list[dict[str, tuple[str, ...]]] | None = None) -> FactColumns:
    """Fact columns from flat records (absent keys NaN) and each leaf's missing items per record."""
    rows = len(records)
    keys = [k for node, key in compiled.leaves for k in leaf_keys(node, key)]
    columns = {k: np.array([r.get(k, np.nan) for r in records], dtype=float) for k in keys}
    coded: dict[str, tuple[np.ndarray, list[tuple[str, ...]]]] = {}
    for _, key in compiled.leaves:
        items: list[tuple[str, ...]] = []
        index: dict[tuple[str, ...], int] = {}
        codes = np.full(rows, -1, dtype=np.int64)
        for row, entry in enumerate(missing or ()):
            found = entry.get(key, ())
            if found:
                codes[row] = index.setdefault(found, len(items))
                if codes[row] == len(items):
                    items.append(found)
        coded[key] = (codes, items)
    return FactColumns(rows, columns, coded)


def facts_frame(compiled: VectorTrial, profiles: Iterable[PatientProfile], as_of: dt.date, codelists: Mapping[str, CodeList]) -> FactColumns:
    """The fact columns of each profile (row order kept)."""
    defaults = compiled.loaded.trial.defaults
    return row_facts(compiled, (PatientFacts(p, as_of, defaults, codelists) for p in profiles))


def group_rows(keys: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Rows grouped by their values in ``keys`` (equal-length arrays; NaN equals NaN): per row
    its group's code, and per group the index of its first row. Integer keys are combined
    arithmetically; others are factorized first."""
    combined: np.ndarray | None = None
    span = 1
    for key in keys:
        if key.dtype.kind in "iub":
            part = key.astype(np.int64, copy=False)  # never changed in place
            low, high = (int(part.min()), int(part.max())) if len(part) else (0, 0)
            part, width = (part - low if low else part), high - low + 1
        else:
            part, distinct = pd.factorize(key, use_na_sentinel=False)
            part, width = part.astype(np.int64), max(len(distinct), 1)
        if combined is None:
            combined, span = part, width
            continue
        if span * width >= 2**62:  # relabel before the product overflows
            combined = pd.factorize(combined)[0].astype(np.int64)
            span = int(combined.max()) + 1 if len(combined) else 1
        combined, span = combined * width + part, span * width
    if combined is None or not len(combined):
        return np.zeros(0 if combined is None else len(combined), dtype=np.int64), np.zeros(0, dtype=np.int64)
    if span <= 4 * len(combined) + 4096:  # dense: relabel through a table, no hashing
        seen = np.zeros(span, dtype=bool)
        seen[combined] = True
        codes = (np.cumsum(seen) - 1)[combined]
    else:
        codes = pd.factorize(combined)[0].astype(np.int64)
    first = np.full(int(codes.max()) + 1, -1, dtype=np.int64)
    first[codes[::-1]] = _descending(len(codes))
    return codes, first


@lru_cache(maxsize=4)
def _descending(n: int) -> np.ndarray:
    """n-1, ..., 1, 0 (read-only: shared by the groupings of a chunk's equal-length keys)."""
    indexes = np.arange(n - 1, -1, -1)
    indexes.flags.writeable = False
    return indexes


def join_marked(texts: list[str], marks: np.ndarray) -> np.ndarray:
    """Per row of ``marks`` (rows x texts, bool), ``";".join`` of its marked texts in order, as
    an object array (built a column at a time)."""
    joined = np.full(len(marks), "", dtype=object)
    started = np.zeros(len(marks), dtype=bool)
    for text, marked in zip(texts, marks.T):
        joined[marked & started] += ";" + text
        joined[marked & ~started] = text
        started |= marked
    return joined


def trial_rows(trial: LoadedTrial, codes: np.ndarray) -> dict[str, pd.Categorical]:
    """Per row: verdict, deciding criteria, unknown criteria and ``id=outcome`` list, computed
    once per distinct outcome combination."""
    criteria = trial.trial.criteria
    ids = np.array([c.id for c in criteria], dtype=object)
    inverse, first = group_rows(codes.T)
    distinct = codes[first] if len(codes) else codes
    failing = np.array([CODE[Outcome.NOT_MET] if c.kind is CriterionKind.INCLUSION else CODE[Outcome.MET] for c in criteria], dtype=np.int8)
    fails = distinct == failing
    unknown = distinct == CODE[Outcome.UNKNOWN]
    verdict = np.where(fails.any(axis=1), Verdict.INELIGIBLE.value, np.where(unknown.any(axis=1), Verdict.UNDETERMINED.value, Verdict.ELIGIBLE.value))
    listed = np.full(len(distinct), "", dtype=object)
    for i, cid in enumerate(ids):  # "I1=met;I2=unknown;..."
        listed += np.array([f"{';' if i else ''}{cid}={name}" for name in OUTCOMES.categories], dtype=object)[distinct[:, i]]

    def gathered(values: np.ndarray) -> pd.Categorical:
        per_group = pd.Categorical(values)
        return pd.Categorical.from_codes(per_group.codes[inverse], dtype=per_group.dtype)

    return {
        "verdict": pd.Categorical.from_codes(pd.Categorical(verdict, dtype=VERDICTS).codes[inverse], dtype=VERDICTS),
        "deciding": gathered(join_marked(list(ids), fails)),
        "unknown": gathered(join_marked(list(ids), unknown)),
        "criteria": gathered(listed),
    }


def verdicts(trial: LoadedTrial, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Verdict per row, the criteria that decided an ineligible one, and the unknown ones."""
    codes = np.stack([outcomes[c.id].cat.codes.to_numpy(dtype=np.int8) for c in trial.trial.criteria], axis=1) if len(outcomes) else \
        np.zeros((0, len(trial.trial.criteria)), dtype=np.int8)
    rows = trial_rows(trial, codes)
    return pd.DataFrame({k: rows[k] for k in ("verdict", "deciding", "unknown")}, index=outcomes.index)


class VectorizedEngine:
    """The vectorized evaluator behind the single-patient API (a cohort of one), for agreement
    tests and ``engine="vectorized"``; cohorts use :func:`screening.cohort.screen_cohort`."""

    def __init__(self, rules: RuleSet):
        self.rules = rules
        self.compiled = {trial_id: compile_trial(loaded) for trial_id, loaded in rules.trials.items()}

    def outcomes(self, profile: PatientProfile, as_of: dt.date, trial_id: str, facts: PatientFacts | None = None) -> dict[str, Outcome]:
        compiled = self.compiled[trial_id]
        facts = facts or PatientFacts(profile, as_of, compiled.loaded.trial.defaults, self.rules.codelists)
        codes = compiled.outcome_codes(frame_of(compiled, [flatten(compiled.leaves, facts)]))[0]
        outcomes = list(Outcome)
        return {c.id: outcomes[code] for c, code in zip(compiled.loaded.trial.criteria, codes)}

    def screen(self, profile: PatientProfile, as_of: dt.date, trial_ids: Iterable[str] | None = None) -> ScreeningResult:
        selected = self.rules.select(trial_ids)
        results = []
        for trial_id in selected:
            loaded = self.rules.trials[trial_id]
            facts = PatientFacts(profile, as_of, loaded.trial.defaults, self.rules.codelists)
            results.append(explained_trial(loaded, facts, self.outcomes(profile, as_of, trial_id, facts), "vectorized"))
        return screening_result(profile, as_of, results)
