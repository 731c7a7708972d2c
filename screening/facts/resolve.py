"""Resolve facts about one patient at one screening date.

:class:`PatientFacts` normalizes a profile once (labs to canonical units, records dated after the
screening date dropped) and answers the questions rule expressions ask, each answer carrying the
evidence it used and the data that is missing. Derived scores with missing or censored inputs
are intervals: every input is a range (a missing one spans its whole domain) and the score is
evaluated at every corner of that box; the scores are monotone (Child-Pugh, MELD, MELD-Na) or
multilinear (MELD 3.0) in their inputs, so the corners bound every possible value.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

from ..clinical import child_pugh, meld
from ..clinical.analytes import ANALYTE_BY_LOINC, ANALYTES
from ..clinical.units import round_significant, to_canonical
from ..errors import PatientDataError, UnitError
from ..logic import Truth
from ..patient.model import (
    ACTIVE_CONDITION_STATUSES,
    NEGATIVE_RESULTS,
    POSITIVE_RESULTS,
    AssessmentName,
    Comparator,
    Condition,
    ConditionStatus,
    Medication,
    MedicationStatus,
    Observation,
    PatientProfile,
    QualitativeResult,
)
from ..results import Evidence
from ..rules.codelists import CodeList, CodeLists
from ..rules.model import Defaults, Timing, Window
from .catalog import FACTS, SCORES, fact_spec
from .intervals import Interval

DIALYSIS_CODELIST = "dialysis"
_BEYOND_CUT_OFFS = 1e6  # above every Child-Pugh cut-off, for scoring an open-ended censored value
DIALYSIS_WINDOW = Window(days=7)  # OPTN: dialysis at least twice in the prior week
# The MELD family's dialysis flags without a creatinine result: the week before its test is unknown
# (a result filled in later may be from any day of the look-back window), so both are possible;
# creatinine then spans its domain, up to the value dialysis sets, and the score every value.
MELD_DIALYSIS_UNKNOWN = (False, True)
# Analytes read as the difference from the laboratory's control (prothrombin time: the
# prolongation over control, which Child-Pugh scores); a result without its control is not used.
READ_OVER_CONTROL = frozenset({"prothrombin_time"})

T = TypeVar("T")
_UNSET = object()


class NumberFact(NamedTuple):
    """A number question's answer: the possible values, with evidence and what is missing. The
    answers are tuples: a patient's screening builds dozens of them. ``notes`` word, for the
    reason, what the answer set aside (see :class:`Finding`); a derived score carries its inputs'."""

    label: str
    interval: Interval
    unit: str | None = None
    evidence: tuple[Evidence, ...] = ()
    missing: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


class CategoryFact(NamedTuple):
    label: str
    possible: frozenset
    evidence: tuple[Evidence, ...] = ()
    missing: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # as NumberFact's (the Child-Pugh class carries its score's)


class Finding(NamedTuple):
    """The answer to a record question (condition, medication, procedure, imaging, qualitative lab).

    ``notes`` word, for the reason, the records the question found but set aside, which a reader
    would otherwise look for: the latest one older than the look-back window when none is inside
    it (:func:`older`); the conditions and medications that match but ended before the time
    asked about (:func:`ended`), when none counts. They never change the answer, and they are not missing data: ``missing``
    names what to obtain (and is counted across patients), a note says what was there."""

    value: Truth
    evidence: tuple[Evidence, ...] = ()
    missing: tuple[str, ...] = ()
    reviewed: str = ""  # what was looked at, for the reason ("3 conditions", "the procedure history")
    notes: tuple[str, ...] = ()


class _Lab(NamedTuple):
    """A numeric result, checked and in the canonical unit; its evidence is built when a question
    first uses it (:meth:`PatientFacts._lab_evidence`)."""

    date: dt.date
    interval: Interval  # canonical unit
    value: float  # canonical (for prothrombin time: the prolongation over control)
    observation: int  # its index in ``profile.observations``
    analyte: str


class _Qualitative(NamedTuple):
    """A qualitative result; its evidence is built when a question first uses it
    (:meth:`PatientFacts._qualitative_evidence`)."""

    date: dt.date
    result: QualitativeResult
    observation: int  # its index in ``profile.observations``
    analyte: str


def _fmt(value: float) -> str:
    return f"{round_significant(value, 6):g}"


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def completed_years(birth: dt.date, as_of: dt.date) -> int:
    """Age in completed years; a 29 February birthday falls on 1 March in common years."""
    return as_of.year - birth.year - ((as_of.month, as_of.day) < (birth.month, birth.day))


def _label_window(label: str, window: Window) -> str:
    return f"{label} (last {window.describe()})"


def older(label: str, dates: Iterable[dt.date], window: Window) -> tuple[str, ...]:
    """The note on records found only before a look-back ``window``: the latest of ``dates``
    (records before the window's start), e.g. "the latest INR, on 2026-08-23, is older than 90
    days"; none without any."""
    latest = max(dates, default=None)
    return () if latest is None else (f"the latest {_in_sentence(label)}, on {latest.isoformat()}, is older than {window.describe()}",)


def _in_sentence(label: str) -> str:
    """A label as the middle of a sentence has it: "Total bilirubin" -> "total bilirubin"; an
    acronym or a unit-like start stays ("INR", "hCG pregnancy test")."""
    return label[:1].lower() + label[1:] if label[:2].istitle() else label


def ended(record: Condition | Medication) -> str:
    """The note on a matching condition or medication its timing set aside: how and when it
    ended, as recorded ("Viread 300 mg: stopped 2026-06-01", "F10.2: in remission"; the colon
    keeps a display with commas apart from the ending)."""
    if isinstance(record, Medication):
        if record.end is None:
            return f"{record.name}: {record.status.value.replace('_', ' ')}"
        word = "ended" if record.status in (MedicationStatus.ACTIVE, MedicationStatus.ON_HOLD) else record.status.value
        return f"{record.name}: {word} {record.end.isoformat()}"
    label = record.display or record.icd10 or f"SNOMED {record.snomed}"
    if record.resolved is not None:
        return f"{label}: resolved {record.resolved.isoformat()}"
    return f"{label}: {'in remission' if record.status is ConditionStatus.REMISSION else record.status.value}"


def censored(value: float, comparator: Comparator | None) -> Interval:
    """The interval a (possibly censored) result stands for: ``< 20`` is [0, 20)."""
    if comparator is None:
        return Interval.point(value)
    if comparator in (Comparator.LT, Comparator.LE):
        return Interval(0.0, value, False, comparator is Comparator.LT)
    return Interval(value, math.inf, comparator is Comparator.GT, True)


def points_range(interval: Interval, score: Callable[[float], int]) -> tuple[int, int]:
    """Child-Pugh points of an item whose value lies in ``interval``. Points are monotone in the
    value (rising, or falling for albumin), so the ends of the interval give the ends of the
    points; an open-ended censored value (e.g. "> 35 g/L") is scored beyond every cut-off."""
    if interval.low == interval.high and interval.low >= 0:  # a known value: a point is never open
        points = score(interval.low)
        return points, points
    ends = {score(max(interval.inner_low(), 0.0)), score(interval.inner_high() if math.isfinite(interval.high) else _BEYOND_CUT_OFFS)}
    return min(ends), max(ends)


def meld_corners(name: str, ranges: list[tuple[float, ...]], flags: list[tuple[bool, ...]]) -> tuple[int, int]:
    """(lowest, highest) ``name`` score over the corners of a box of inputs: one tuple of values
    per input of :data:`MELD_INPUTS` (one value when known, both ends otherwise), then the
    possible dialysis flags and, for MELD 3.0, the possible female flags."""
    values = []
    for corner in itertools.product(*ranges, *flags):
        if name == "meld":
            values.append(meld.meld(*corner[:3], dialysis=corner[3]))
        elif name == "meld_na":
            values.append(meld.meld_na(*corner[:4], dialysis=corner[4]))
        else:
            values.append(meld.meld_3(*corner[:5], dialysis=corner[5], female=corner[6]))
    return min(values), max(values)


MELD_3_YOUTH = (12, 17)  # OPTN Policy 9.1.D: MELD 3.0's female points go to candidates aged 12-17 whatever their sex


def age_decides_female_term(sexes: frozenset) -> bool:
    """Whether MELD 3.0's female term needs the age (its evidence, or its absence as missing data):
    for every patient who may not be female (:data:`MELD_3_YOUTH`)."""
    return sexes != {"female"}


def female_term(sexes: frozenset, age: Interval | None) -> tuple[bool, ...]:
    """The possible values of MELD 3.0's female term: female sex, or an age (completed years) of
    12 to 17 (:data:`MELD_3_YOUTH`); ``age`` is ``None`` when unknown."""
    youth = {False, True} if age is None else {MELD_3_YOUTH[0] <= age.low <= MELD_3_YOUTH[1]}
    return tuple(sorted({sex == "female" or young for sex in sexes for young in youth}))


def meld_input(analyte: str, interval: Interval | None) -> tuple[float, ...]:
    """The values of a MELD input to try: its known value, or the ends of its possible range,
    within the input's domain (:data:`MELD_DOMAIN`: a value outside it, such as a sodium of 0,
    is scored at its edge; the scores bound every input more tightly except bilirubin and INR,
    whose domain ends are beyond any human result); ``interval`` is ``None`` when there is no
    result."""
    lo_dom, hi_dom = MELD_DOMAIN[analyte]
    if interval is None:
        return (lo_dom, hi_dom)
    lo = min(max(interval.inner_low(), lo_dom), hi_dom) if math.isfinite(interval.low) else lo_dom
    hi = max(min(interval.inner_high(), hi_dom), lo_dom) if math.isfinite(interval.high) else hi_dom
    return (lo, hi) if lo != hi else (lo,)


_POINTS_LABEL = {name.removeprefix("child_pugh.points."): spec.label for name, spec in FACTS.items() if name.startswith("child_pugh.points.")}
_ASSESSMENT_LABEL = {name: name.value.replace("_", " ").capitalize() for name in AssessmentName}
MELD_DOMAIN = {"bilirubin": (0.01, 1e4), "creatinine": (0.01, 1e4), "inr": (0.01, 1e3), "sodium": (50.0, 250.0), "albumin": (0.1, 20.0)}
MELD_INPUTS = {"meld": ("bilirubin", "creatinine", "inr"), "meld_na": ("bilirubin", "creatinine", "inr", "sodium"),
               "meld_3": ("bilirubin", "creatinine", "inr", "sodium", "albumin")}


def read_result(obs: Observation, i: int, patient_id: str) -> _Lab | _Qualitative | None:
    """Observation ``i`` as a checked result (``None`` when no analyte uses it); a unit or value
    that cannot be used raises :class:`PatientDataError` naming ``observations[i]``."""
    analyte = ANALYTE_BY_LOINC.get(obs.loinc)
    if analyte is None:
        return None
    if analyte.unit is None:
        return _Qualitative(obs.date, obs.result, i, analyte.name) if obs.result is not None else None
    if obs.value is None:
        return None
    try:
        value = to_canonical(analyte.name, obs.value, obs.unit or "1")
    except UnitError as exc:
        raise UnitError(exc.problem, field=f"observations[{i}].unit", patient_id=patient_id) from None
    if not math.isfinite(value) or value < 0:
        raise PatientDataError(f"{analyte.display} cannot be {obs.value} {obs.unit}", field=f"observations[{i}].value", patient_id=patient_id)
    interval = censored(value, obs.comparator)
    if interval.is_empty():  # "< 0": no concentration is below zero
        raise PatientDataError(f"{analyte.display} cannot be {obs.comparator.value}{obs.value} {obs.unit}", field=f"observations[{i}].value",
                               patient_id=patient_id)
    if analyte.name in READ_OVER_CONTROL:
        if obs.control is None:
            return None
        control = to_canonical(analyte.name, obs.control, obs.unit or "s")
        interval = Interval(interval.low - control, interval.high - control, interval.low_open, interval.high_open)
        value = round_significant(value - control)
    return _Lab(obs.date, interval, value, i, analyte.name)


def check_results(profile: PatientProfile) -> None:
    """Raise as :class:`PatientFacts` would on any of the profile's results, whatever its date
    (screening ignores results dated after the screening date, so a later date could fail)."""
    for i, obs in enumerate(profile.observations):
        read_result(obs, i, profile.id)


@dataclass
class PatientFacts:
    """One patient's facts at ``as_of``. Answers are cached under every input they depend on
    (windows resolved against ``defaults``), so :meth:`with_defaults` can share them between
    trials."""

    profile: PatientProfile
    as_of: dt.date
    defaults: Defaults
    codelists: Mapping[str, CodeList]
    _labs: dict[str, list[_Lab]] = field(default_factory=dict, init=False)
    _qualitative: dict[str, list[_Qualitative]] = field(default_factory=dict, init=False)
    _without_control: dict[str, list[dt.date]] = field(default_factory=dict, init=False)  # dates of results not used for want of one
    _cache: dict = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        """Check every result the rules could use (a bad unit or value is an error whichever trial
        is screened) and index them by analyte; evidence is built on first use. The dates of
        results recorded without the control they are read over (:data:`READ_OVER_CONTROL`) are
        kept for the reason that misses them."""
        if not isinstance(self.codelists, CodeLists):
            self.codelists = CodeLists(self.codelists)
        labs: dict[str, list[_Lab]] = defaultdict(list)
        qualitative: dict[str, list[_Qualitative]] = defaultdict(list)
        without_control: dict[str, list[dt.date]] = defaultdict(list)
        if self.profile.birth_date and self.profile.birth_date > self.as_of:
            raise PatientDataError("birth date is after the screening date", field="birth_date", patient_id=self.profile.id)
        for i, obs in enumerate(self.profile.observations):
            if obs.date > self.as_of:
                continue
            read = read_result(obs, i, self.profile.id)
            if isinstance(read, _Lab):
                labs[read.analyte].append(read)
            elif isinstance(read, _Qualitative):
                qualitative[read.analyte].append(read)
            elif obs.value is not None and obs.control is None and (analyte := ANALYTE_BY_LOINC.get(obs.loinc)) and analyte.name in READ_OVER_CONTROL:
                without_control[analyte.name].append(obs.date)
        self._labs = dict(labs)
        self._qualitative = dict(qualitative)
        self._without_control = dict(without_control)

    def _lab_evidence(self, lab: _Lab) -> Evidence:
        """The evidence of a numeric result: its canonical value (or range) and the value as
        recorded. Asked through :meth:`_memo`: several questions may use one result."""
        obs = self.profile.observations[lab.observation]
        analyte = ANALYTES[lab.analyte]
        interval = lab.interval
        unit_text = "" if obs.unit in (None, "1") else f" {obs.unit}"
        as_recorded = f"{obs.comparator.value if obs.comparator else ''}{_fmt(obs.value)}{unit_text}"
        if obs.control is not None:
            as_recorded += f", control {_fmt(obs.control)}{unit_text}"
        return Evidence.trusted(
            fact=f"lab.{analyte.name}",
            label=analyte.display + (" prolongation over control" if analyte.name == "prothrombin_time" else ""),
            value=round_significant(lab.value, 6) if interval.is_point else None,
            low=None if interval.is_point or not math.isfinite(interval.low) or obs.comparator in (Comparator.LT, Comparator.LE) else interval.low,
            high=None if interval.is_point or not math.isfinite(interval.high) else interval.high,
            unit=analyte.unit,
            date=obs.date,
            source=f"LOINC {obs.loinc}: {as_recorded}",
        )

    def _qualitative_evidence(self, result: _Qualitative) -> Evidence:
        """The evidence of a qualitative result. Asked through :meth:`_memo`, as for numeric ones."""
        obs = self.profile.observations[result.observation]
        analyte = ANALYTES[result.analyte]
        return Evidence.trusted(fact=f"lab.{analyte.name}", label=analyte.display, value=result.result.value, date=obs.date, source=f"LOINC {obs.loinc}")

    def with_defaults(self, defaults: Defaults) -> PatientFacts:
        """The same facts under another trial's default windows, sharing the normalized records
        and every answer computed so far."""
        if defaults is self.defaults:
            return self
        shared = copy.copy(self)
        shared.defaults = defaults
        return shared

    def _memo(self, compute: Callable[..., T], *args: Hashable) -> T:
        """``compute(*args)``, once: keyed on the method and every argument (windows resolved)."""
        key = (compute.__name__, args)
        value = self._cache.get(key, _UNSET)  # not try/except: most questions are asked once, and a raise costs more
        if value is _UNSET:
            value = self._cache[key] = compute(*args)
        return value

    # -- numbers -------------------------------------------------------------------------------

    def number(self, name: str, within: Window | None = None) -> NumberFact:
        spec = FACTS.get(name)
        if spec is None or spec.question is None:
            fact_spec(name, "number")  # raises, naming the fact
        return _NUMBER_QUESTIONS[spec.question](self, spec.part, within)  # type: ignore[index]

    def _age(self) -> NumberFact:
        birth = self.profile.birth_date
        if birth is None:
            return NumberFact("Age", Interval(), "a", missing=("birth date",))
        years = completed_years(birth, self.as_of)
        ev = Evidence.trusted(fact="age", label="Age", value=years, unit="a", source=f"birth_date: {birth.isoformat()}")
        return NumberFact("Age", Interval.point(years), "a", (ev,))

    def lab(self, analyte: str, window: Window) -> NumberFact:
        """The latest numeric result in the window; same-day results span an interval."""
        return self._memo(self._lab, analyte, window)

    def _lab(self, analyte: str, window: Window) -> NumberFact:
        """The latest result in the window; without one, notes on a result in it recorded without
        its control (then not used) and on the latest result before it."""
        info = ANALYTES[analyte]
        start = window.start(self.as_of)
        results = [lab for lab in self._labs.get(analyte, ()) if lab.date >= start]  # none is after the screening date
        if not results:
            uncontrolled = max((d for d in self._without_control.get(analyte, ()) if d >= start), default=None)
            notes = () if uncontrolled is None else (f"the {_in_sentence(info.display)} on {uncontrolled.isoformat()} was recorded without its control",)
            notes += older(info.display, (lab.date for lab in self._labs.get(analyte, ()) if lab.date < start), window)
            return NumberFact(info.display, Interval(), info.unit, missing=(_label_window(info.display, window),), notes=notes)
        if len(results) == 1:
            return NumberFact(info.display, results[0].interval, info.unit, (self._memo(self._lab_evidence, results[0]),))
        latest = max(lab.date for lab in results)
        same_day = [(lab, self._memo(self._lab_evidence, lab)) for lab in results if lab.date == latest]
        same_day.sort(key=lambda pair: (pair[0].interval.low, pair[0].interval.high, pair[1].source or ""))
        interval = same_day[0][0].interval
        for lab, _ in same_day[1:]:
            interval = interval.hull(lab.interval)
        return NumberFact(info.display, interval, info.unit, tuple(ev for _, ev in same_day))

    def _assessment(self, name: AssessmentName, window: Window) -> NumberFact:
        return self._memo(self._assessment_in, name, window)

    def _assessment_in(self, name: AssessmentName, window: Window) -> NumberFact:
        label = _ASSESSMENT_LABEL[name]
        start = window.start(self.as_of)
        found = [(a.date, a.grade) for a in self.profile.assessments if a.name is name and start <= a.date <= self.as_of]
        if not found:
            notes = older(label, (a.date for a in self.profile.assessments if a.name is name and a.date < start), window)
            return NumberFact(label, Interval(), missing=(_label_window(label, window),), notes=notes)
        latest = max(d for d, _ in found)
        grades = sorted({g for d, g in found if d == latest})
        ev = tuple(Evidence.trusted(fact=f"assessment.{name.value}", label=label, value=g, date=latest, source="assessment") for g in grades)
        return NumberFact(label, Interval(grades[0], grades[-1]), evidence=ev)

    # -- Child-Pugh ----------------------------------------------------------------------------

    def _child_pugh(self, within: Window | None) -> tuple[NumberFact, dict[str, NumberFact]]:
        lab_window = within or self.defaults.lab_within
        assessment_window = within or self.defaults.assessment_within
        return self._memo(self._child_pugh_in, lab_window, assessment_window)

    def _child_pugh_in(self, lab_window: Window, assessment_window: Window) -> tuple[NumberFact, dict[str, NumberFact]]:
        inr = self.lab("inr", lab_window)
        coagulation: tuple[NumberFact, Callable[[float], int]] = (inr, child_pugh.inr_points)
        if not inr.evidence:
            pt = self.lab("prothrombin_time", lab_window)
            if pt.evidence:
                coagulation = (pt, child_pugh.prothrombin_prolongation_points)
            else:
                coagulation = (NumberFact("INR", Interval(), missing=(_label_window("INR or prothrombin time with control", lab_window),),
                                          notes=inr.notes + pt.notes), child_pugh.inr_points)
        components: dict[str, tuple[NumberFact, Callable[[float], int]]] = {
            "bilirubin": (self.lab("bilirubin", lab_window), child_pugh.bilirubin_points),
            "albumin": (self.lab("albumin", lab_window), child_pugh.albumin_points),
            "inr": coagulation,
            "ascites": (self._assessment(AssessmentName.ASCITES_GRADE, assessment_window), child_pugh.ascites_points),
            "encephalopathy": (self._assessment(AssessmentName.ENCEPHALOPATHY_GRADE, assessment_window), child_pugh.encephalopathy_points),
        }
        points: dict[str, NumberFact] = {}
        parts: list[Evidence] = []
        low = high = 0
        missing: list[str] = []
        notes: list[str] = []
        for component, (fact, score) in components.items():
            notes.extend(fact.notes)
            if fact.evidence:
                p_low, p_high = points_range(fact.interval, score)
            else:
                p_low, p_high = 1, 3
                missing.extend(fact.missing)
            low, high = low + p_low, high + p_high
            label = _POINTS_LABEL[component]
            exact = p_low if p_low == p_high else None
            part_evidence = tuple(ev.replaced(points=exact) for ev in fact.evidence)
            parts.extend(part_evidence)
            points[component] = NumberFact(label, Interval(p_low, p_high), evidence=part_evidence, missing=fact.missing, notes=fact.notes)
        score_ev = Evidence.trusted(
            fact="child_pugh.score",
            label="Child-Pugh score",
            value=low if low == high else None,
            low=None if low == high else float(low),
            high=None if low == high else float(high),
            parts=tuple(parts),
        )
        return NumberFact("Child-Pugh score", Interval(low, high), evidence=(score_ev,), missing=tuple(missing), notes=tuple(notes)), points

    # -- MELD family ---------------------------------------------------------------------------

    def _meld(self, name: str, within: Window | None) -> NumberFact:
        window = within or self.defaults.lab_within
        return self._memo(self._meld_in, name, window)

    def _meld_in(self, name: str, window: Window) -> NumberFact:
        ranges: list[tuple[float, ...]] = []
        parts: list[Evidence] = []
        missing: list[str] = []
        notes: list[str] = []
        tested: dt.date | None = None
        for analyte in MELD_INPUTS[name]:
            fact = self.lab(analyte, window)
            ranges.append(meld_input(analyte, fact.interval if fact.evidence else None))
            parts.extend(fact.evidence)
            missing.extend(fact.missing)
            notes.extend(fact.notes)
            if analyte == "creatinine" and fact.evidence:
                tested = max(ev.date for ev in fact.evidence)  # type: ignore[type-var]
        flags: list[tuple[bool, ...]] = [MELD_DIALYSIS_UNKNOWN]
        if tested is not None:  # without a creatinine, the week before its test is unknown: dialysis is not asked
            dialysis = self._memo(self._dialysis, tested)
            parts.extend(dialysis.evidence)
            missing.extend(dialysis.missing)
            flags = [tuple(sorted(dialysis.possible))]
        if name == "meld_3":
            sex = self.category("sex")
            parts.extend(sex.evidence)
            missing.extend(sex.missing)
            age = self.number("age")
            if age_decides_female_term(sex.possible):
                parts.extend(age.evidence)
                missing.extend(age.missing)
            flags.append(female_term(sex.possible, age.interval if age.evidence else None))
        low, high = meld_corners(name, ranges, flags)
        label = SCORES[name]
        ev = Evidence.trusted(fact=name, label=label, value=low if low == high else None, low=None if low == high else float(low),
                              high=None if low == high else float(high), parts=tuple(parts))
        return NumberFact(label, Interval(low, high), evidence=(ev,), missing=tuple(missing), notes=tuple(notes))

    # -- categories ----------------------------------------------------------------------------

    def category(self, name: str) -> CategoryFact:
        if name == "child_pugh.class":  # from the score, under the default windows
            return self._memo(self._child_pugh_class, self.defaults.lab_within, self.defaults.assessment_within)
        return self._memo(self._category, name)

    def _child_pugh_class(self, lab_window: Window, assessment_window: Window) -> CategoryFact:
        score = self._memo(self._child_pugh_in, lab_window, assessment_window)[0]
        classes = frozenset(child_pugh.child_pugh_class(t) for t in range(int(score.interval.low), int(score.interval.high) + 1))
        return CategoryFact("Child-Pugh class", frozenset(str(c) for c in classes), score.evidence, score.missing, score.notes)

    def _category(self, name: str) -> CategoryFact:
        spec = fact_spec(name, "category")
        if name == "dialysis":
            return self._dialysis(self.as_of)
        value = getattr(self.profile, name)
        if value is None:
            return CategoryFact(spec.label, frozenset(spec.values), missing=(spec.label.lower(),))
        value = value.value if hasattr(value, "value") else value
        return CategoryFact(spec.label, frozenset({value}), (Evidence.trusted(fact=name, label=spec.label, value=value, source=name),))

    def _dialysis(self, ending: dt.date) -> CategoryFact:
        """Dialysis at least twice in the week ending on ``ending`` (:data:`DIALYSIS_WINDOW`, that
        day included). The ``dialysis`` fact's week ends on the screening date; the MELD family's
        on the day of the creatinine result it uses, as OPTN Policy 9.1.D counts dialysis "within
        the prior week" of the serum creatinine test: dialysis after the test did not lower that
        result. Without a creatinine the MELD family does not ask (:data:`MELD_DIALYSIS_UNKNOWN`)."""
        found = self.procedure(DIALYSIS_CODELIST, DIALYSIS_WINDOW, at_least=2, ending=ending)
        possible = frozenset({True, False}) if found.value is None else frozenset({found.value})
        return CategoryFact(FACTS["dialysis"].label, possible, found.evidence, found.missing)

    # -- records -------------------------------------------------------------------------------

    def condition(self, codes: str, timing: Timing, within: Window | None) -> Finding:
        return self._memo(self._condition, codes, timing, within)

    def _condition(self, codes: str, timing: Timing, within: Window | None) -> Finding:
        if self.profile.conditions is None:
            return Finding(None, missing=("problem list (conditions not reviewed)",))
        reviewed = _count(len(self.profile.conditions), "condition")
        matching = self._memo(self._conditions).get(codes)
        if not matching:  # the usual answer to an exclusion's question
            return Finding(False, (), (), reviewed)
        start = within.start(self.as_of) if within else None
        hits = [(self._timed(timing, start, c.resolved, active), ev, c) for c, active, ev in matching]
        return self._combine(hits, self.codelists[codes].title, reviewed)

    def _conditions(self) -> dict[str, list[tuple[Condition, bool, Evidence]]]:
        """The conditions with an onset up to the screening date, under each code list they belong
        to: each with whether its status is active and its evidence, built once for every question
        (and only for conditions some list names)."""
        by_list: dict[str, list[tuple[Condition, bool, Evidence]]] = defaultdict(list)
        for c in self.profile.conditions or ():
            if c.onset is not None and c.onset > self.as_of:
                continue
            lists = self.codelists.for_condition(c.icd10, c.snomed)
            if not lists:
                continue
            code = c.icd10 or f"SNOMED {c.snomed}"
            status = "resolved " + c.resolved.isoformat() if c.resolved else c.status.value
            ev = Evidence.trusted(fact="condition", label=c.display or code, value=code, date=c.onset, source=f"condition {status}")
            entry = (c, c.status in ACTIVE_CONDITION_STATUSES, ev)
            for name in lists:
                by_list[name].append(entry)
        return by_list

    def medication(self, codes: str, timing: Timing, within: Window | None) -> Finding:
        return self._memo(self._medication, codes, timing, within)

    def _medication(self, codes: str, timing: Timing, within: Window | None) -> Finding:
        if self.profile.medications is None:
            return Finding(None, missing=("medication list (not reviewed)",))
        start = within.start(self.as_of) if within else None
        hits: list[tuple[Truth, Evidence, Medication]] = []
        for m in self.profile.medications:
            matched = self.codelists.for_medication((m.name, *m.ingredients), m.atc, m.rxnorm).get(codes)
            if not matched:
                continue
            name = matched if isinstance(matched, str) else None
            if m.status is MedicationStatus.INTENDED or (m.start is not None and m.start > self.as_of):
                continue
            # a medication ending on the screening date is still taken that day
            value = self._timed(timing, start, m.end + dt.timedelta(days=1) if m.end else None, m.status is MedicationStatus.ACTIVE)
            ev = Evidence.trusted(fact="medication", label=m.name, value=m.atc or name or m.rxnorm, date=m.start,
                                  source=f"medication {m.status.value}" + (f", ended {m.end.isoformat()}" if m.end else ""))
            hits.append((value, ev, m))
        return self._combine(hits, self.codelists[codes].title, _count(len(self.profile.medications), "medication"))

    def procedure(self, codes: str, within: Window | None, at_least: int = 1, ending: dt.date | None = None) -> Finding:
        """Procedures of ``codes`` at least ``at_least`` times, ever or ``within`` a window ending
        on ``ending`` (the screening date unless given; never after it)."""
        return self._memo(self._procedure, codes, within, at_least, min(ending, self.as_of) if ending else self.as_of)

    def _procedure(self, codes: str, within: Window | None, at_least: int, ending: dt.date) -> Finding:
        codelist = self.codelists[codes]
        if self.profile.procedures is None:
            return Finding(None, missing=("procedure history (not reviewed)",))
        start = within.start(ending) if within else None
        certain: list[Evidence] = []
        possible: list[Evidence] = []
        before: list[dt.date] = []  # matching procedures done before the window
        for p in self.profile.procedures:
            if codes not in self.codelists.for_procedure(p.kind, p.system, p.code) or (p.date is not None and p.date > ending):
                continue
            if start is not None and p.date is not None and p.date < start:
                before.append(p.date)
                continue
            ev = Evidence.trusted(fact="procedure", label=p.display or p.kind or p.code or "", value=p.kind or p.code, date=p.date,
                                  source="procedure" + (f" {p.system} {p.code}" if p.code else ""))
            (certain if p.date is not None or start is None else possible).append(ev)
        value: Truth = True if len(certain) >= at_least else (False if len(certain) + len(possible) < at_least else None)
        evidence = tuple(certain + possible) if value is not False else ()
        missing = (f"dates of procedures matching {codelist.title}",) if value is None else ()
        notes = older("one", before, within) if within and value is False and not certain and not possible else ()
        return Finding(value, evidence, missing, reviewed=_count(len(self.profile.procedures), "procedure"), notes=notes)

    def imaging(self, finding: str, modalities: tuple, window: Window | None) -> Finding:
        window = window or self.defaults.imaging_within
        return self._memo(self._imaging, finding, modalities, window)

    def _imaging(self, finding: str, modalities: tuple, window: Window) -> Finding:
        start = window.start(self.as_of)
        studies = [s for s in self.profile.imaging if start <= s.date <= self.as_of and (not modalities or s.modality in modalities)]
        kinds = "/".join(m.value for m in modalities) or "imaging"
        if not studies:
            notes = older(kinds, (s.date for s in self.profile.imaging if s.date < start and (not modalities or s.modality in modalities)), window)
            return Finding(None, missing=(_label_window(kinds, window),), notes=notes)
        showing = [s for s in studies if s.findings is not None and finding in s.findings]
        uncoded = [s for s in studies if s.findings is None]
        if not showing and uncoded:
            evidence = tuple(Evidence.trusted(fact="imaging", label=s.modality.value, value="findings not coded", date=s.date,
                                              source="imaging report" + (f": {s.report}" if s.report else "")) for s in uncoded)
            return Finding(None, evidence, (f"structured findings of the {kinds} report (last {window.describe()})",))
        evidence = tuple(
            Evidence.trusted(fact="imaging", label=s.modality.value, value=", ".join(sorted(s.findings or ())) or "no findings", date=s.date,
                             source="imaging report" + (f": {s.report}" if s.report else ""))
            for s in (showing or studies)
        )
        return Finding(bool(showing), evidence, reviewed=_count(len(studies), "study", "studies"))

    def lab_result(self, analyte: str, positive: bool, window: Window | None) -> Finding:
        window = window or self.defaults.lab_within
        return self._memo(self._lab_result, analyte, positive, window)

    def _lab_result(self, analyte: str, positive: bool, window: Window) -> Finding:
        info = ANALYTES[analyte]
        start = window.start(self.as_of)
        results = [q for q in self._qualitative.get(analyte, ()) if start <= q.date <= self.as_of]
        if not results:
            notes = older(info.display, (q.date for q in self._qualitative.get(analyte, ()) if q.date < start), window)
            return Finding(None, missing=(_label_window(info.display, window),), notes=notes)
        latest = max(q.date for q in results)
        same_day = sorted(((q, self._memo(self._qualitative_evidence, q)) for q in results if q.date == latest), key=lambda pair: (pair[1].source or "", pair[0].result.value))
        signs = {True if q.result in POSITIVE_RESULTS else False if q.result in NEGATIVE_RESULTS else None for q, _ in same_day}
        sign = signs.pop() if len(signs) == 1 else None
        value = None if sign is None else sign is positive
        missing = () if value is not None else (f"{info.display}: a conclusive result",)
        return Finding(value, tuple(ev for _, ev in same_day), missing)

    def _timed(self, timing: Timing, start: dt.date | None, stopped: dt.date | None, ongoing: bool) -> Truth:
        """Active now / ever / within the window, for a record that stopped on ``stopped`` (not
        active from that day) or, undated, is ``ongoing`` or not by its status."""
        if timing is Timing.EVER:
            return True
        if stopped is not None:
            return stopped > self.as_of if timing is Timing.ACTIVE else stopped > start  # type: ignore[operator]
        if timing is Timing.ACTIVE:
            return ongoing
        return True if ongoing else None  # stopped at an unknown date: maybe inside the window

    @staticmethod
    def _combine(hits: list[tuple[Truth, Evidence, Condition | Medication]], title: str, reviewed: str) -> Finding:
        """The answer from each matching record's (value, evidence, record); when none counts,
        every one is evidence and noted with how it ended (:func:`ended`)."""
        if not hits:  # the usual answer to an exclusion's question
            return Finding(False, (), (), reviewed)
        values = [v for v, _, _ in hits]
        value: Truth = True if True in values else (None if None in values else False)
        evidence = tuple(ev for v, ev, _ in hits if v is value or value is False)
        missing = (f"dates of records matching {title}",) if value is None else ()
        notes = tuple(sorted({ended(record) for _, _, record in hits})) if value is False else ()
        return Finding(value, evidence, missing, reviewed=reviewed, notes=notes)


_NUMBER_QUESTIONS: dict[str, Callable[[PatientFacts, str, Window | None], NumberFact]] = {  # by FactSpec.question
    "age": lambda facts, _, __: facts._memo(facts._age),
    "lab": lambda facts, analyte, within: facts.lab(analyte, within or facts.defaults.lab_within),
    "assessment": lambda facts, name, within: facts._assessment(AssessmentName(name), within or facts.defaults.assessment_within),
    "child_pugh.score": lambda facts, _, within: facts._child_pugh(within)[0],
    "child_pugh.points": lambda facts, item, within: facts._child_pugh(within)[1][item],
    "meld": lambda facts, score, within: facts._meld(score, within),
}
