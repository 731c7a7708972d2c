"""Write cohort results chunk by chunk (CSV or Parquet, by the output's suffix)."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ScreeningError


def _strings(column: pd.Series) -> pa.Array:
    """A result column as Arrow strings (a categorical one without converting row by row)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        categories = pa.array([str(c) for c in column.cat.categories], type=pa.string())
        return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), categories).cast(pa.string())
    return pa.array(column.astype("str"), type=pa.string(), from_pandas=True)


class ResultWriter:
    """Appends result frames to ``path`` without holding the whole cohort in memory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.format = self.path.suffix.lower().lstrip(".")
        if self.format not in ("csv", "parquet"):
            raise ScreeningError(f"{self.path}: results are written as .csv or .parquet")
        self._parquet: pq.ParquetWriter | None = None
        self._started = False

    def write(self, frame: pd.DataFrame) -> None:
        if self.format == "csv":
            frame.to_csv(self.path, mode="a" if self._started else "w", header=not self._started, index=False)
        else:
            table = pa.table({name: _strings(frame[name]) for name in frame.columns})
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            self._parquet.write_table(table)
        self._started = True

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        elif not self._started and self.format == "csv":
            self.path.write_text("")

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
