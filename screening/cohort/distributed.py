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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.dataframe as dd
import fsspec
import pandas as pd
from dask.dataframe.io.csv import AUTO_BLOCKSIZE

from ..rules.loader import RuleSet
from .csvfile import Header, line_ends_before, read_block
from .run import COLUMNS, screen_cohort

META = pd.DataFrame({column: pd.Series(dtype=object) for column in COLUMNS})


def read_flat(path: str | Path) -> dd.DataFrame:
    """A flat cohort table (``.csv`` or ``.parquet``) as a Dask dataframe, its cells read as
    :func:`screening.cohort.read_cohort` reads them. ``path`` may be a URL (``s3://...``) the
    workers can read: it is passed on as given (``Path`` would make ``s3://b`` ``s3:/b``)."""
    path = str(path)
    if path.lower().endswith(".csv"):
        return _read_csv(path)
    frame = dd.read_parquet(path)
    if "id" in frame.columns and pd.api.types.is_numeric_dtype(frame["id"].dtype):
        frame["id"] = frame["id"].map_partitions(_integer_ids_as_text, meta=("id", object))
    return frame


def _read_csv(url: str, block_size: int = AUTO_BLOCKSIZE) -> dd.DataFrame:
    """CSV files (a URL, a path or a glob) in blocks of about ``block_size`` bytes cut after a
    ``\\n``, as ``dd.read_csv`` cuts them, each read by the in-process reader: a line with more
    fields than the header is an error row naming its line in the file."""
    fs, _, paths = fsspec.get_fs_token_paths(url, mode="rb")
    with fs.open(paths[0], "rb") as handle:
        meta = read_block(Header.read(handle).text, lambda: 0).iloc[:0]
    blocks = [block for path in paths for block in _blocks(path, fs.size(path), block_size)]
    return dd.from_map(_CsvBlock(fs), blocks, meta=meta, label="read-csv", enforce_metadata=False)


def _blocks(path: str, size: int, block_size: int) -> list[tuple[str, int, int]]:
    """(path, offset, size) of ``size // block_size`` blocks of equal size (one if the file is
    smaller), as ``dd.read_csv`` splits a file; none for an empty file."""
    step = -(-size // max(size // block_size, 1))
    return [(path, offset, step) for offset in range(0, size, step)] if size else []


@dataclass(frozen=True)
class _CsvBlock:
    """Reads one block (path, offset, size) of a CSV file on a worker."""

    fs: fsspec.AbstractFileSystem

    def __call__(self, block: tuple[str, int, int]) -> pd.DataFrame:
        path, offset, size = block
        with self.fs.open(path, "rb") as handle:
            header = Header.read(handle)
            start, end = (_after_line_end(handle, at, len(header.text)) for at in (offset, offset + size))
            handle.seek(start)
            text = handle.read(end - start)

        def first_line() -> int:  # only for a block with a line with too many fields: count the lines before it
            with self.fs.open(path, "rb") as handle:
                return 1 + line_ends_before(handle, start)

        return read_block(header.text + text, first_line)


def _after_line_end(handle: Any, at: int, header_end: int) -> int:
    """Where the block boundary nearest ``at`` is: the header's end, or after the first ``\\n``
    from ``at`` on (the end of the file if none)."""
    if at <= header_end:
        return header_end
    handle.seek(at)
    while (piece := handle.read(1 << 16)) and (found := piece.find(b"\n")) < 0:
        at += len(piece)
    return at + found + 1 if piece else at


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
