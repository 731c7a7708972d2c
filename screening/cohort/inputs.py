"""Read a cohort from a flat table (CSV/Parquet), a folder of long tables, or NDJSON profiles, as
chunks of profile dicts (validated later, one row at a time, so a bad row does not stop the run)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from ..errors import PatientDataError
from .flat import row_to_profile
from .long import read_long


def _flat_chunks(frames: Iterator[pd.DataFrame]) -> Iterator[list[dict[str, Any]]]:
    for frame in frames:
        yield [row_to_profile(record) for record in frame.to_dict("records")]


def read_cohort(path: str | Path, chunk_size: int = 10_000) -> Iterator[list[dict[str, Any]]]:
    """Chunks of profile dicts from ``path``: ``.csv``/``.parquet`` (flat table), ``.ndjson``/
    ``.jsonl`` (one profile per line) or a folder of long tables. A line that is not JSON yields
    an error marker dict ``{"__error__": ...}`` in its place, so rows out == rows in."""
    path = Path(path)
    if path.is_dir():
        profiles = read_long(path)
        for start in range(0, len(profiles), chunk_size):
            yield profiles[start:start + chunk_size]
        return
    suffix = path.suffix.lower()
    if suffix == ".csv":
        # only an empty cell is missing: "None", "NA" or "null" are values (a patient id, a "none")
        yield from _flat_chunks(pd.read_csv(path, dtype=str, chunksize=chunk_size, keep_default_na=False, na_values=[""]))
    elif suffix == ".parquet":
        batches = pq.ParquetFile(path).iter_batches(batch_size=chunk_size)
        yield from _flat_chunks(batch.to_pandas() for batch in batches)
    elif suffix in (".ndjson", ".jsonl"):
        chunk: list[dict[str, Any]] = []
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    chunk.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    chunk.append({"__error__": f"line {number}: not valid JSON: {exc.msg}"})
                if len(chunk) >= chunk_size:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk
    else:
        raise PatientDataError(f"unknown cohort format {suffix!r}: use .csv, .parquet, .ndjson/.jsonl or a folder of long tables", source=str(path))
