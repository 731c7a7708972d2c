"""Flat facts for a flat table chunk, built column-wise: the fast twin of
:func:`screening.evaluators.flat.flatten` over :class:`~screening.facts.resolve.PatientFacts`.

Each leaf of a trial gets its flat keys (:func:`screening.evaluators.flat.leaf_keys`) as arrays,
and the data it misses where it is unknown. Numbers are computed with array operations from the
canonical intervals of :mod:`screening.cohort.cells` (age, labs, grades, Child-Pugh points per
distinct item interval, MELD scores per distinct box of inputs). Record questions (conditions,
medications, procedures, imaging, qualitative labs, categories) are asked of the reference fact
resolver once per distinct cell value (and in/out of the leaf's window), on a profile holding
that value only, and the answer is gathered back to every row holding it: the same code answers
both paths.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from ..clinical import child_pugh
from ..clinical.analytes import ANALYTES
from ..evaluators.flat import leaf_keys
from ..evaluators.vectorized import FactColumns, VectorTrial, group_rows
from ..facts.catalog import CHILD_PUGH_COMPONENTS, FACTS, SCORES, fact_spec
from ..facts.intervals import Interval
from ..facts.resolve import (
    MELD_DIALYSIS_UNKNOWN,
    MELD_INPUTS,
    CategoryFact,
    Finding,
    PatientFacts,
    age_decides_female_term,
    female_term,
    meld_corners,
    meld_input,
    points_range,
)
from ..patient.model import (
    AssessmentName,
    ImagingStudy,
    Modality,
    Observation,
    PatientProfile,
)
from ..rules.codelists import CodeList
from ..rules.model import Compare, Defaults, HasCondition, HasMedication, HasProcedure, ImagingFinding, Is, LabResult, Range, Window
from .cells import FlatChunk

_POINTS: dict[str, Callable[[float], int]] = {
    "bilirubin": child_pugh.bilirubin_points,
    "albumin": child_pugh.albumin_points,
    "inr": child_pugh.inr_points,
}
_GRADE_POINTS = {"ascites": ("ascites_grade", child_pugh.ascites_points), "encephalopathy": ("encephalopathy_grade", child_pugh.encephalopathy_points)}


class _Number:
    """A number fact per row: interval ends (NaN where unknown: the fact is then unbounded) and the
    missing items per row as codes into ``items``."""

    def __init__(self, label: str, low: np.ndarray, high: np.ndarray, low_open: np.ndarray, high_open: np.ndarray,
                 missing: np.ndarray, items: list[tuple[str, ...]]):
        self.label, self.low, self.high, self.low_open, self.high_open = label, low, high, low_open, high_open
        self.missing, self.items = missing, items


def _known_code(known: np.ndarray) -> np.ndarray:
    """Missing-item codes of a single-item fact: -1 (nothing missing) where known, else 0."""
    return -known.astype(np.int64)


@lru_cache(maxsize=1 << 16)
def _points_range(interval: Interval, score: Callable[[float], int]) -> tuple[int, int]:
    """:func:`points_range`, once per distinct result across chunks."""
    return points_range(interval, score)


def _window_start(window: Window, as_of: dt.date) -> int:
    return window.start(as_of).toordinal()


def _in_window(day: np.ndarray, window: Window, as_of: dt.date) -> np.ndarray:
    return (day >= _window_start(window, as_of)) & (day <= as_of.toordinal())


def _label_window(label: str, window: Window) -> str:
    return f"{label} (last {window.describe()})"


class ChunkFacts:
    """Answers the fact questions of a trial's leaves for every row of a chunk at once."""

    def __init__(self, chunk: FlatChunk, defaults: Defaults, codelists: Mapping[str, CodeList]):
        self.chunk, self.defaults, self.codelists = chunk, defaults, codelists
        self.as_of = chunk.as_of
        self._cache: dict[Any, Any] = {}

    def _cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def _inside(self, day: np.ndarray, window: Window) -> np.ndarray:
        """1 where ``day`` falls in ``window``, else 0 (one array per day column and window)."""
        return self._cached(("inside", id(day), window), lambda: (_in_window(day, window, self.as_of).astype(np.int64), day))[0]

    # -- per distinct value, through the reference resolver ---------------------------------

    def _ask(self, keys: list[np.ndarray], profile: Callable[..., dict[str, Any]], ask: Callable[[PatientFacts], Any]) -> tuple[np.ndarray, list[Any]]:
        """``ask`` of the resolver on a profile built from each distinct combination of ``keys``
        (one small-integer array each): (per row a code into the answers, the answers)."""
        keys = keys or [np.zeros(self.chunk.rows, dtype=np.int64)]
        # leaves asking about the same columns share one grouping (the arrays live as long as the cache)
        codes, first = self._cached(("groups", *(id(k) for k in keys)), lambda: (*group_rows(keys), keys))[:2]
        answers = []
        for row in first:
            data = {"id": "-", **profile(*(int(k[row]) for k in keys))}
            facts = PatientFacts(PatientProfile.model_validate(data), self.as_of, self.defaults, self.codelists)
            answers.append(ask(facts))
        return codes, answers

    def _record_profile(self, name: str) -> Callable[[int], dict[str, Any]]:
        coded = self.chunk.records[name]
        return lambda code: {} if code < 0 else {name: list(coded.values[code])}

    def finding(self, node: Any) -> tuple[np.ndarray, list[Finding]]:
        """(codes, findings) of a record leaf."""
        if isinstance(node, HasCondition):
            return self._ask([self.chunk.records["conditions"].codes], self._record_profile("conditions"),
                             lambda f: f.condition(node.codes, node.timing, node.within))
        if isinstance(node, HasMedication):
            return self._ask([self.chunk.records["medications"].codes], self._record_profile("medications"),
                             lambda f: f.medication(node.codes, node.timing, node.within))
        if isinstance(node, HasProcedure):
            return self._ask([self.chunk.records["procedures"].codes], self._record_profile("procedures"),
                             lambda f: f.procedure(node.codes, node.within, node.at_least))
        if isinstance(node, LabResult):
            window = node.within or self.defaults.lab_within
            dated = self.chunk.qualitative.get(node.analyte)
            if dated is None:
                return self._ask([], lambda: {}, lambda f: f.lab_result(node.analyte, node.result == "positive", node.within))
            inside = self._inside(dated.day, window)
            loinc = ANALYTES[node.analyte].loinc[0]

            def observed(code: int, inside: int) -> dict[str, Any]:
                if code < 0 or not inside:
                    return {}
                return {"observations": [Observation(loinc=loinc, result=dated.value.values[code], date=self.as_of)]}

            return self._ask([dated.value.codes, inside], observed, lambda f: f.lab_result(node.analyte, node.result == "positive", node.within))
        if isinstance(node, ImagingFinding):
            window = node.within or self.defaults.imaging_within
            study = self.chunk.ultrasound
            inside = self._inside(study.day, window)

            def imaged(code: int, inside: int) -> dict[str, Any]:
                if not inside:
                    return {}
                findings = None if code < 0 else list(study.value.values[code])
                return {"imaging": [ImagingStudy(modality=Modality.ULTRASOUND, date=self.as_of, findings=findings)]}

            return self._ask([study.value.codes, inside], imaged, lambda f: f.imaging(node.finding, node.modality, node.within))
        raise TypeError(f"{type(node).__name__} is not a record leaf")

    def category(self, name: str) -> tuple[np.ndarray, list[CategoryFact]]:
        """(codes, category facts) of a category fact."""
        fact_spec(name, "category")
        if name == "child_pugh.class":
            return self._cached(("category", name), self._child_pugh_class)
        if name == "dialysis":
            return self._cached(("category", name), lambda: self._ask(
                [self.chunk.records["procedures"].codes], self._record_profile("procedures"), lambda f: f.category("dialysis")))
        coded = self.chunk.scalars[name]
        return self._cached(("category", name), lambda: self._ask(
            [coded.codes], lambda code: {} if code < 0 else {name: coded.values[code]}, lambda f: f.category(name)))

    # -- numbers ----------------------------------------------------------------------------

    def number(self, name: str, within: Window | None) -> _Number:
        return self._cached(("number", name, within), lambda: self._number(name, within))

    def _number(self, name: str, within: Window | None) -> _Number:
        spec = fact_spec(name, "number")
        return _NUMBER_QUESTIONS[spec.question](self, spec.part, within)  # type: ignore[index]

    def _age(self) -> _Number:
        age = self.chunk.age
        no = np.zeros(self.chunk.rows, bool)
        return _Number("Age", age, age, no, no, _known_code(~np.isnan(age)), [("birth date",)])

    def _lab(self, analyte: str, window: Window) -> _Number:
        return self._cached(("lab", analyte, window), lambda: self._compute_lab(analyte, window))

    def _compute_lab(self, analyte: str, window: Window) -> _Number:
        info = ANALYTES[analyte]
        lab = self.chunk.lab(analyte)
        known = _in_window(lab.day, window, self.as_of) & ~np.isnan(lab.low)
        return _Number(info.display, np.where(known, lab.low, np.nan), np.where(known, lab.high, np.nan), lab.low_open & known,
                       lab.high_open & known, _known_code(known), [(_label_window(info.display, window),)])

    def _assessment(self, name: str, window: Window) -> _Number:
        return self._cached(("assessment", name, window), lambda: self._compute_assessment(name, window))

    def _compute_assessment(self, name: str, window: Window) -> _Number:
        label = AssessmentName(name).value.replace("_", " ").capitalize()
        dated = self.chunk.assessments[name]
        known = _in_window(dated.day, window, self.as_of) & ~np.isnan(dated.value)
        grade = np.where(known, dated.value, np.nan)
        no = np.zeros(self.chunk.rows, bool)
        return _Number(label, grade, grade, no, no, _known_code(known), [(_label_window(label, window),)])

    def _child_pugh(self, within: Window | None) -> tuple[_Number, dict[str, _Number]]:
        return self._cached(("child_pugh", within), lambda: self._compute_child_pugh(within))

    def _compute_child_pugh(self, within: Window | None) -> tuple[_Number, dict[str, _Number]]:
        """Child-Pugh score and item points, as :meth:`PatientFacts._child_pugh` (flat tables have
        no prothrombin time: the coagulation item is the INR)."""
        lab_window = within or self.defaults.lab_within
        assessment_window = within or self.defaults.assessment_within
        rows = self.chunk.rows
        low, high = np.zeros(rows, dtype=np.int64), np.zeros(rows, dtype=np.int64)
        missing_bits = np.zeros(rows, dtype=np.int64)
        labels: list[str] = []
        points: dict[str, _Number] = {}
        no = np.zeros(rows, bool)
        for component in CHILD_PUGH_COMPONENTS:  # points per row from (low, high) tables; unknown: 1 to 3
            if component in _POINTS:
                fact = self._lab(component, lab_window)
                label = _label_window("INR or prothrombin time with control", lab_window) if component == "inr" else fact.items[0][0]
                known = fact.missing < 0
                lab = self.chunk.lab(component)
                ranges = [_points_range(i, _POINTS[component]) for i in lab.intervals]
                index = np.where(known, lab.codes, -1)
            else:
                assessment, score = _GRADE_POINTS[component]
                fact = self._assessment(assessment, assessment_window)
                label = fact.items[0][0]
                known = fact.missing < 0
                ranges = [(score(g), score(g)) for g in range(0, 5 if component == "encephalopathy" else 4)]
                index = np.where(known, fact.low, -1).astype(np.int64)
            p_low, p_high = (np.array([r[end] for r in ranges] + [unknown], dtype=np.int64)[index] for end, unknown in ((0, 1), (1, 3)))
            low, high = low + p_low, high + p_high
            missing_bits |= (~known).astype(np.int64) << len(labels)
            points[component] = _Number(f"Child-Pugh {component} points", p_low.astype(float), p_high.astype(float), no, no,
                                        _known_code(known), [(label,)])
            labels.append(label)
        items = [tuple(label for bit, label in enumerate(labels) if mask >> bit & 1) for mask in range(1 << len(labels))]
        score = _Number("Child-Pugh score", low.astype(float), high.astype(float), no, no, missing_bits - (missing_bits == 0), items)
        return score, points

    def _child_pugh_class(self) -> tuple[np.ndarray, list[CategoryFact]]:
        score = self._child_pugh(None)[0]
        inverse, first = group_rows([score.low.astype(np.int64), score.high.astype(np.int64), score.missing])
        answers = []
        for low, high, missing in zip(score.low[first], score.high[first], score.missing[first]):
            classes = frozenset(str(child_pugh.child_pugh_class(t)) for t in range(int(low), int(high) + 1))
            answers.append(CategoryFact("Child-Pugh class", classes, missing=score.items[missing] if missing >= 0 else ()))
        return inverse, answers

    def _meld(self, name: str, within: Window | None) -> _Number:
        """MELD family scores, once per distinct box of inputs (as :meth:`PatientFacts._meld`)."""
        window = within or self.defaults.lab_within
        labs = [self._lab(analyte, window) for analyte in MELD_INPUTS[name]]
        creatinine = labs[MELD_INPUTS[name].index("creatinine")]
        # PatientFacts counts the dialysis of the week before the creatinine test; flat-table
        # procedures are undated, so the week's end does not change the answer asked here
        categories = [self.category("dialysis")] + ([self.category("sex")] if name == "meld_3" else [])
        age = self._age() if name == "meld_3" else None  # MELD 3.0's female term: female, or aged 12-17
        keys = [array for lab in labs for array in (lab.low, lab.high, lab.low_open, lab.high_open)] + [codes for codes, _ in categories]
        keys += [age.low] if age is not None else []
        groups, first = group_rows(keys)
        low, high, missing = (np.empty(len(first)) for _ in range(3))
        items: list[tuple[str, ...]] = []
        for group, row in enumerate(first):
            ranges, lost = [], []
            for analyte, lab in zip(MELD_INPUTS[name], labs):
                known = lab.missing[row] < 0
                ranges.append(meld_input(analyte, Interval(lab.low[row], lab.high[row], bool(lab.low_open[row]), bool(lab.high_open[row])) if known else None))
                lost.extend(() if known else lab.items[0])
            flags = [MELD_DIALYSIS_UNKNOWN]
            if creatinine.missing[row] < 0:  # dialysis is asked only with a creatinine (as PatientFacts._meld_in)
                dialysis = categories[0][1][categories[0][0][row]]
                lost.extend(dialysis.missing)
                flags = [tuple(sorted(dialysis.possible))]
            if age is not None:
                sex = categories[1][1][categories[1][0][row]]
                lost.extend(sex.missing)
                age_known = age.missing[row] < 0
                if age_decides_female_term(sex.possible):
                    lost.extend(() if age_known else age.items[0])
                flags.append(female_term(sex.possible, Interval.point(float(age.low[row])) if age_known else None))
            low[group], high[group] = meld_corners(name, ranges, flags)
            missing[group] = len(items) if lost else -1
            if lost:
                items.append(tuple(lost))
        no = np.zeros(self.chunk.rows, bool)
        return _Number(SCORES[name], low[groups], high[groups], no, no, missing[groups].astype(np.int64), items)


_NUMBER_QUESTIONS: dict[str, Callable[[ChunkFacts, str, Window | None], _Number]] = {  # by FactSpec.question, as PatientFacts
    "age": lambda facts, _, __: facts._age(),
    "lab": lambda facts, analyte, within: facts._lab(analyte, within or facts.defaults.lab_within),
    "assessment": lambda facts, name, within: facts._assessment(name, within or facts.defaults.assessment_within),
    "child_pugh.score": lambda facts, _, within: facts._child_pugh(within)[0],
    "child_pugh.points": lambda facts, item, within: facts._child_pugh(within)[1][item],
    "meld": lambda facts, score, within: facts._meld(score, within),
}


def _number_keys(key: str, number: _Number, integer: bool) -> dict[str, np.ndarray]:
    """The flat keys of :func:`screening.evaluators.flat._number`, as arrays (NaN: key absent)."""
    finite_low, finite_high = np.isfinite(number.low), np.isfinite(number.high)
    if integer:
        low = np.where(number.low_open, np.floor(number.low) + 1, np.ceil(number.low))
        high = np.where(number.high_open, np.ceil(number.high) - 1, np.floor(number.high))
        return {f"{key}_lo": np.where(finite_low, low, np.nan), f"{key}_hi": np.where(finite_high, high, np.nan)}
    return {
        f"{key}_lo": np.where(finite_low, number.low, np.nan),
        f"{key}_lox": np.where(finite_low, number.low_open, np.nan),
        f"{key}_hi": np.where(finite_high, number.high, np.nan),
        f"{key}_hix": np.where(finite_high, number.high_open, np.nan),
    }


def fact_columns(compiled: VectorTrial, chunk: FlatChunk, codelists: Mapping[str, CodeList]) -> FactColumns:
    """The flat facts of every row of ``chunk`` for a compiled trial (rows not ``ok`` hold junk)."""
    facts = ChunkFacts(chunk, compiled.loaded.trial.defaults, codelists)
    columns: dict[str, np.ndarray] = {}
    missing: dict[str, tuple[np.ndarray, list[tuple[str, ...]]]] = {}
    precise: dict[str, str] = {}
    for node, key in compiled.leaves:
        if isinstance(node, (Compare, Range)):
            number = facts.number(node.fact, node.within)
            columns.update(_number_keys(key, number, FACTS[node.fact].integer))
            missing[key] = (number.missing, number.items)
            precise[key] = number.label
        elif isinstance(node, Is):
            codes, answers = facts.category(node.fact)
            values = FACTS[node.fact].values
            table = np.array([[float(v in a.possible) for v in values] for a in answers] or [[np.nan] * len(values)])
            for i in range(len(values)):
                columns[f"{key}_{i}"] = table[codes, i]
            missing[key] = _item_codes(codes, [a.missing for a in answers])
            precise[key] = FACTS[node.fact].label
        else:
            codes, answers = facts.finding(node)
            columns[key] = np.array([np.nan if a.value is None else float(a.value) for a in answers])[codes]
            missing[key] = _item_codes(codes, [a.missing for a in answers])
    assert set(columns) == {k for node, key in compiled.leaves for k in leaf_keys(node, key)}
    return FactColumns(chunk.rows, columns, missing, precise)


def _item_codes(codes: np.ndarray, answers: list[tuple[str, ...]]) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """Per row a code into the distinct non-empty missing tuples (-1: none)."""
    items: list[tuple[str, ...]] = []
    index: dict[tuple[str, ...], int] = {}
    table = []
    for answer in answers:
        if answer and answer not in index:
            index[answer] = len(items)
            items.append(answer)
        table.append(index[answer] if answer else -1)
    return np.array(table + [-1], dtype=np.int64)[codes], items
