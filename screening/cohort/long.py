"""Long EHR-style tables (a folder of CSV or Parquet files, the shape of an EHR or OMOP-like
extract), assembled into one profile per patient:

======================  =========================================================================
``patients``            ``id``, ``birth_date``, ``sex``, ``consent``, ``pregnant``, ``lactating``,
                        ``childbearing_potential``
``conditions``          ``patient_id``, ``icd10``, ``snomed``, ``display``, ``onset``,
                        ``resolved``, ``status``
``observations``        ``patient_id``, ``loinc``, ``value``, ``unit``, ``comparator``,
                        ``control``, ``result``, ``date``
``medications``         ``patient_id``, ``name``, ``atc``, ``rxnorm``, ``start``, ``end``, ``status``
``procedures``          ``patient_id``, ``kind``, ``system``, ``code``, ``date``
``assessments``         ``patient_id``, ``name``, ``grade``, ``date``
``imaging``             ``patient_id``, ``modality``, ``date``, ``findings`` (``;``-separated;
                        NA: not coded), ``report``
======================  =========================================================================

A table that is absent means that history was not extracted (``conditions`` etc. unknown for every
patient); a table that is present is the patient's whole history of that kind (none if no rows).
The same as-of date and look-back windows apply as for single profiles.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import PatientDataError
from .flat import CSV_OPTIONS, _present

TABLES = ("conditions", "observations", "medications", "procedures", "assessments", "imaging")
CLOSED_WORLD = ("conditions", "medications", "procedures")  # absent table: not reviewed (None)


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
    them (in pandas an integer column with a missing value is floats, and 1.0 is not the id 1)."""
    frame = table.to_pandas()
    for name in text:
        if name in table.schema.names and pa.types.is_integer(table.schema.field(name).type):
            frame[name] = table.column(name).cast(pa.string()).to_pandas().to_numpy()
    return frame


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


def _read(folder: Path, name: str) -> pd.DataFrame | None:
    for suffix, reader in ((".parquet", _read_parquet), (".csv", _read_csv)):
        path = folder / f"{name}{suffix}"
        if path.exists():
            with reading(path):
                return reader(path)
    return None


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if _present(v) and k != "patient_id"}


def _numeric(record: dict[str, Any], *fields: str) -> dict[str, Any]:
    for name in fields:
        if name in record:
            try:
                number = float(record[name])
            except (TypeError, ValueError):
                continue  # left as text: the profile model reports the field
            record[name] = int(number) if name == "grade" and number.is_integer() else number
    return record


def read_long(folder: str | Path) -> list[dict[str, Any]]:
    """One profile dict per row of ``patients``, in that table's order."""
    folder = Path(folder)
    patients = _read(folder, "patients")
    if patients is None:
        raise FileNotFoundError(f"{folder}: no patients.csv or patients.parquet")
    grouped: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name in TABLES:
        table = _read(folder, name)
        if table is None:
            continue
        by_patient: dict[str, list[dict[str, Any]]] = {}
        for record in table.to_dict("records"):
            item = _clean(record)
            if name == "observations":
                item = _numeric(item, "value", "control")
            elif name == "assessments":
                item = _numeric(item, "grade")
            elif name == "imaging" and "findings" in item:
                item["findings"] = [f.strip() for f in str(item["findings"]).split(";") if f.strip()]
            by_patient.setdefault(str(record.get("patient_id")), []).append(item)
        grouped[name] = by_patient
    profiles = []
    for record in patients.to_dict("records"):
        profile = _clean(record)
        for flag in ("pregnant", "lactating", "childbearing_potential"):
            if isinstance(profile.get(flag), str):
                profile[flag] = profile[flag].strip().lower() in ("true", "1", "yes")
        pid = str(profile.get("id"))
        for name in TABLES:
            if name in grouped:
                profile[name] = grouped[name].get(pid, [])
            elif name not in CLOSED_WORLD:
                profile[name] = []
        profiles.append(profile)
    return profiles
