"""A chunk of the flat cohort table, parsed column by column.

Each column is handled as codes into its distinct values (:class:`Cells`): a value is parsed
once, however many rows hold it, and the result is gathered back by code. Parsing is strict: a
value is accepted only in a form the profile model accepts with the same meaning (``1.5``, an
ISO date, a code list item that validates as a :class:`~screening.patient.model.Condition`...).
A row with any value not accepted here is not "ok": it goes through the per-row path
(:func:`screening.cohort.flat.row_to_profile` and the profile model), which either reads it or
names the field in error. So the column-wise reading never accepts what the per-row reading
refuses, and ``tests/test_columnar.py`` checks both give the same facts.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from ..clinical.analytes import ANALYTES
from ..clinical.units import to_canonical
from ..errors import UnitError
from ..facts.intervals import Interval
from ..facts.resolve import censored, completed_years
from ..patient.model import (
    _ASSESSMENT_MAX,
    AssessmentName,
    Comparator,
    Condition,
    ConsentStatus,
    ImagingFinding,
    Medication,
    Procedure,
    QualitativeResult,
    Sex,
    deceased_notice,
)
from .flat import _ATC, ASSESSMENTS, ERROR_MARKER, NUMERIC_LABS, QUALITATIVE_LABS, _items, blank

INVALID = object()  # a value the column-wise reading does not accept (the row takes the per-row path)
_FEW_VALUES = 256
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_GRADE = re.compile(r"^\d+$")
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True)
class Cells:
    """One column of a chunk: per row, a code into ``values`` (its distinct non-empty values), or
    -1 for an empty cell."""

    codes: np.ndarray
    values: list[Any]

    @classmethod
    def of(cls, series: pd.Series | None, rows: int) -> Cells:
        if series is None:
            return cls(np.full(rows, -1, dtype=np.int64), [])
        if isinstance(series.dtype, pd.CategoricalDtype):
            codes, values = series.cat.codes.to_numpy(dtype=np.int64), _python_values(series.cat.categories)
        else:
            codes, uniques = pd.factorize(series, use_na_sentinel=True)
            codes, values = codes.astype(np.int64), _python_values(uniques)
        empty = [not v.strip() if isinstance(v, str) else blank(v) for v in values]
        if any(empty):
            codes = np.array([-1 if e else i for i, e in enumerate(empty)] + [-1], dtype=np.int64)[codes]
        return cls(codes, values)

    @cached_property
    def present(self) -> np.ndarray:
        return self.codes >= 0

    @cached_property
    def used(self) -> np.ndarray:
        """Per distinct value, whether some row holds it (a Parquet dictionary may hold more);
        a few values are all taken as used (parsing them costs less than counting the rows)."""
        if len(self.values) <= _FEW_VALUES:
            return np.ones(len(self.values), dtype=bool)
        return np.bincount(self.codes + 1, minlength=len(self.values) + 1)[1:] > 0

    def parse(self, parse: Callable[[Any], Any]) -> tuple[list[Any], np.ndarray | None]:
        """``parse`` applied to each distinct value some row holds, and the rows whose value it
        refused (None: none). A parser with a ``many(values, wanted)`` method parses all the
        wanted values at once (the same results, faster)."""
        used = self.used
        many = getattr(parse, "many", None)
        parsed = many(self.values, used) if many else [parse(v) if u else INVALID for v, u in zip(self.values, used)]  # unused: never gathered
        refused = np.array([p is INVALID for p in parsed] + [False], dtype=bool)
        if not refused[:-1][used].any():
            return parsed, None
        return parsed, refused[self.codes]

    def gather(self, parsed: list[Any], missing: Any, dtype: Any = object) -> np.ndarray:
        """Per row, the parsed value of its cell (``missing`` for an empty or refused one)."""
        table = np.array([missing if p is INVALID else p for p in parsed] + [missing], dtype=dtype)
        return table[self.codes]


def _python_values(values: Any) -> list[Any]:
    """Distinct values as a list of Python objects (text through ``tolist``, far faster than
    iterating an Arrow-backed array; anything else as it comes)."""
    return values.tolist() if pd.api.types.is_string_dtype(values.dtype) else list(values)


# -- value parsers: a Python value, or INVALID ------------------------------------------------------


def parse_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (str, numbers.Real)):
        return INVALID
    if isinstance(value, str):
        if not _NUMBER.match(value):
            return INVALID
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else INVALID


class _Days:
    """A date written ``YYYY-MM-DD``, as a day number (``date.toordinal``)."""

    def __call__(self, value: Any) -> Any:
        text = str(value)
        if not _DATE.match(text):
            return INVALID
        try:
            return dt.date.fromisoformat(text).toordinal()
        except ValueError:
            return INVALID

    def many(self, values: list[Any], wanted: np.ndarray) -> list[Any]:
        """The wanted values' day numbers (INVALID for the others): ten-character strings as
        arrays of code points, and what that does not accept (a non-ASCII digit, an impossible
        day, not a string) one by one."""
        parsed: list[Any] = [INVALID] * len(values)
        at = [i for i in np.flatnonzero(wanted).tolist() if isinstance(values[i], str) and len(values[i]) == 10]
        if at:
            points = np.array([values[i] for i in at], dtype="U10").view(np.uint32).reshape(-1, 10).astype(np.int64)
            digits = points[:, [0, 1, 2, 3, 5, 6, 8, 9]] - ord("0")
            shaped = ((digits >= 0) & (digits <= 9)).all(axis=1) & (points[:, 4] == ord("-")) & (points[:, 7] == ord("-"))
            year, month, day = digits[:, :4] @ [1000, 100, 10, 1], digits[:, 4:6] @ [10, 1], digits[:, 6:] @ [10, 1]
            start = np.where(shaped, year - 1970, 0).astype("datetime64[Y]").astype("datetime64[M]") + np.where(shaped, month - 1, 0)
            length = ((start + 1).astype("datetime64[D]") - start.astype("datetime64[D]")).astype(np.int64)
            ok = shaped & (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= length)
            ordinal = (start.astype("datetime64[D]") - _EPOCH).astype(np.int64) + _EPOCH_ORDINAL + day - 1
            for i, good, number in zip(at, ok.tolist(), ordinal.tolist()):
                if good:
                    parsed[i] = number
        for i in np.flatnonzero(wanted).tolist():
            if parsed[i] is INVALID:
                parsed[i] = self(values[i])
        return parsed


parse_day = _Days()
_EPOCH, _EPOCH_ORDINAL = np.datetime64("1970-01-01", "D"), dt.date(1970, 1, 1).toordinal()


def completed_years_on(days: np.ndarray, as_of: dt.date) -> np.ndarray:
    """:func:`screening.facts.resolve.completed_years` of birth days (day numbers) on ``as_of``."""
    day = (days - _EPOCH_ORDINAL).astype("datetime64[D]")
    year, month = day.astype("datetime64[Y]"), day.astype("datetime64[M]")
    month_of_year = (month - year.astype("datetime64[M]")).astype(np.int64) + 1
    day_of_month = (day - month.astype("datetime64[D]")).astype(np.int64) + 1
    before_birthday = as_of.month * 32 + as_of.day < month_of_year * 32 + day_of_month
    return as_of.year - (year.astype(np.int64) + 1970) - before_birthday


def parse_grade(name: str) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if isinstance(value, bool):
            return INVALID
        if isinstance(value, str):
            grade = int(value) if _GRADE.match(value) else None
        elif isinstance(value, numbers.Integral) or (isinstance(value, float) and value.is_integer()):
            grade = int(value)
        else:
            grade = None
        return grade if grade is not None and 0 <= grade <= _ASSESSMENT_MAX[AssessmentName(name)] else INVALID

    return parse


def parse_choice(choices: tuple[str, ...]) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        text = str(value)
        return text if text in choices else INVALID

    return parse


def parse_deceased(value: Any) -> Any:
    """The notice of a ``deceased`` cell (a yes/no, or the date of death), as the profile gives it."""
    if isinstance(value, str) and _DATE.match(value.strip()):
        try:
            return deceased_notice(dt.date.fromisoformat(value.strip()))
        except ValueError:
            return INVALID
    known = parse_bool(value)
    return INVALID if known is INVALID else deceased_notice(known)


def parse_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _BOOLEANS.get(value.strip().lower(), INVALID)
    return INVALID


def parse_unit(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else INVALID


def parse_comparator(value: Any) -> Any:
    return Comparator(value) if isinstance(value, str) and value in {c.value for c in Comparator} else INVALID


def parse_result(value: Any) -> Any:
    text = str(value).strip().lower()
    return QualitativeResult(text) if text in {r.value for r in QualitativeResult} else INVALID


def _records(build: Callable[[str], Any]) -> Callable[[Any], Any]:
    """A ``;``-separated list, each item built into a profile model (``none``: the empty list)."""

    def parse(value: Any) -> Any:
        try:
            return tuple(build(item) for item in _items(value) or ())
        except ValidationError:
            return INVALID

    return parse


parse_conditions = _records(lambda code: Condition(icd10=code))
parse_medications = _records(lambda name: Medication(name=name, atc=name) if _ATC.match(name) else Medication(name=name))
parse_procedures = _records(lambda kind: Procedure(kind=kind))


def parse_findings(value: Any) -> Any:
    items = _items(value) or ()
    choices = {f.value for f in ImagingFinding}
    return tuple(sorted({ImagingFinding(i) for i in items})) if all(i in choices for i in items) else INVALID


# -- the chunk ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coded:
    """A parsed column: per row a code into ``values`` (parsed distinct values), -1 for none."""

    codes: np.ndarray
    values: list[Any]


@dataclass
class Lab:
    """A numeric lab's result per row, canonical: interval ends (NaN: no result) and its day."""

    low: np.ndarray
    high: np.ndarray
    low_open: np.ndarray
    high_open: np.ndarray
    day: np.ndarray  # NO_DAY: no result
    codes: np.ndarray  # per row a code into ``intervals`` (-1: no result)
    intervals: list[Interval]


@dataclass
class Dated:
    """A per-row value and the day it was recorded (:data:`NO_DAY` when there is none)."""

    value: Any  # Coded, or a float array (NaN: none)
    day: np.ndarray


@dataclass
class FlatChunk:
    """A flat table chunk, read column-wise. ``ok`` marks the rows every cell of which was read
    here; the other rows' values are meaningless and take the per-row path."""

    rows: int
    as_of: dt.date
    patient_ids: np.ndarray
    ok: np.ndarray
    age: np.ndarray  # completed years, NaN without a birth date
    notices: np.ndarray  # per row, what to check before any contact ("": nothing; from ``deceased``)
    scalars: dict[str, Coded]  # sex, consent, pregnant...
    records: dict[str, Coded]  # conditions, medications, procedures: tuples of models; -1: not reviewed
    labs: dict[str, Lab]
    qualitative: dict[str, Dated]  # Coded results
    assessments: dict[str, Dated]  # float grades
    ultrasound: Dated  # Coded findings (a tuple; -1 when not coded) of the one study and its day

    def lab(self, name: str) -> Lab:
        """The results of a numeric lab (none for every row if the table has no such column)."""
        if name not in self.labs:
            rows = self.rows
            self.labs[name] = Lab(np.full(rows, np.nan), np.full(rows, np.nan), np.zeros(rows, bool), np.zeros(rows, bool),
                                  np.full(rows, NO_DAY), np.full(rows, -1), [])
        return self.labs[name]


NO_DAY = np.iinfo(np.int64).max  # "no record": after every screening date


def parse_age(as_of: dt.date) -> _Ages:
    """Age in completed years on ``as_of`` of a birth date (born after it: refused, so the
    per-row path names the error)."""
    return _Ages(as_of)


class _Ages:
    """:func:`parse_age`, one value or many at once."""

    def __init__(self, as_of: dt.date):
        self.as_of = as_of

    def __call__(self, value: Any) -> Any:
        text = str(value)
        if not _DATE.match(text):
            return INVALID
        try:
            birth = dt.date.fromisoformat(text)
        except ValueError:
            return INVALID
        return completed_years(birth, self.as_of) if birth <= self.as_of else INVALID

    def many(self, values: list[Any], wanted: np.ndarray) -> list[Any]:
        days = parse_day.many(values, wanted)
        born = np.array([0 if day is INVALID else day for day in days], dtype=np.int64)
        ages = completed_years_on(born, self.as_of).tolist()
        latest = self.as_of.toordinal()
        return [INVALID if day is INVALID or day > latest else age for day, age in zip(days, ages)]


def read_chunk(frame: pd.DataFrame, as_of: dt.date) -> FlatChunk:
    """Read a flat table chunk (:mod:`screening.cohort.flat` columns) column-wise."""
    rows = len(frame)
    refused = np.zeros(rows, dtype=bool)
    read_columns: dict[str, Cells] = {}

    def cells(name: str) -> Cells:
        if name not in read_columns:
            read_columns[name] = Cells.of(frame[name] if name in frame.columns else None, rows)
        return read_columns[name]

    def column(name: str, parse: Callable[[Any], Any], missing: Any = None, dtype: Any = object, read: np.ndarray | None = None,
               required: bool = False) -> np.ndarray:
        """Per row, the parsed cell. A refused cell refuses its row, if the row reads it (``read``:
        rows whose profile uses this column; all by default), as does an empty ``required`` one."""
        column_cells = cells(name)
        parsed, bad = column_cells.parse(parse)
        if required:
            bad = ~column_cells.present if bad is None else bad | ~column_cells.present
        refuse(bad, read)
        return column_cells.gather(parsed, missing, dtype)

    def coded(name: str, parse: Callable[[Any], Any], read: np.ndarray | None = None) -> Coded:
        column_cells = cells(name)
        parsed, bad = column_cells.parse(parse)
        refuse(bad, read)
        return Coded(column_cells.codes if bad is None else np.where(bad, -1, column_cells.codes), parsed)

    def refuse(bad: np.ndarray | None, read: np.ndarray | None = None) -> None:
        if bad is not None:
            refused[bad if read is None else bad & read] = True

    if ERROR_MARKER in frame.columns:  # rows the reader could not read: the per-row path makes them error rows
        refused |= frame[ERROR_MARKER].notna().to_numpy()
    ids = (frame["id"] if "id" in frame.columns else pd.Series([None] * rows, index=frame.index, dtype=object)).astype("str")
    length = ids.str.strip().str.len().to_numpy(dtype=float, na_value=0)
    refused |= ~((length >= 1) & (length <= 128))
    patient_ids = ids.where(length > 0, "").array  # a blank id is no id

    age = column("birth_date", parse_age(as_of), missing=np.nan, dtype=float)
    notices = column("deceased", parse_deceased, missing="")

    scalars = {
        "sex": coded("sex", parse_choice(tuple(s.value for s in Sex))),
        "consent": coded("consent", parse_choice(tuple(c.value for c in ConsentStatus))),
        **{name: coded(name, parse_bool) for name in ("pregnant", "lactating", "childbearing_potential")},
    }
    records = {
        "conditions": coded("conditions", parse_conditions),
        "medications": coded("medications", parse_medications),
        "procedures": coded("procedures", parse_procedures),
    }

    def day_of(name: str, present: np.ndarray) -> np.ndarray:
        return np.where(present, column(name, parse_day, missing=NO_DAY, dtype=np.int64, read=present, required=True), NO_DAY)

    labs = {}
    for name in NUMERIC_LABS:
        if name not in frame.columns:
            continue
        value_cells = cells(name)
        present = value_cells.present
        numbers, bad_value = value_cells.parse(parse_number)
        units = coded(f"{name}_unit", parse_unit, read=present)
        comparators = coded(f"{name}_comparator", parse_comparator, read=present)
        day = day_of(f"{name}_date", present)
        refuse(bad_value, present)
        labs[name] = _lab(name, Coded(value_cells.codes if bad_value is None else np.where(bad_value, -1, value_cells.codes), numbers),
                          units, comparators, day, refused)

    qualitative = {}
    for name in QUALITATIVE_LABS:
        results = coded(name, parse_result)
        qualitative[name] = Dated(results, day_of(f"{name}_date", results.codes >= 0))

    assessments = {}
    for name in ASSESSMENTS:
        grade_cells = cells(name)
        grades = column(name, parse_grade(name), missing=np.nan, dtype=float)
        assessments[name] = Dated(grades, day_of(f"{name}_date", grade_cells.present))

    study = cells("ultrasound_date").present
    ultrasound = Dated(coded("ultrasound_findings", parse_findings, read=study), day_of("ultrasound_date", study))
    return FlatChunk(rows, as_of, patient_ids, ~refused, age, notices, scalars, records, labs, qualitative, assessments, ultrasound)


def _lab(name: str, numbers: Coded, units: Coded, comparators: Coded, day: np.ndarray, refused: np.ndarray) -> Lab:
    """Canonical intervals of the parsed ``numbers`` (-1: none), converted once per distinct
    (value, unit, comparator); a result the profile path would refuse (unknown unit, negative
    value) refuses the row (updated in place)."""
    from ..evaluators.vectorized import group_rows

    present = numbers.codes >= 0
    codes = np.full(len(present), -1, dtype=np.int64)
    intervals: list[Interval] = []
    at = np.flatnonzero(present)
    if len(at):
        triples = [numbers.codes[at], units.codes[at], comparators.codes[at]]
        groups, first = group_rows(triples)
        canonical_unit = ANALYTES[name].unit
        table = []
        for value_code, unit_code, comparator_code in zip(*(codes_of[first].tolist() for codes_of in triples)):
            unit = units.values[unit_code] if unit_code >= 0 else canonical_unit
            comparator = comparators.values[comparator_code] if comparator_code >= 0 else None
            try:
                canonical = to_canonical(name, numbers.values[value_code], unit or "1")
            except UnitError:
                table.append(-1)
                continue
            interval = censored(canonical, comparator)
            if not (math.isfinite(canonical) and canonical >= 0) or interval.is_empty():
                table.append(-1)
                continue
            table.append(len(intervals))
            intervals.append(interval)
        codes[at] = np.array(table, dtype=np.int64)[groups]
        refused[present & (codes < 0)] = True
    ends = [np.array([getattr(i, end) for i in intervals] + [missing], dtype=float)[codes]
            for end, missing in (("low", np.nan), ("high", np.nan), ("low_open", 0), ("high_open", 0))]
    return Lab(ends[0], ends[1], ends[2].astype(bool), ends[3].astype(bool), np.where(codes >= 0, day, NO_DAY), codes, intervals)
