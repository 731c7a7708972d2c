"""Scale-out on Dask: the same chunked screening, one partition of a flat cohort table at a time.

    import dask.dataframe as dd
    from distributed import Client
    client = Client("tcp://scheduler:8786")          # or LocalCluster() for one machine
    cohort = dd.read_parquet("s3://bucket/cohort/")   # flat table columns (screening/cohort/flat.py)
    results = screen_dask(cohort, load_rules("rules"), as_of=date(2026, 11, 22))
    results.to_parquet("results/")                   # one row per patient and trial

Each worker receives the rule set once per task graph (rules are plain data; compiled evaluators
are rebuilt per process) and screens its partition as one flat table chunk. Results are identical to the in-process run, row order within a partition included.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import dask.dataframe as dd
import pandas as pd

from ..rules.loader import RuleSet
from .flat import CSV_OPTIONS
from .run import COLUMNS, screen_cohort

META = pd.DataFrame({column: pd.Series(dtype=object) for column in COLUMNS})


def read_flat(path: str | Path) -> dd.DataFrame:
    """A flat cohort table (``.csv`` or ``.parquet``) as a Dask dataframe, its cells read as
    :func:`screening.cohort.read_cohort` reads them. ``path`` may be a URL (``s3://...``) the
    workers can read: it is passed on as given (``Path`` would make ``s3://b`` ``s3:/b``)."""
    path = str(path)
    if path.lower().endswith(".csv"):
        return dd.read_csv(path, **CSV_OPTIONS)
    frame = dd.read_parquet(path)
    if "id" in frame.columns and pd.api.types.is_numeric_dtype(frame["id"].dtype):
        frame["id"] = frame["id"].map_partitions(_integer_ids_as_text, meta=("id", object))
    return frame


def _integer_ids_as_text(ids: pd.Series) -> pd.Series:
    """Integer ids as the text a CSV gives (the in-process reader casts them in Arrow): with one
    missing, a partition holds them as floats, and 1.0 is not the id 1."""
    return pd.Series([None if pd.isna(v) else str(int(v)) if float(v).is_integer() else str(v) for v in ids], index=ids.index, dtype=object)


def screen_frame(frame: pd.DataFrame, rules: RuleSet, as_of: dt.date, trials: Iterable[str] | None = None) -> pd.DataFrame:
    """Screen one pandas frame of flat cohort rows (a Dask partition)."""
    if frame.empty:
        return META.copy()
    results = pd.concat(list(screen_cohort([frame], rules, as_of, trials)), ignore_index=True)
    return results.astype(object)


def screen_dask(cohort: dd.DataFrame, rules: RuleSet, as_of: dt.date, trials: Iterable[str] | None = None) -> dd.DataFrame:
    """Results of a flat cohort held in a Dask dataframe, lazily, partition by partition."""
    return cohort.map_partitions(screen_frame, rules, as_of, rules.select(trials), meta=META)


def rows_with_errors(results: dd.DataFrame, trials: int) -> int:
    """Input rows with an error in any of the ``trials`` (each input row is ``trials`` result rows
    in a row), as :class:`screening.cohort.CohortSummary` counts them: by row, not by patient id."""
    def count(frame: pd.DataFrame) -> pd.Series:
        return pd.Series([int((frame["verdict"] == "error").to_numpy().reshape(-1, trials).any(axis=1).sum())])

    return int(results.map_partitions(count, meta=(None, "int64")).sum().compute())
