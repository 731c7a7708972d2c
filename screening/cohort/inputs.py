"""Read a cohort in chunks: a flat table (CSV/Parquet) as pandas frames of its columns, a folder of
long tables, NDJSON profiles or a FHIR R4 Bulk Data export as lists of profile dicts. Nothing is
validated here (but the FHIR resources, by their mapping): screening validates each row, so a bad
row does not stop the run."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import PatientDataError
from ..fhir.result import FhirWarning, MappedProfile
from ..jsontext import JsonProblem, decode_json
from .csvfile import read_csv
from .flat import ERROR_MARKER
from .long import read_long, reading, to_frame

T = TypeVar("T")


TABLE_CHUNK = 100_000  # rows of a flat table per chunk (a few hundred bytes each, as columns)
PROFILE_CHUNK = 5_000  # profiles per chunk otherwise: each a few to some 100 KB (records, models, facts)


def read_cohort(path: str | Path, chunk_size: int | None = None,
                on_fhir_warnings: Callable[[tuple[FhirWarning, ...]], Any] | None = None,
                on_unmatched: Callable[[str, int], Any] | None = None) -> Iterator[pd.DataFrame | list[dict[str, Any]]]:
    """Chunks of ``path`` for :func:`screening.cohort.screen_cohort` (``chunk_size`` rows or
    profiles each; default :data:`TABLE_CHUNK` for a flat table, :data:`PROFILE_CHUNK` for profiles
    from NDJSON, long tables or a bulk export, so memory stays bounded): frames of a ``.csv`` or
    ``.parquet`` flat table, lists of profile dicts from ``.ndjson``/``.jsonl`` (one profile per
    line; a line may be a FHIR R4 Bundle), a folder of long tables, or a folder of ``*.ndjson``
    files without a ``patients`` table, read as a FHIR R4 Bulk Data export (one profile per
    Patient). ``on_fhir_warnings``, when given, is called with an export's own mapping warnings,
    then with each FHIR patient's. For long tables,
    ``on_unmatched``, when given, is called with each table's count of rows naming no patient of
    ``patients`` (:func:`screening.cohort.long.read_long`). A line that is not JSON, or a patient with a resource
    that is not valid FHIR R4, yields an error marker dict ``{"__error__": ...}`` in its place, and a
    CSV line with more fields than the header a row with only the ``__error__`` column set, so
    rows out == rows in."""
    path = Path(path)
    flat = path.suffix.lower() in (".csv", ".parquet") and not path.is_dir()
    chunk_size = chunk_size or (TABLE_CHUNK if flat else PROFILE_CHUNK)
    if path.is_dir() and not any((path / f"patients{suffix}").exists() for suffix in (".csv", ".parquet")) \
            and any(path.glob("*.ndjson")):
        yield from _bulk_export(path, chunk_size, on_fhir_warnings)
        return
    if path.is_dir():
        if not any((path / f"patients{suffix}").exists() for suffix in (".csv", ".parquet")):
            bundles = " (for FHIR Bundles, one per patient: put them in an .ndjson file, one per line)" if any(path.glob("*.json")) else ""
            raise PatientDataError(f"not a cohort folder: no patients.csv or patients.parquet (long tables) and no *.ndjson files "
                                   f"(a FHIR bulk export){bundles}", source=str(path))
        yield from read_long(path, chunk_size, on_unmatched)
        return
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with reading(path):
            yield from read_csv(path, chunk_size)
    elif suffix == ".parquet":
        with reading(path):
            schema = pq.read_schema(path)
            text = [f.name for f in schema if f.name != "id" and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))]
            # text columns as dictionaries: each distinct value is parsed once (screening/cohort/cells.py)
            batches = pq.ParquetFile(path, read_dictionary=text).iter_batches(batch_size=chunk_size)
            yield from _read_ahead(to_frame(batch) for batch in batches)
    elif suffix in (".ndjson", ".jsonl"):
        with path.open("rb") as handle:  # decoded line by line: an undecodable line is that row's error
            lines = (_profile_or_error(line, number, on_fhir_warnings) for number, line in enumerate(handle, start=1) if line.strip())
            yield from _in_chunks(lines, chunk_size)
    else:
        one = "; a .json file holds one patient: screen it with `screening screen`" if suffix == ".json" else ""
        raise PatientDataError(f"unknown cohort format {suffix!r}: use .csv, .parquet, .ndjson/.jsonl (profiles or FHIR Bundles, one per "
                               f"line), a folder of long tables or a FHIR bulk export folder{one}", source=str(path))


def _bulk_export(path: Path, chunk_size: int, on_warnings: Callable[[tuple[FhirWarning, ...]], Any] | None) -> Iterator[list[dict[str, Any]]]:
    from ..fhir.bulk import read_bulk_export  # loads fhir.resources: only for a bulk export

    export = read_bulk_export(path)
    if on_warnings is not None:
        on_warnings(export.warnings)

    def profile(result: MappedProfile | PatientDataError) -> dict[str, Any]:
        if isinstance(result, PatientDataError):
            return {"id": result.patient_id, ERROR_MARKER: str(result)}
        return _mapped(result, on_warnings)

    yield from _in_chunks(map(profile, export.results()), chunk_size)


def _mapped(mapped: MappedProfile, on_warnings: Callable[[tuple[FhirWarning, ...]], Any] | None) -> dict[str, Any]:
    """A FHIR-mapped profile as a profile dict, its warnings passed on."""
    if on_warnings is not None:
        on_warnings(mapped.warnings)
    return mapped.profile.model_dump()


def _in_chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last may be shorter), read as they are needed."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _profile_or_error(line: bytes, number: int, on_warnings: Callable[[tuple[FhirWarning, ...]], Any] | None = None) -> Any:
    """The profile on an NDJSON line: the JSON value, or the profile a FHIR R4 ``Bundle`` maps to
    (a line with a ``resourceType``, as ``screening screen`` and ``POST /screen/batch`` read one);
    an error marker naming the line when it is neither JSON nor a Bundle that can be mapped."""
    try:
        data = decode_json(line)
    except JsonProblem as exc:
        return {ERROR_MARKER: f"line {number}: {exc}"}
    if not (isinstance(data, dict) and "resourceType" in data):
        return data
    from ..fhir.bundle import bundle_to_profile  # loads fhir.resources: only for Bundles

    try:
        return _mapped(bundle_to_profile(data), on_warnings)
    except PatientDataError as exc:
        return {ERROR_MARKER: f"line {number}: {exc}"}


def _read_ahead(chunks: Iterator[T]) -> Iterator[T]:
    """``chunks``, the next one read in a background thread while the caller screens this one
    (Parquet decoding runs without the GIL, on another core): one chunk ahead at most."""
    done = object()
    with ThreadPoolExecutor(1, thread_name_prefix="read-ahead") as pool:
        ahead = pool.submit(next, chunks, done)
        while (chunk := ahead.result()) is not done:
            ahead = pool.submit(next, chunks, done)
            yield chunk
