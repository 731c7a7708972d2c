"""A CSV line with more fields than the header is an error row in its place, naming the line; every
other row gives the results of the same table without that line (screening/cohort/csvfile.py)."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from screening.cohort import CohortSummary, read_cohort, screen_cohort
from screening.cohort import csvfile
from screening.cohort.flat import CSV_OPTIONS

from .conftest import AS_OF, ROOT

SAMPLE = (ROOT / "patients" / "cohorts" / "flat-sample.csv").read_text().splitlines()
HEADER, ROWS = SAMPLE[0], SAMPLE[1:]  # 12 patients
WIDTH = HEADER.count(",") + 1
TRIAL = "NCT04357600"


def _quoted(row: str) -> str:
    """``row`` with a quoted comma (in medications) and a quoted newline (between two conditions)."""
    cells = row.split(",")
    conditions = cells[6].replace(";", ";\n")
    cells[6], cells[7] = f'"{conditions}"', f'"{cells[7]}, once daily"'
    return ",".join(cells)


def _bad(row: str, extra: int = 2, quoted: bool = False) -> tuple[str, int]:
    """A line with ``extra`` fields more than the header (quoted ones holding a comma and a newline)."""
    cells = ['"a,b"', '"c\nd"'][:extra] if quoted else ["x"] * extra
    return ",".join([row, *cells]), WIDTH + extra


Q = [_quoted(row) for row in ROWS]
# (lines, chunk size): a str is a line as it is; a (line, fields) pair, a line with too many fields
CASES = {
    "first data line": ([_bad(ROWS[0]), *ROWS[1:]], 5),
    "first data line, one field too many": ([_bad(ROWS[0], 1), *ROWS[1:]], 5),
    "middle of the first chunk": ([*ROWS[:2], _bad(ROWS[2]), *ROWS[3:]], 5),
    "last line of the first chunk": ([*ROWS[:4], _bad(ROWS[4]), *ROWS[5:]], 5),
    "first line of a later chunk": ([*ROWS[:5], _bad(ROWS[5]), *ROWS[6:]], 5),
    "middle of a later chunk": ([*ROWS[:7], _bad(ROWS[7], 9), *ROWS[8:]], 5),
    "last line": ([*ROWS[:11], _bad(ROWS[11])], 5),
    "several, adjacent and across chunks": ([_bad(ROWS[0]), *ROWS[1:4], _bad(ROWS[4]), _bad(ROWS[5], 1), *ROWS[6:9], _bad(ROWS[9]), *ROWS[10:]], 5),
    "every line": ([_bad(row) for row in ROWS], 5),
    "chunks of one": ([ROWS[0], _bad(ROWS[1]), _bad(ROWS[2]), *ROWS[3:6], _bad(ROWS[6])], 1),
    "quoted commas and newlines around it": ([*Q[:3], _bad(ROWS[3]), *Q[4:8], _bad(ROWS[8]), *Q[9:]], 5),
    "quoted commas and newlines in it": ([*Q[:2], _bad(Q[2], quoted=True), *Q[3:6], _bad(ROWS[6], quoted=True), *Q[7:]], 5),
    "beside a line with fewer fields": ([*ROWS[:3], ROWS[3].rsplit(",", 20)[0], _bad(ROWS[4]), ROWS[5].rsplit(",", 1)[0], *ROWS[6:]], 5),
    "beside blank lines": ([*ROWS[:3], "", "  ", _bad(ROWS[3]), "", *ROWS[4:]], 5),
}


def _csv(lines: list[str], end: str = "\n", last_end: bool = True) -> str:
    return end.join([HEADER, *lines]) + (end if last_end else "")


def _results(path, chunk_size, rules, workers=1):
    summary = CohortSummary()
    frames = list(screen_cohort(read_cohort(path, chunk_size), rules, AS_OF, [TRIAL], summary, workers))
    return pd.concat(frames, ignore_index=True).astype(str), summary


def _expected(lines, chunk_size, rules, tmp_path, end):
    """The results of the table without its lines with too many fields, an error row in each one's place."""
    clean = tmp_path / "clean.csv"
    clean.write_text(_csv([line for line in lines if isinstance(line, str)]), newline="")
    results, _ = _results(clean, chunk_size, rules)
    rows, good, line = [], iter(results.to_dict("records")), 2
    for item in lines:
        if isinstance(item, str):
            rows.append(next(good)) if item.strip() else None
        else:
            text, fields = item
            error = f"line {line}: {fields} fields where the header has {WIDTH}"
            rows.append({**dict.fromkeys(results.columns, ""), "trial_id": TRIAL, "rules_hash": rules.trials[TRIAL].rules_hash, "as_of": AS_OF.isoformat(),
                         "verdict": "error", "error": error})
        line += (item if isinstance(item, str) else item[0]).count("\n") + 1
    return pd.DataFrame(rows, columns=results.columns)


@pytest.mark.parametrize(("end", "last_end"), [("\n", True), ("\r\n", True), ("\n", False)], ids=["LF", "CRLF", "no last LF"])
@pytest.mark.parametrize("case", CASES)
def test_a_line_with_too_many_fields_is_an_error_row_in_its_place(rules, tmp_path, case, end, last_end):
    lines, chunk_size = CASES[case]
    path = tmp_path / "cohort.csv"
    path.write_text(_csv([line if isinstance(line, str) else line[0] for line in lines], end, last_end), newline="")
    results, summary = _results(path, chunk_size, rules)
    expected = _expected(lines, chunk_size, rules, tmp_path, end)
    pd.testing.assert_frame_equal(results, expected)
    assert summary.rows == len(expected) and summary.errors == len(expected[expected.verdict == "error"])


@pytest.mark.parametrize("case", ["first data line", "several, adjacent and across chunks", "quoted commas and newlines in it"])
def test_worker_processes_give_the_same_error_rows(rules, tmp_path, case):
    lines, chunk_size = CASES[case]
    path = tmp_path / "cohort.csv"
    path.write_text(_csv([line if isinstance(line, str) else line[0] for line in lines]))
    alone, alone_summary = _results(path, chunk_size, rules)
    side_by_side, summary = _results(path, chunk_size, rules, workers=2)
    pd.testing.assert_frame_equal(side_by_side, alone)
    assert summary == alone_summary


@pytest.mark.parametrize("chunk_size", [1, 3, 5, 100])
def test_chunks_hold_at_most_chunk_size_rows_one_per_record(tmp_path, chunk_size):
    lines, _ = CASES["several, adjacent and across chunks"]
    path = tmp_path / "cohort.csv"
    path.write_text(_csv([line if isinstance(line, str) else line[0] for line in lines]))
    chunks = list(read_cohort(path, chunk_size))
    assert [len(c) for c in chunks] == [min(chunk_size, len(lines) - start) for start in range(0, len(lines), chunk_size)]


def test_a_well_formed_file_never_leaves_the_c_parser(monkeypatch):
    def refused(*args):
        raise AssertionError("split into records")

    monkeypatch.setattr(csvfile, "Records", refused)
    chunks = list(read_cohort(ROOT / "patients" / "cohorts" / "flat-sample.csv", 5))
    assert [len(c) for c in chunks] == [5, 5, 2]


@pytest.mark.parametrize("text", [
    f'{HEADER}\n{ROWS[0]},x\n{ROWS[1]},"unclosed\n',  # the bad line is read; then the unclosed quote stops the run
    f'{HEADER}\n"unclosed,x,y\n{ROWS[1]},x\n',
])
def test_an_unclosed_quote_still_stops_the_run(tmp_path, text):
    path = tmp_path / "cohort.csv"
    path.write_text(text)
    with pytest.raises(Exception, match="EOF inside string"):
        list(read_cohort(path, 5))


# -- the records, as the C tokenizer splits them --------------------------------------------------

_TEXT = st.text(alphabet='ab,"\n\r \té', max_size=60).map(str.encode)
# The C tokenizer's own quirk, not modelled: a line led by blanks after a lone \r line end makes it
# back up to the last \n and read again from there (only a file with \r line ends). Reading such a
# file stops with the parser's error if its rows do not come out one per record (csvfile._reread).
_BACKS_UP = re.compile(rb"\r(?!\n),?[ \t]+[^ \t\r\n]")


def _rows(text: bytes) -> pd.DataFrame:
    """Every record of ``text`` as a row of 70 cells, by the C parser (none has more fields)."""
    try:
        return pd.read_csv(io.BytesIO(text), header=None, names=range(70), **CSV_OPTIONS)
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=range(70), dtype="str")


@given(text=_TEXT, block=st.integers(1, 8))
def test_records_are_split_as_the_c_parser_splits_them(text, block):
    """Read a few bytes at a time, so records and line ends are cut across blocks."""
    assume(not _BACKS_UP.search(text))
    try:
        expected = _rows(text)
    except pd.errors.ParserError:  # an unclosed quote: not records either
        with pytest.raises(csvfile.Unsplittable):
            list(csvfile.Records(io.BytesIO(text), 0, 1, block))
        return
    records = list(csvfile.Records(io.BytesIO(text), 0, 1, block))
    one_by_one = [_rows(record.text) for record in records]
    assert [len(rows) for rows in one_by_one] == [1] * len(records)
    pd.testing.assert_frame_equal(pd.concat([expected.iloc[:0], *one_by_one], ignore_index=True), expected, check_index_type=False)
    assert [r.fields for r in records] == [len(pd.read_csv(io.BytesIO(r.text), header=None, **CSV_OPTIONS).columns) for r in records]
    starts, at = [], 0
    for record in records:  # each after the blank lines before it (text.index could find it inside one: "\r," then ",")
        while (blank := csvfile._BLANK.match(text, at)) is not None and blank.end() > at:
            at = blank.end()
        assert text.startswith(record.text, at)
        starts.append(at)
        at += len(record.text)
    assert [r.line for r in records] == [1 + csvfile.line_ends(text[:start]) for start in starts]
