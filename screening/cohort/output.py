"""Write cohort results chunk by chunk (CSV or Parquet, by the output's suffix).

Rows go to ``<results>.partial`` beside the results file, renamed to it once every row is
written: a results file is always a whole run's (a run that stops leaves the earlier file, if any,
untouched, and its rows so far in the ``.partial`` file, which the error names).
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ScreeningError
from .run import COLUMNS


def _text(column: pd.Series) -> pa.Array:
    """A result column as Arrow text: a categorical one dictionary-encoded (its codes kept, so
    repeated texts are not materialized), any other one plain."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        return pa.array(column.astype("str"), type=pa.string(), from_pandas=True)
    codes = column.cat.codes.to_numpy().astype(np.int32)
    categories = pa.array([str(c) for c in column.cat.categories], type=pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), categories)


class ResultWriter:
    """Appends result frames to ``path`` without holding the whole cohort in memory. Parquet is
    encoded in a background thread (without the GIL) while the caller screens the next chunk: one
    table in flight at most, and a failure to write is raised by the next ``write`` or ``close``
    (leaving a ``with`` block on an error, that error is raised instead, with a note of the failure).
    The rows are written to :attr:`partial` and renamed to ``path`` by :meth:`close`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.format = self.path.suffix.lower().lstrip(".")
        if self.format not in ("csv", "parquet"):
            raise ScreeningError(f"{self.path}: results are written as .csv or .parquet")
        if not self.path.parent.is_dir():  # before any screening, in the same words for both formats
            raise ScreeningError(f"{self.path}: the folder {self.path.parent} does not exist")
        self._parquet: pq.ParquetWriter | None = None
        self._started = False
        self._encoder: ThreadPoolExecutor | None = None  # created by the first Parquet write: CSV is written in the caller's thread
        self._encoding: Future | None = None

    def write(self, frame: pd.DataFrame) -> None:
        if self.format == "csv":
            frame.to_csv(self.partial, mode="a" if self._started else "w", header=not self._started, index=False)
        else:
            table = pa.table({name: _text(frame[name]) for name in frame.columns})
            self._wait()
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.partial, table.schema)
            if self._encoder is None:
                self._encoder = ThreadPoolExecutor(1, thread_name_prefix="result-writer")
            self._encoding = self._encoder.submit(self._parquet.write_table, table)
        self._started = True

    def _wait(self) -> None:
        if self._encoding is not None:
            encoding, self._encoding = self._encoding, None
            encoding.result()

    def close(self) -> None:
        if not self._started:  # no rows: the file still has the result columns
            self.write(pd.DataFrame({name: pd.Categorical([]) for name in COLUMNS}))
        self._finish()
        os.replace(self.partial, self.path)  # atomic: readers see the old results or the whole new ones

    def _finish(self) -> None:
        try:
            self._wait()
        finally:
            if self._encoder is not None:
                self._encoder.shutdown()
            if self._parquet is not None:
                self._parquet.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if value is None:
            self.close()
            return
        try:
            self._finish()  # the rows so far stay in the .partial file; the results file is not touched
        except Exception as failure:  # the caller's error stays the one raised; the write error's text may quote patient data
            value.add_note(f"{self.path}: writing the results also failed ({type(failure).__name__})")
        if self._started:
            value.add_note(f"{self.path}: not written; the rows screened before the error are in {self.partial}")
