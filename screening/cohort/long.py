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
import tempfile
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
from ..patient.io import RECORD_FIELD
from ..patient.model import Assessment, Condition, ImagingStudy, Medication, Observation, PatientProfile, Procedure
from ..rules.loader import suggest
from .csvfile import Header, Records, line_ends
from .flat import CSV_OPTIONS, ERROR_MARKER, FlatRow, blank

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


def to_frame(table: pa.Table | pa.RecordBatch, text: Iterable[str] = ("id", "patient_id"), whole: frozenset[str] | None = None) -> pd.DataFrame:
    """``table`` in pandas, its integer columns among ``text`` (ids, codes) as text, as a CSV gives
    them (in pandas an integer column with a missing value is floats, and 1.0 is not the id 1); a
    column of whole floats there too (a pandas integer column with a missing value, written so),
    unless some value is beyond the integers a float holds exactly (2**53). ``whole``, when given,
    names the float columns to read so (decided for a whole file, of which ``table`` is a part)."""
    frame = table.to_pandas()
    for name in text:
        if name not in table.schema.names:
            continue
        column, kind = table.column(name), table.schema.field(name).type
        if pa.types.is_floating(kind) and (name in whole if whole is not None else _whole(column)):
            column, kind = column.cast(pa.int64()), pa.int64()
        if pa.types.is_integer(kind):
            frame[name] = column.cast(pa.string()).to_pandas().to_numpy()
    return frame


def _whole(column: pa.ChunkedArray) -> bool:
    """Whether every value of a float column (nulls aside) is an integer a float holds exactly."""
    exact = pc.and_(pc.less_equal(pc.abs(column), 2.0 ** 53), pc.equal(column, pc.floor(column)))
    return pc.all(exact).as_py() is not False


ROW = "__row"  # a spilled record's row in its table (from 0), to name it in an error


@dataclass(frozen=True)
class Table:
    """One long table's file, its columns checked, read a batch of rows at a time. A Parquet
    table's integer codes and ids are read as the text a CSV gives (:func:`to_frame`), float ids
    as integers only if every id of the file is one (decided once, for all batches alike)."""

    name: str
    path: Path
    whole: frozenset[str]  # Parquet float columns read as integer text

    @classmethod
    def find(cls, folder: Path, name: str) -> Table | None:
        """The table ``name`` of ``folder`` (None if absent); in both formats, neither is chosen."""
        parquet, csv = folder / f"{name}.parquet", folder / f"{name}.csv"
        if parquet.exists() and csv.exists():
            raise PatientDataError(f"{csv.name} is there too: keep one", source=str(parquet))
        for path in (parquet, csv):
            if path.exists():
                with reading(path):
                    return cls(name, path, _whole_columns(path) if path is parquet else frozenset())._checked()
        return None

    @property
    def parquet(self) -> bool:
        return self.path.suffix == ".parquet"

    @property
    def place(self) -> Place:
        return Place(str(self.path))

    def _checked(self) -> Table:
        columns = pq.read_schema(self.path).names if self.parquet else list(pd.read_csv(self.path, nrows=0, **CSV_OPTIONS).columns)
        check_columns(self.name, columns, str(self.path))
        return self

    def batches(self, size: int, columns: list[str] | None = None) -> Iterator[pa.Table]:
        """The table's rows in Arrow tables of ``size`` rows (the last may be shorter), as stored:
        a CSV file's cells as text (null: empty), a Parquet file's in their types."""
        with reading(self.path):
            if self.parquet:
                for batch in pq.ParquetFile(self.path).iter_batches(batch_size=size, columns=columns):
                    yield pa.Table.from_batches([batch])
                return
            with pd.read_csv(self.path, chunksize=size, usecols=columns, **CSV_OPTIONS) as reader:
                for frame in reader:
                    if not isinstance(frame.index, pd.RangeIndex):  # pandas took the extra fields for an index
                        raise pd.errors.ParserError("the first data line has more fields than the header")
                    yield pa.Table.from_pandas(frame, pa.schema([(str(c), pa.string()) for c in frame.columns]), preserve_index=False)

    def frame(self, table: pa.Table) -> pd.DataFrame:
        """Rows of this table (from :meth:`batches`) in pandas, as the profile model reads them."""
        if not self.parquet:
            return table.to_pandas()
        text = [name for name in table.schema.names if name not in NUMBER_COLUMNS and name != ROW]
        return to_frame(table, text, self.whole)


def check_columns(name: str, columns: Iterable[str], source: str) -> None:
    """Stop the run unless table ``name`` has the column naming the patient and no column the
    profile has no field for: without the first, no row could be given to its patient (a history
    table would be every patient's empty history); the second would be an error row for every
    patient with a row in the table, or, left out, a misspelt column (``onset_date``) would vanish
    unseen."""
    columns = [str(column) for column in columns]
    key = COLUMNS[name][0]
    if key not in columns:
        raise PatientDataError(f"no {key} column: its rows cannot be given to their patients", source=source)
    for column in columns:
        if column not in COLUMNS[name]:
            hint = suggest(column, COLUMNS[name])
            raise PatientDataError(f"unknown column {column!r}{f' (did you mean {hint!r}?)' if hint else ''}; "
                                   f"the columns of {name} are {', '.join(COLUMNS[name])}", source=source)


def _whole_columns(path: Path) -> frozenset[str]:
    """A Parquet table's float id and code columns whose every value is an integer a float holds
    exactly (:func:`to_frame`), read a column at a time."""
    schema = pq.read_schema(path)
    floats = [f.name for f in schema if pa.types.is_floating(f.type) and f.name not in NUMBER_COLUMNS]
    return frozenset(name for name in floats if _whole(pq.read_table(path, columns=[name]).column(name)))


def _ids(column: pd.Series) -> list[str | None]:
    """Patient ids as the profile model reads them (stripped); None for an empty cell, which names no patient."""
    text = column.astype(str).str.strip()
    present = (column.notna() & (text != "")).tolist()  # notna: None, NaN, NA, NaT (as flat.blank reads a cell)
    return [pid if ok else None for pid, ok in zip(text.tolist(), present)]


def _cells(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Per row, the cells that hold a value (not :func:`~screening.cohort.flat.blank`), as they
    are: the profile model reads them (a number or a yes/no from text, as in a JSON profile), or
    names the field it cannot read. Which cells are blank is found a column at a time."""
    names = [str(name) for name in frame.columns]
    values, kept = [], []
    for name in frame.columns:
        column = frame[name]
        keep = column.notna()
        if column.dtype == object:
            text = pd.api.types.infer_dtype(column, skipna=True) == "string"
            keep &= ~(column.str.strip().eq("") if text else column.map(blank).astype(bool))
        values.append(column.tolist())
        kept.append(keep.tolist())
    return [{name: value for name, value, keep in zip(names, row, keeps) if keep} for row, keeps in zip(zip(*values), zip(*kept))]


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
    lines: bool = True  # a CSV row named by its line (False: by its number, as where the file cannot be reread)

    def at(self, row: int) -> str:
        """``line N`` or ``row N`` of data row ``row`` (from 0)."""
        if not self.lines or self.path.lower().endswith(".parquet"):
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
        if (match := RECORD_FIELD.fullmatch(field)) and match["table"] in self.records:
            place, rows = self.records[match["table"]]
            return place.where(rows[int(match["index"])]), match["field"]
        return self.patient[0].where(self.patient[1]), field


def located(exc: ScreeningError, source: Source | FlatRow | None) -> str:
    """The message of ``exc``, a profile's field named as the table, row and column it came from
    (for a flat table's row: as its column)."""
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


BATCH_ROWS = 100_000  # rows of a table read at a time


def read_long(folder: str | Path, chunk_size: int = 100_000, on_unmatched: Callable[[str, int], Any] | None = None) -> Iterator[Profiles]:
    """Chunks of ``chunk_size`` profile dicts, one per row of ``patients`` in that table's order,
    each with its :class:`Source`; an id on several rows of ``patients`` is an error marker on
    each. ``on_unmatched``, when given, is called with a table's file name and its number of rows
    naming no patient of ``patients`` (an empty ``patient_id`` included), for each table with
    some, before the first chunk.

    Memory stays bounded for tables larger than RAM: every table is read :data:`BATCH_ROWS` rows
    at a time; the rows of the history tables are first sorted into the chunk their patient is in,
    in temporary files (:class:`_Spill`, under ``TMPDIR``; compressed, about the tables' size),
    and each chunk is then assembled from its own. Only the ids of ``patients`` are held
    throughout (some 100 bytes a patient)."""
    folder = Path(folder)
    patients = Table.find(folder, "patients")
    if patients is None:
        raise FileNotFoundError(f"{folder}: no patients.csv or patients.parquet")
    tables = [table for name in TABLES if (table := Table.find(folder, name)) is not None]
    index, first_rows, repeated = _patient_rows(patients)
    chunk_of = np.append(first_rows // chunk_size, -1)  # by position in index; the last, -1, for an id not in it
    with tempfile.TemporaryDirectory(prefix="screening-long-") as spill_folder:
        spills = {table.name: _Spill.of(table, Path(spill_folder), index, chunk_of, on_unmatched) for table in tables}
        del index, first_rows, chunk_of
        for number, part in enumerate(_rechunk(patients.batches(BATCH_ROWS), chunk_size)):
            histories = {name: (spill.table.place, spill.histories(number)) for name, spill in spills.items()}
            start = number * chunk_size
            yield assemble(patients.place, frame := patients.frame(part), range(start, start + len(frame)), histories, repeated)


def _patient_rows(patients: Table) -> tuple[pd.Index, np.ndarray, dict[str, list[int]]]:
    """(each id of ``patients``, once; the row it is first on; the rows of ids on several rows)."""
    ids = pd.Series([pid for part in patients.batches(BATCH_ROWS, ["id"]) for pid in _ids(patients.frame(part)["id"])], dtype=object)
    present = ids.notna().to_numpy()
    firsts = ids[present & ~ids.duplicated(keep="first").to_numpy()]
    repeated: dict[str, list[int]] = {}
    for row, pid in ids[present & ids.duplicated(keep=False).to_numpy()].items():
        repeated.setdefault(pid, []).append(int(row))
    return pd.Index(firsts.to_numpy(), dtype=object), firsts.index.to_numpy(dtype=np.int64), repeated


def _rechunk(parts: Iterable[pa.Table], size: int) -> Iterator[pa.Table]:
    """``parts`` as tables of ``size`` rows (the last may be shorter)."""
    held: list[pa.Table] = []
    rows = 0
    for part in parts:
        held.append(part)
        rows += len(part)
        while rows >= size:
            whole = pa.concat_tables(held)
            yield whole.slice(0, size)
            held, rows = [whole.slice(size)], rows - size
    if rows:
        yield pa.concat_tables(held)


ByPatient = dict[str, tuple[list[dict[str, Any]], list[int]]]  # per patient id: records, and their rows in the table


class _Spill:
    """A history table's rows sorted into the chunk of ``patients`` their patient is in: an Arrow
    IPC stream (lz4) per chunk, the rows in table order with their row numbers (:data:`ROW`)."""

    OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")

    def __init__(self, table: Table, folder: Path):
        self.table, self.folder = table, folder
        self.written: dict[int, Path] = {}

    @classmethod
    def of(cls, table: Table, folder: Path, index: pd.Index, chunk_of: np.ndarray, on_unmatched: Callable[[str, int], Any] | None) -> _Spill:
        """``table`` read a batch at a time and its rows sorted into the chunk of their patient
        (``chunk_of[i]`` for the id at ``index[i]``, -1 last); rows naming no patient are counted
        (``on_unmatched``) and dropped."""
        spill, writers, unmatched, start = cls(table, folder), {}, 0, 0
        try:
            for batch in table.batches(BATCH_ROWS):
                pids = _ids(table.frame(batch.select(["patient_id"]))["patient_id"])
                chunks = chunk_of[index.get_indexer(pd.Index(pids, dtype=object))]  # -1 (no such id) takes the last
                unmatched += int((chunks < 0).sum())
                spill._write(writers, batch.append_column(ROW, pa.array(np.arange(start, start + len(batch), dtype=np.int64))), chunks)
                start += len(batch)
        finally:
            for writer in writers.values():
                writer.close()
        if unmatched and on_unmatched is not None:
            on_unmatched(table.path.name, unmatched)
        return spill

    def _write(self, writers: dict[int, Any], rows: pa.Table, chunks: np.ndarray) -> None:
        order = np.argsort(chunks, kind="stable")
        ordered, rows = chunks[order], rows.take(pa.array(order))
        cuts = (np.flatnonzero(np.diff(ordered)) + 1).tolist()
        for begin, end in zip([0, *cuts], [*cuts, len(ordered)]):
            if end == begin or (chunk := int(ordered[begin])) < 0:
                continue
            if chunk not in writers:
                path = self.written[chunk] = self.folder / f"{self.table.name}-{chunk}.arrow"
                writers[chunk] = pa.ipc.new_stream(str(path), rows.schema, options=self.OPTIONS)
            writers[chunk].write_table(rows.slice(begin, end - begin))

    def histories(self, chunk: int) -> ByPatient:
        """The records of the patients of chunk ``chunk`` (read once: the file is removed)."""
        path = self.written.pop(chunk, None)
        if path is None:
            return {}
        with pa.ipc.open_stream(str(path)) as reader:
            frame = self.table.frame(reader.read_all())
        path.unlink()
        return by_patient(frame)


def by_patient(frame: pd.DataFrame) -> ByPatient:
    """The records of a history table's rows (``frame``, with their row numbers in :data:`ROW`)
    per patient id, in ``frame``'s order; rows naming no patient are left out."""
    rows = frame[ROW].tolist()
    records: ByPatient = {}
    for row, pid, item in zip(rows, _ids(frame["patient_id"]), _cells(frame.drop(columns=["patient_id", ROW]))):
        if pid is None:
            continue
        for column in LISTS:
            if column in item:
                item[column] = _items(item[column])
        if (mine := records.get(pid)) is None:
            mine = records[pid] = ([], [])
        mine[0].append(item)
        mine[1].append(row)
    return records


def assemble(place: Place, frame: pd.DataFrame, rows: Iterable[int], histories: dict[str, tuple[Place, ByPatient]],
             repeated: dict[str, list[int]]) -> Profiles:
    """The profiles of rows ``rows`` of the patients table at ``place`` (``frame``), with the
    records of each history table (its place, and the records per patient id); an id in
    ``repeated`` (its rows) is an error marker naming the other rows."""
    profiles = Profiles()
    for row, pid, profile in zip(rows, _ids(frame["id"]), _cells(frame)):
        if pid is not None and pid in repeated:
            others = ", ".join(place.at(other) for other in repeated[pid] if other != row)
            error = PatientDataError(f"also on {others}: the rows of other tables name either", field="id", patient_id=pid, source=place.where(row))
            profiles.append({"id": pid, ERROR_MARKER: str(error)})
            profiles.sources.append(None)
            continue
        for flag in FLAGS:  # " yes " reads as yes, as in the flat table
            if isinstance(profile.get(flag), str):
                profile[flag] = profile[flag].strip()
        if pid is not None:
            profile["id"] = pid
        records: dict[str, tuple[Place, list[int]]] = {}
        for name in TABLES:
            if name in histories:
                table_place, of_patient = histories[name]
                items, item_rows = of_patient.get(pid, ([], [])) if pid is not None else ([], [])
                profile[name] = items
                records[name] = table_place, item_rows
            elif name not in CLOSED_WORLD:
                profile[name] = []
        profiles.append(profile)
        profiles.sources.append(Source((place, row), records))
    return profiles
