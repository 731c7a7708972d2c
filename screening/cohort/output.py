"""Write cohort results chunk by chunk (CSV or Parquet, by the output's suffix)."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ScreeningError


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
            table = pa.Table.from_pandas(frame.astype(str), preserve_index=False)
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
