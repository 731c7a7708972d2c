"""Long EHR-style tables (a folder of CSV or Parquet files, the shape of an EHR or OMOP-like
extract), assembled into one profile per patient:

======================  =========================================================================
``patients``            ``id``, ``birth_date``, ``sex``, ``consent``, ``pregnant``, ``lactating``,
                        ``childbearing_potential`` (each as the profile model reads it: ``true``,
                        ``no``, ``Y``...; another value is an error)
``conditions``          ``patient_id``, ``icd10``, ``snomed``, ``display``, ``onset``,
                        ``resolved``, ``status``
``observations``        ``patient_id``, ``loinc``, ``display``, ``value``, ``unit``,
                        ``comparator``, ``control``, ``result``, ``date``
``medications``         ``patient_id``, ``name``, ``ingredients`` (as ``findings``), ``atc``,
                        ``rxnorm``, ``start``, ``end``, ``status``
``procedures``          ``patient_id``, ``kind``, ``code``, ``system``, ``display``, ``date``
``assessments``         ``patient_id``, ``name``, ``grade``, ``date``
``imaging``             ``patient_id``, ``modality``, ``date``, ``findings`` (``;``-separated or a
                        Parquet list; ``none`` or ``[]``: none seen; empty: not coded), ``report``
======================  =========================================================================

Every column but the first is optional; a column not listed (or no ``id``/``patient_id``), or a
table in both formats, stops the run, naming the file. A table that is absent means that history
was not extracted (``conditions`` etc. unknown for every patient); a table that is present is the
patient's whole history of that kind (none if no rows). Ids are read as the profile model reads
them (stripped of spaces); a row with an empty ``patient_id``, or one naming no patient in
``patients``, is nobody's; an id on several rows of ``patients`` is an error row on each. Every
other cell is read by the profile model as the same value in a JSON profile would be (a flag
stripped of spaces first, as in the flat table). An error names the file, the line of a CSV file
or row of a Parquet one, and the column. The same as-of date and look-back windows apply as for
single profiles.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import PatientDataError, ScreeningError
from ..patient.model import Assessment, Condition, ImagingStudy, Medication, Observation, PatientProfile, Procedure
from ..rules.loader import suggest
from .csvfile import Header, Records, line_ends
from .flat import CSV_OPTIONS, ERROR_MARKER, blank

RECORDS = {"conditions": Condition, "observations": Observation, "medications": Medication, "procedures": Procedure,
           "assessments": Assessment, "imaging": ImagingStudy}
TABLES = tuple(RECORDS)
CLOSED_WORLD = ("conditions", "medications", "procedures")  # absent table: not reviewed (None)
LISTS = ("findings", "ingredients")  # ``;``-separated cells
FLAGS = ("pregnant", "lactating", "childbearing_potential")
# per table: the column naming the patient, then one column per field of the profile model
COLUMNS = {"patients": ("id", *(f for f in PatientProfile.model_fields if f != "id" and f not in RECORDS)),
           **{name: ("patient_id", *model.model_fields) for name, model in RECORDS.items()}}


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """A file that cannot be read as a table (empty, not UTF-8, malformed CSV, not Parquet) is a
    data error naming the file."""
    try:
        yield
    except (UnicodeDecodeError, pd.errors.EmptyDataError, pd.errors.ParserError, pa.ArrowInvalid) as exc:
        raise PatientDataError(f"cannot be read: {exc}", source=str(path)) from None


NUMBER_COLUMNS = ("value", "control", "grade")  # the long tables' numeric columns: every other one is text


def to_frame(table: pa.Table | pa.RecordBatch, text: Iterable[str] = ("id", "patient_id")) -> pd.DataFrame:
    """``table`` in pandas, its integer columns among ``text`` (ids, codes) as text, as a CSV gives
    them (in pandas an integer column with a missing value is floats, and 1.0 is not the id 1); a
    column of whole floats there too (a pandas integer column with a missing value, written so),
    unless some value is beyond the integers a float holds exactly (2**53)."""
    frame = table.to_pandas()
    for name in text:
        if name not in table.schema.names:
            continue
        column, kind = table.column(name), table.schema.field(name).type
        if pa.types.is_floating(kind) and _whole(column):
            column, kind = column.cast(pa.int64()), pa.int64()
        if pa.types.is_integer(kind):
            frame[name] = column.cast(pa.string()).to_pandas().to_numpy()
    return frame


def _whole(column: pa.ChunkedArray) -> bool:
    """Whether every value of a float column (nulls aside) is an integer a float holds exactly."""
    exact = pc.and_(pc.less_equal(pc.abs(column), 2.0 ** 53), pc.equal(column, pc.floor(column)))
    return pc.all(exact).as_py() is not False


def _read_parquet(path: Path) -> pd.DataFrame:
    """A long table from Parquet: integer codes (SNOMED, procedure codes, ids) read as the text a CSV gives."""
    table = pq.read_table(path)
    return to_frame(table, [name for name in table.schema.names if name not in NUMBER_COLUMNS])


def _read_csv(path: Path) -> pd.DataFrame:
    """A long table from CSV. A line with more fields than the header stops the run (no row of it
    can be named), the first data line too: pandas would take its extra fields for an index."""
    frame = pd.read_csv(path, **CSV_OPTIONS)
    if not isinstance(frame.index, pd.RangeIndex):
        raise pd.errors.ParserError("the first data line has more fields than the header")
    return frame


def _read(folder: Path, name: str) -> tuple[pd.DataFrame, Place] | None:
    """The table ``name`` of ``folder`` (None if absent); in both formats, neither is chosen."""
    parquet, csv = folder / f"{name}.parquet", folder / f"{name}.csv"
    if parquet.exists() and csv.exists():
        raise PatientDataError(f"{csv.name} is there too: keep one", source=str(parquet))
    for path, reader in ((parquet, _read_parquet), (csv, _read_csv)):
        if path.exists():
            with reading(path):
                return _checked(reader(path), name, path), Place(str(path))
    return None


def _checked(frame: pd.DataFrame, name: str, path: Path) -> pd.DataFrame:
    """``frame``, if it has the column naming the patient and no column the profile has no field
    for: without the first, no row could be given to its patient (a history table would be every
    patient's empty history); the second would be an error row for every patient with a row in
    the table, or, left out, a misspelt column (``onset_date``) would vanish unseen."""
    key = COLUMNS[name][0]
    if key not in frame.columns:
        raise PatientDataError(f"no {key} column: its rows cannot be given to their patients", source=str(path))
    for column in frame.columns:
        if column not in COLUMNS[name]:
            hint = suggest(str(column), COLUMNS[name])
            raise PatientDataError(f"unknown column {str(column)!r}{f' (did you mean {hint!r}?)' if hint else ''}; "
                                   f"the columns of {name} are {', '.join(COLUMNS[name])}", source=str(path))
    return frame


def _ids(column: pd.Series) -> list[str | None]:
    """Patient ids as the profile model reads them (stripped); None for an empty cell, which names no patient."""
    text = column.astype(str).str.strip()
    present = (column.notna() & (text != "")).tolist()  # notna: None, NaN, NA, NaT (as flat.blank reads a cell)
    return [pid if ok else None for pid, ok in zip(text.tolist(), present)]


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    """The cells of a row that hold a value, as they are: the profile model reads them (a number or
    a yes/no from text, as in a JSON profile), or names the field it cannot read."""
    return {k: v for k, v in record.items() if not blank(v)}


def _items(value: Any) -> list[Any]:
    """A ``;``-separated cell; ``none``: coded, nothing (as in the flat table). A Parquet list is
    the list (``[]``: coded, nothing), as a JSON profile holds it."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    text = str(value).strip()
    return [] if text.lower() == "none" else [item.strip() for item in text.split(";") if item.strip()]


@dataclass(frozen=True)
class Place:
    """A long table's file, to name where a row is: a CSV row by its line, as an editor numbers
    them (counted only when a row is named), a Parquet row by its number from 1."""

    path: str

    def at(self, row: int) -> str:
        """``line N`` or ``row N`` of data row ``row`` (from 0)."""
        if self.path.lower().endswith(".parquet"):
            return f"row {row + 1}"
        stat = os.stat(self.path)
        return f"line {_record_lines(self.path, stat.st_mtime_ns, stat.st_size)[row]}"

    def where(self, row: int) -> str:
        return f"{Path(self.path).name} {self.at(row)}"


@functools.lru_cache(maxsize=8)
def _record_lines(path: str, modified: int, size: int) -> np.ndarray:
    """The line each data record of a CSV file starts on (blank lines skipped and quoted line ends
    kept, as pandas' C parser reads them), counted once per version of the file."""
    with open(path, "rb") as handle:
        header = Header.read(handle)
        records = Records(handle, len(header.text), 1 + line_ends(header.text))
        return np.fromiter((record.line for record in records), dtype=np.int64)


@dataclass(frozen=True)
class Source:
    """Where a profile read from long tables is: its row of ``patients`` and, per table, the rows
    of its records in the profile's order."""

    patient: tuple[Place, int]
    records: dict[str, tuple[Place, list[int]]]

    def locate(self, field: str) -> tuple[str, str | None]:
        """(file and line or row, field of that row) of a profile field: ``observations[2].unit``
        is the field ``unit`` of the patient's third row of ``observations``."""
        if (match := _RECORD_FIELD.fullmatch(field)) and match["table"] in self.records:
            place, rows = self.records[match["table"]]
            return place.where(rows[int(match["index"])]), match["field"]
        return self.patient[0].where(self.patient[1]), field


_RECORD_FIELD = re.compile(r"(?P<table>[a-z]+)\[(?P<index>[0-9]+)\](?:\.(?P<field>.+))?")


def located(exc: ScreeningError, source: Source | None) -> str:
    """The message of ``exc``, a profile's field named as the table, row and column it came from."""
    if source is None or not isinstance(exc, PatientDataError) or exc.field is None:
        return str(exc)
    where, field = source.locate(exc.field)
    return str(PatientDataError(exc.problem, field=field, patient_id=exc.patient_id, source=where))


class Profiles(list):  # type: ignore[type-arg]
    """Profile dicts, and beside them where each was read (``sources[i]``: a :class:`Source`, or
    None), to name a row of a table in an error."""

    def __init__(self, profiles: Iterable[dict[str, Any]] = (), sources: Iterable[Source | None] = ()):
        super().__init__(profiles)
        self.sources: list[Source | None] = list(sources)

    def part(self, start: int, stop: int) -> Profiles:
        return Profiles(self[start:stop], self.sources[start:stop])


def read_long(folder: str | Path, on_unmatched: Callable[[str, int], Any] | None = None) -> Profiles:
    """One profile dict per row of ``patients``, in that table's order, with its :class:`Source`;
    an id on several rows of ``patients`` is an error marker on each. ``on_unmatched``, when given,
    is called with a table's file name and its number of rows naming no patient of ``patients``
    (an empty ``patient_id`` included), for each table with some."""
    folder = Path(folder)
    read = _read(folder, "patients")
    if read is None:
        raise FileNotFoundError(f"{folder}: no patients.csv or patients.parquet")
    patients, place = read
    grouped: dict[str, tuple[Place, dict[str, tuple[list[dict[str, Any]], list[int]]]]] = {}  # per patient: records, their rows
    lengths: dict[str, int] = {}
    for name in TABLES:
        if (table := _read(folder, name)) is None:
            continue
        frame, table_place = table
        lengths[name] = len(frame)
        by_patient: dict[str, tuple[list[dict[str, Any]], list[int]]] = {}
        for row, (pid, record) in enumerate(zip(_ids(frame["patient_id"]), frame.drop(columns="patient_id").to_dict("records"))):
            if pid is None:
                continue  # no patient to give it to
            item = _clean(record)
            for column in LISTS:
                if column in item:
                    item[column] = _items(item[column])
            if (mine := by_patient.get(pid)) is None:
                mine = by_patient[pid] = ([], [])
            mine[0].append(item)
            mine[1].append(row)
        grouped[name] = table_place, by_patient
    ids = _ids(patients["id"])
    rows_of: dict[str, list[int]] = {}
    for row, pid in enumerate(ids):
        if pid is not None:
            rows_of.setdefault(pid, []).append(row)
    if on_unmatched is not None:
        for name, (table_place, by_patient) in grouped.items():
            matched = sum(len(rows) for pid, (_, rows) in by_patient.items() if pid in rows_of)
            if unmatched := lengths[name] - matched:
                on_unmatched(Path(table_place.path).name, unmatched)
    profiles = Profiles()
    for row, (pid, record) in enumerate(zip(ids, patients.to_dict("records"))):
        if pid is not None and len(rows_of[pid]) > 1:
            others = ", ".join(place.at(other) for other in rows_of[pid] if other != row)
            error = PatientDataError(f"also on {others}: the rows of other tables name either", field="id", patient_id=pid, source=place.where(row))
            profiles.append({"id": pid, ERROR_MARKER: str(error)})
            profiles.sources.append(None)
            continue
        profile = _clean(record)
        for flag in FLAGS:  # " yes " reads as yes, as in the flat table
            if isinstance(profile.get(flag), str):
                profile[flag] = profile[flag].strip()
        if pid is not None:
            profile["id"] = pid
        records: dict[str, tuple[Place, list[int]]] = {}
        for name in TABLES:
            if name in grouped:
                table_place, by_patient = grouped[name]
                items, rows = by_patient.get(pid, ([], [])) if pid is not None else ([], [])
                profile[name] = items
                records[name] = table_place, rows
            elif name not in CLOSED_WORLD:
                profile[name] = []
        profiles.append(profile)
        profiles.sources.append(Source((place, row), records))
    return profiles
