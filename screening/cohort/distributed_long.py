"""Long EHR-style tables on Dask (:mod:`screening.cohort.long` is the one-machine reader): every
history table is joined on the patient id to the partition its patient is in (``patients`` as
read) and partitioned alike, so a patient's rows of every table meet in one partition; there the
profiles are assembled as in-process and screened as one chunk, in the order of ``patients``.

    tables = read_long_dask("s3://bucket/extract/")      # patients.parquet, conditions.parquet, ...
    results = screen_long_dask(align(tables), load_rules("rules"), date(2026, 11, 22))
    results.to_parquet("results/")                        # in the order of patients

Cells, ids, flags and errors are read as in-process, with two differences: a row in an error is
named by its number in its table (``conditions.csv row 7``: the workers do not reread the file to
count lines), and a Parquet float id column is read as integer ids partition by partition.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

import dask.dataframe as dd
import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import PatientDataError
from ..rules.loader import RuleSet
from .collector import fewer_collections
from .distributed import META, _read_csv
from .flat import ERROR_MARKER
from .long import NUMBER_COLUMNS, ROW, TABLES, Place, _ids, assemble, by_patient, check_columns, to_frame
from .run import screen_cohort

KEY = "__key"  # a row's patient id, as the profile model reads it
PART = "__part"  # the partition of patients a row is in (a history row: its patient's)


@dataclass(frozen=True)
class LongTables:
    """Long tables as Dask dataframes (``patients`` first), each one's path or URL, and (once
    aligned) the rows of each id on several rows of ``patients``."""

    frames: dict[str, dd.DataFrame]
    urls: dict[str, str]
    repeated: dict[str, list[int]] = field(default_factory=dict)


def read_long_dask(folder: str) -> LongTables:
    """The long tables of ``folder`` (a path or a URL the workers can read), their columns
    checked as in-process (:func:`screening.cohort.long.check_columns`); ``patients`` is required,
    and a table in both formats stops the run."""
    fs, _, (root,) = fsspec.get_fs_token_paths(folder.rstrip("/"))
    frames, urls = {}, {}
    for name in ("patients", *TABLES):
        found = [suffix for suffix in ("parquet", "csv") if fs.exists(f"{root}/{name}.{suffix}")]
        if len(found) == 2:
            raise PatientDataError(f"{name}.csv is there too: keep one", source=f"{folder.rstrip('/')}/{name}.parquet")
        if not found:
            continue
        url = urls[name] = f"{folder.rstrip('/')}/{name}.{found[0]}"
        frame = dd.read_parquet(url) if found[0] == "parquet" else _read_csv(url)
        check_columns(name, [c for c in frame.columns if c != ERROR_MARKER], url)
        frames[name] = frame
    if "patients" not in frames:
        raise FileNotFoundError(f"{folder}: no patients.csv or patients.parquet")
    return LongTables(frames, urls)


def align(tables: LongTables) -> LongTables:
    """``patients`` numbered (:data:`ROW`) and indexed by its partition (:data:`PART`), as read,
    and each history table joined on the patient id to the partition of its patient and
    partitioned alike, so partition i of every table holds the rows of the same patients; rows
    naming no patient are dropped (:func:`unmatched_rows` counts them). Patients stay in their
    partitions, in order: the results need no sorting."""
    frames, urls = tables.frames, tables.urls
    partitions = frames["patients"].npartitions
    divisions = (*range(partitions), partitions - 1)
    patients = _numbered(frames["patients"], "id", urls["patients"], with_partition=True)
    found = patients[[KEY, PART]].dropna(subset=[KEY]).drop_duplicates(subset=[KEY])
    aligned = {"patients": patients.set_index(PART, sorted=True, divisions=divisions)}
    for name, frame in list(frames.items())[1:]:
        rows = _numbered(frame, "patient_id", urls[name]).dropna(subset=[KEY])
        aligned[name] = rows.merge(found, on=KEY, how="inner").set_index(PART, divisions=divisions)
    return LongTables(aligned, urls, _repeated(patients))


def _numbered(frame: dd.DataFrame, key: str, url: str, with_partition: bool = False) -> dd.DataFrame:
    """``frame`` read as in-process, its rows numbered in the table (:data:`ROW`), its patient ids
    as the profile model reads them (:data:`KEY`), and, ``with_partition``, its partition (:data:`PART`)."""
    starts = np.cumsum([0, *frame.map_partitions(len).compute().tolist()[:-1]]).tolist()
    meta = _prepared(frame._meta, 0, key, url, 0 if with_partition else None)
    return frame.map_partitions(_partition, starts, key, url, with_partition, meta=meta, enforce_metadata=False)


def _partition(frame: pd.DataFrame, starts: list[int], key: str, url: str, with_partition: bool, partition_info: dict | None = None) -> pd.DataFrame:
    number = partition_info["number"] if partition_info else 0
    return _prepared(frame, starts[number], key, url, number if with_partition else None)


def _prepared(frame: pd.DataFrame, start: int, key: str, url: str, partition: int | None) -> pd.DataFrame:
    """A partition of a table read as in-process, its rows numbered from ``start``. A CSV line
    with more fields than the header stops the run, as in-process: no patient can be named."""
    if ERROR_MARKER in frame.columns:
        if len(bad := frame[ERROR_MARKER].dropna()):
            raise PatientDataError(f"cannot be read: {bad.iloc[0]}", source=url)
        frame = frame.drop(columns=ERROR_MARKER)
    if url.lower().endswith(".parquet"):  # integer codes and ids as the text a CSV gives
        table = pa.Table.from_pandas(frame, preserve_index=False)
        frame = to_frame(table, [c for c in table.schema.names if c not in NUMBER_COLUMNS])
    else:
        frame = frame.reset_index(drop=True)
    added = {ROW: np.arange(start, start + len(frame), dtype=np.int64), KEY: pd.Series(_ids(frame[key]), index=frame.index, dtype=object)}
    if partition is not None:
        added[PART] = np.full(len(frame), partition, dtype=np.int64)
    return frame.assign(**added)


def _repeated(patients: dd.DataFrame) -> dict[str, list[int]]:
    """The rows of each id on several rows of ``patients`` (few: each is an error row)."""
    counts = patients[KEY].dropna().value_counts()
    ids = counts[counts > 1].index.compute().tolist()
    if not ids:
        return {}
    rows = patients[patients[KEY].isin(ids)][[KEY, ROW]].compute().sort_values(ROW)
    return {str(pid): group.tolist() for pid, group in rows.groupby(KEY)[ROW]}


def screen_long_dask(tables: LongTables, rules: RuleSet, as_of: dt.date, trials: Iterable[str] | None = None) -> dd.DataFrame:
    """Results of aligned long tables (:func:`align`), partition by partition, in the order of
    ``patients`` (one row per patient and trial)."""
    selected = rules.select(trials)
    names = list(tables.frames)
    return dd.map_partitions(_screen_partition, *tables.frames.values(), names=names, urls=tables.urls, repeated=tables.repeated,
                             rules=rules, as_of=as_of, selected=selected, meta=META, enforce_metadata=False, align_dataframes=False)


def _screen_partition(*frames: pd.DataFrame, names: list[str], urls: dict[str, str], repeated: dict[str, list[int]], rules: RuleSet,
                      as_of: dt.date, selected: list[str]) -> pd.DataFrame:
    with fewer_collections():  # the profiles are assembled here, before screen_cohort paces the collector itself
        tables = {name: frame.sort_values(ROW).reset_index(drop=True).drop(columns=KEY) for name, frame in zip(names, frames)}
        patients = tables.pop("patients")
        if patients.empty:
            return META.copy()
        histories = {name: (Place(urls[name], lines=False), by_patient(frame)) for name, frame in tables.items()}
        profiles = assemble(Place(urls["patients"], lines=False), patients.drop(columns=ROW), patients[ROW].tolist(), histories, repeated)
        return pd.concat(list(screen_cohort([profiles], rules, as_of, selected)), ignore_index=True).astype(object)


def unmatched_rows(tables: LongTables, aligned: LongTables) -> dict[str, int]:
    """Per history table file, its rows naming no patient of ``patients`` (an empty id
    included): the rows of ``tables`` not in ``aligned``, as in-process (``read_cohort``'s ``on_unmatched``)."""
    counts = {}
    for name in list(tables.frames)[1:]:
        if unmatched := int(tables.frames[name].shape[0].compute()) - int(aligned.frames[name].shape[0].compute()):
            counts[tables.urls[name].rsplit("/", 1)[-1]] = unmatched
    return counts
