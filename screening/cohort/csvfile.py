"""A flat table from CSV, in chunks read by pandas' C parser, where a line with more fields than
the header is an error row in its place (its cells cannot be told apart, so none is read).

The C parser stops at such a line ("Expected 3 fields in line 7, saw 5"), or, when it is the first
data line, takes its extra fields for an index and shifts every row. Either way that chunk is read
again: :class:`Records` splits the file into records as the C tokenizer does (quotes, line ends,
blank lines), the records that fit the header go back to the C parser (so each cell reads as it
would have), each other one becomes a row with only :data:`~screening.cohort.flat.ERROR_MARKER`
set, naming its line, and the C parser goes on after the chunk. A well-formed file never leaves
the C parser; memory stays one chunk either way.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from .flat import CSV_OPTIONS, ERROR_MARKER

# One field as the C tokenizer reads it (``,`` delimiter, ``"`` quotes, doubled to escape): a quote
# opens a quoted part only at the start of a field; after its closing quote, the rest of the field
# is plain text. Atomic and possessive: an unclosed quote fails the match, as it fails the parser.
_FIELD = rb'(?>"(?:[^"]|"")*+"[^,\r\n]*+|[^,"\r\n][^,\r\n]*+|)'
_RECORD = re.compile(_FIELD + rb"(?:," + _FIELD + rb")*+(?:\r\n|\r|\n|\Z)")
_FIELD_AND_COMMA = re.compile(_FIELD + rb",")
_BLANK = re.compile(rb"[ \t]*+(?:\n|\r[\n,]?|\Z)")  # skipped, as is a comma right after a lone \r
_BOM = b"\xef\xbb\xbf"
_BLOCK = 1 << 20


class Unsplittable(Exception):
    """The bytes from here on are not records as the C tokenizer reads them (an unclosed quote)."""


@dataclass(frozen=True)
class Record:
    """One record: its bytes (line end included), its field count and its first line in the file."""

    text: bytes
    fields: int
    line: int


class Records:
    """The records of a CSV file from byte ``start`` (where a record or blank line starts, on line
    ``line``), blank lines skipped, read ``block`` bytes at a time."""

    def __init__(self, handle: BinaryIO, start: int, line: int, block: int = _BLOCK):
        handle.seek(start)
        self._handle, self._start, self._line, self._block = handle, start, line, block
        self._buffer, self._at, self._counted, self._eof = b"", 0, 0, False

    def __iter__(self) -> Iterator[Record]:
        while self._at < len(self._buffer) or self._fill():
            blank = _BLANK.match(self._buffer, self._at)
            if blank is not None and self._whole(blank.end()):
                self._at = blank.end()
                continue
            record = _RECORD.match(self._buffer, self._at) if blank is None else None
            if record is None or not self._whole(record.end()):
                if self._fill():
                    continue
                raise Unsplittable(f"line {self._line_at(self._at)}")
            line, self._at = self._line_at(self._at), record.end()
            yield Record(record[0], _fields(record[0]), line)

    def position(self) -> tuple[int, int]:
        """The file position after the last record read, and its line."""
        return self._start + self._at, self._line_at(self._at)

    def _line_at(self, at: int) -> int:
        """The line of buffer position ``at`` (a record boundary, at or after the last one asked)."""
        self._line += line_ends(self._buffer[self._counted:at])
        self._counted = at
        return self._line

    def _whole(self, end: int) -> bool:
        """Whether a match ending at ``end`` is whole: more of the file could not extend it."""
        return end < len(self._buffer) or self._eof

    def _fill(self) -> bool:
        """Read more of the file after what is left of the buffer; False at the end of the file."""
        if self._eof:
            return False
        self._line_at(self._at)
        more = self._handle.read(max(self._block, len(self._buffer) - self._at))  # a record longer than a block: twice as much
        self._start, self._buffer = self._start + self._at, self._buffer[self._at:] + more
        self._at = self._counted = 0
        self._eof = not more
        return bool(self._buffer)


def line_ends(text: bytes) -> int:
    """Line ends in ``text``, as an editor counts them (``\\r\\n``, ``\\r`` or ``\\n``)."""
    return text.count(b"\n") + text.count(b"\r") - text.count(b"\r\n")


def _fields(record: bytes) -> int:
    if b'"' not in record:
        return record.count(b",") + 1
    count, at = 1, 0
    while (field_and_comma := _FIELD_AND_COMMA.match(record, at)) is not None:
        count, at = count + 1, field_and_comma.end()
    return count


@dataclass(frozen=True)
class Header:
    """The header record: the file's bytes up to its end (a BOM and blank lines before it
    included, as the C parser skips them), and its field count."""

    text: bytes
    fields: int

    @classmethod
    def read(cls, handle: BinaryIO) -> Header:
        handle.seek(0)
        start = len(_BOM) if handle.read(len(_BOM)) == _BOM else 0
        records = Records(handle, start, 1, block=1 << 16)
        first = next(iter(records), None)
        if first is None:
            raise pd.errors.EmptyDataError("No columns to parse from file")
        end, _ = records.position()
        handle.seek(0)
        return cls(handle.read(end), first.fields)


class _AfterHeader(io.RawIOBase):
    """The header's bytes, then the file from ``offset``: read by the C parser as a file that
    started there."""

    def __init__(self, header: Header, handle: BinaryIO, offset: int):
        super().__init__()
        self._header, self._handle = header.text, handle
        handle.seek(offset)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._header:
            size = min(len(buffer), len(self._header))
            buffer[:size], self._header = self._header[:size], self._header[size:]
            return size
        return self._handle.readinto(buffer)


class _Shifted(pd.errors.ParserError):
    """The C parser took the first data line's extra fields for an index."""


def read_csv(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    """Frames of at most ``chunk_size`` rows of the CSV table at ``path``: one row per record, in order."""
    return _read(path, lambda: path.open("rb"), chunk_size)


def read_block(text: bytes, first_line: Callable[[], int]) -> pd.DataFrame:
    """A block of a CSV file (the header's bytes, then whole records) as one frame, with an
    :data:`ERROR_MARKER` column; ``first_line()`` is the file's line the first record after the
    header starts on (asked only when some record has too many fields)."""
    frames = list(_read(io.BytesIO(text), lambda: io.BytesIO(text), len(text), first_line))
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if ERROR_MARKER not in frame.columns:
        frame[ERROR_MARKER] = pd.Series(None, index=frame.index, dtype=object)
    return frame


def line_ends_before(handle: BinaryIO, end: int) -> int:
    """Line ends in the first ``end`` bytes of ``handle``, read a block at a time."""
    handle.seek(0)
    count, last = 0, b""
    while end > 0 and (block := handle.read(min(_BLOCK, end))):
        count += line_ends(block) - (last == b"\r" and block[:1] == b"\n")
        end, last = end - len(block), block[-1:]
    return count


def _read(source: Path | BinaryIO, open_file: Callable[[], BinaryIO], chunk_size: int,
          first_line: Callable[[], int] | None = None) -> Iterator[pd.DataFrame]:
    """The frames of ``source`` (given to the C parser as it is; ``open_file`` opens it again for
    reading records), the records after the header starting on line ``first_line()``."""
    with open_file() as scanned, open_file() as parsed:
        header: Header | None = None
        start: tuple[int, int] | None = None  # where the C parser starts (file position, line); None: at the header
        while True:
            rest = source if start is None or header is None else io.BufferedReader(_AfterHeader(header, parsed, start[0]))
            done, problem = yield from _parsed(rest, chunk_size, restarted=start is not None)
            if problem is None:
                return
            header = header or Header.read(scanned)
            if start is None:
                start = len(header.text), first_line() if first_line is not None else 1 + line_ends(header.text)
            records = Records(scanned, *start)
            try:
                chunk = _reread(itertools.islice(records, done, done + chunk_size), header)
            except Unsplittable:
                raise problem from None
            if chunk is None:
                return
            yield chunk
            start = records.position()


def _parsed(source: Path | BinaryIO, chunk_size: int, restarted: bool) -> Iterator[pd.DataFrame]:
    """The C parser's chunks of ``source`` until it stops (when ``restarted``, no empty one: the
    file had rows before); returns the rows yielded and why it stopped (None: the end of the file)."""
    done = 0
    try:
        with pd.read_csv(source, chunksize=chunk_size, **CSV_OPTIONS) as chunks:
            for chunk in chunks:
                if not isinstance(chunk.index, pd.RangeIndex):
                    raise _Shifted("the first data line has more fields than the header")
                if restarted and chunk.empty:
                    continue
                done += len(chunk)
                yield chunk
    except pd.errors.ParserError as exc:
        return done, exc
    return done, None


def _reread(records: Iterator[Record], header: Header) -> pd.DataFrame | None:
    """A chunk of ``records`` (None: none left), those with more fields than the header as
    error rows; the others parsed by the C parser, as they would have been."""
    taken = list(records)
    if not taken:
        return None
    fit = [i for i, record in enumerate(taken) if record.fields <= header.fields]
    good = pd.read_csv(io.BytesIO(header.text + b"".join(taken[i].text for i in fit)), **CSV_OPTIONS)
    if len(good) != len(fit) or not isinstance(good.index, pd.RangeIndex):
        raise Unsplittable("the records were not split as the C parser splits them")
    frame = good.set_axis(fit).reindex(range(len(taken)))
    errors = {i: f"line {r.line}: {r.fields} fields where the header has {header.fields}" for i, r in enumerate(taken) if r.fields > header.fields}
    frame[ERROR_MARKER] = pd.Series(errors, index=range(len(taken)), dtype=object)
    return frame
