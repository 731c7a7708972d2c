"""Cohort pre-screening: flat, long and NDJSON inputs, rows out == rows in, chunking, outputs."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import pandas as pd
import pytest
from typer.testing import CliRunner

from screening import load_patient, parse_patient, screen
from screening.cli import app
from screening.cohort import CohortSummary, read_cohort, screen_cohort
from screening.cohort.flat import row_to_profile
from screening.cohort.output import ResultWriter

from .conftest import AS_OF, ROOT, RULES_DIR

COHORTS = ROOT / "patients" / "cohorts"


def _run(path, chunk_size=10_000, trials=None, rules=None, workers=1):
    summary = CohortSummary()
    frames = list(screen_cohort(read_cohort(path, chunk_size), rules, AS_OF, trials, summary, workers))
    return pd.concat(frames, ignore_index=True), summary


def _reference(rules, patient_id):
    path = next((ROOT / "patients" / "examples").glob(f"{patient_id}-*.json"))
    return {t.trial_id: t for t in screen(load_patient(path), rules, as_of=AS_OF).results}


# Decided by hand from the rules for each row of patients/cohorts/flat-sample.csv (NCT04357600).
FLAT_EXPECTED = {
    "F01": ("eligible", ""), "F02": ("eligible", ""), "F03": ("ineligible", "E5"), "F04": ("ineligible", "I2"),
    "F05": ("ineligible", "I2"), "F06": ("undetermined", ""), "F07": ("undetermined", ""), "F08": ("ineligible", "E2"),
    "F09": ("error", ""), "F10": ("error", ""), "F11": ("ineligible", "E4"), "F12": ("ineligible", "E7"),
}


def test_flat_sample(rules):
    results, summary = _run(COHORTS / "flat-sample.csv", rules=rules, trials=["NCT04357600"])
    assert list(results.patient_id) == list(FLAT_EXPECTED)
    assert {r.patient_id: (r.verdict, r.deciding) for r in results.itertuples()} == FLAT_EXPECTED
    rows = results.set_index("patient_id")
    assert rows.loc["F06", "missing"] == "INR or prothrombin time with control (last 90 days)"
    assert rows.loc["F07", "missing"] == "consent;medication list (not reviewed)"
    assert rows.loc["F09", "error"].startswith("patient F09: field bilirubin_unit: 'mg/dX' is not a unit")
    assert "birth_date" in rows.loc["F10", "error"]
    assert summary.rows == 12 and summary.errors == 2
    assert summary.verdicts["NCT04357600"] == {"eligible": 2, "undetermined": 2, "ineligible": 6, "error": 2}


@pytest.mark.parametrize("source", ["examples.ndjson", "long"])
def test_cohort_inputs_match_single_patient_screening(rules, source):
    results, _ = _run(COHORTS / source, chunk_size=4, rules=rules)
    for row in results.itertuples():
        reference = _reference(rules, row.patient_id)[row.trial_id]
        assert row.verdict == reference.verdict.value, (row.patient_id, row.trial_id)
        assert row.deciding == ";".join(reference.deciding)
        assert row.missing == ";".join(reference.missing)
        assert row.criteria == ";".join(f"{c.id}={c.outcome.value}" for c in reference.criteria)


def test_a_class_left_open_by_a_censored_result_misses_a_more_precise_one(rules, tmp_path):
    """Bilirubin '<= 2 mg/dL' scores 1 or 2 points: Child-Pugh 6-7 is A or B, and I2 unknown for want
    of a more precise result, in the cohort's missing column as in single-patient screening."""
    row = pd.read_csv(COHORTS / "flat-sample.csv", dtype=str, keep_default_na=False).iloc[[0]].assign(
        bilirubin="2.0", bilirubin_unit="mg/dL", bilirubin_comparator="<=", albumin="3.8", albumin_unit="g/dL", inr="1.2")
    row.to_csv(tmp_path / "censored.csv", index=False)
    results, _ = _run(tmp_path / "censored.csv", rules=rules, trials=["NCT04357600"])
    reference = screen(parse_patient(row_to_profile(row.iloc[0].to_dict())), rules, as_of=AS_OF, trials=["NCT04357600"]).results[0]
    assert dict(c.split("=") for c in results.criteria[0].split(";"))["I2"] == "unknown"
    assert results.missing[0] == ";".join(reference.missing)
    assert "more precise results for Child-Pugh class" in results.missing[0]


def test_a_prothrombin_time_without_its_control_is_named_in_the_reason_and_not_in_the_cohorts_missing_items(rules, tmp_path):
    """P11 (INR older than 90 days) with a prothrombin time recorded without its control: the
    reason names both; the missing item (counted across patients) is the same in cohort output as
    in single-patient screening, and names no date."""
    profile = json.loads(next((ROOT / "patients" / "examples").glob("P11-*.json")).read_text())
    profile["observations"].append({"loinc": "5902-2", "value": 16.0, "unit": "s", "date": "2026-11-08"})
    (tmp_path / "pt.ndjson").write_text(json.dumps(profile) + "\n")
    results, _ = _run(tmp_path / "pt.ndjson", rules=rules, trials=["NCT04357600"])
    reference = screen(parse_patient(profile), rules, as_of=AS_OF, trials=["NCT04357600"]).results[0]
    i2 = next(c for c in reference.criteria if c.id == "I2")
    assert i2.reason == ("Unknown: Child-Pugh class is B or C; cannot tell whether B (the latest INR, on 2026-07-30, is older than 90 days; "
                         "the prothrombin time on 2026-11-08 was recorded without its control).")
    assert results.missing[0] == ";".join(reference.missing) == "INR or prothrombin time with control (last 90 days)"


@pytest.mark.parametrize("dtype", ["category", object, "string"])
def test_the_summary_counts_any_text_columns_as_screening_categoricals(rules, dtype):
    results, summary = _run(COHORTS / "flat-sample.csv", rules=rules)  # one chunk: categorical columns
    assert isinstance(results["verdict"].dtype, pd.CategoricalDtype) and summary.verdicts
    missing = pd.DataFrame({"trial_id": [None, "NCT04357600"], "verdict": ["eligible", None]})
    counted = CohortSummary()
    counted.add(pd.concat([results[["trial_id", "verdict"]], missing], ignore_index=True).astype(dtype))
    assert counted.verdicts == summary.verdicts


def test_rows_out_equal_rows_in_whatever_goes_wrong(rules, tmp_path):
    lines = [json.dumps({"id": "A", "birth_date": "1970-01-01"}), "{not json", json.dumps({"id": "B", "sex": "x"}),
             json.dumps({"id": "C", "observations": [{"loinc": "1975-2", "value": 1, "unit": "furlong", "date": "2026-11-01"}]}),
             json.dumps([1, 2]), json.dumps({"id": "D"})]
    path = tmp_path / "cohort.ndjson"
    path.write_text("\n".join(lines) + "\n")
    results, summary = _run(path, chunk_size=2, rules=rules)
    assert len(results) == len(lines) * len(rules.trials)
    per_patient = results.groupby(results.index // len(rules.trials)).verdict.first().tolist()
    assert per_patient == ["undetermined", "error", "error", "error", "error", "undetermined"]
    assert summary.errors == 4


@pytest.mark.parametrize(("line", "reason"), [
    (b"{not json", "line 2: not valid JSON"),
    (b'{"id": "B", "sex": "\xff"}', "line 2: not UTF-8 text"),
    (b"\xfe\xff", "line 2: not UTF-8 text"),
    (b"[" * 100_000, "line 2: not valid JSON: nested too deeply"),  # json recurses per level
    (b'{"id": ' + b"1" * 5000 + b"}", "line 2: not valid JSON: Exceeds the limit (4300 digits)"),
])
def test_a_bad_ndjson_line_is_an_error_row_and_the_run_goes_on(rules, tmp_path, line, reason):
    path = tmp_path / "cohort.ndjson"
    path.write_bytes(b'{"id": "A"}\n' + line + b'\n{"id": "C"}\n')
    results, summary = _run(path, chunk_size=2, rules=rules, trials=["NCT04357600"])
    assert results[["patient_id", "verdict"]].values.tolist() == [["A", "undetermined"], ["", "error"], ["C", "undetermined"]]
    assert results.error[1].startswith(reason)
    assert summary.rows == 3 and summary.errors == 1


def test_a_flat_row_its_reader_marked_is_an_error_row_with_that_reason(rules):
    """The flat-table form of an NDJSON error marker: the reader sets ``__error__`` on a row it could not read."""
    table = pd.DataFrame({"id": ["A", None, "C"], "birth_date": ["1970-01-01", None, "1970-01-01"], "__error__": [None, "line 3: 5 fields where the header has 3", None]})
    results = pd.concat(screen_cohort([table], rules, AS_OF, ["NCT04357600"]), ignore_index=True)
    assert results[["patient_id", "verdict", "error"]].values.tolist() == [
        ["A", "undetermined", ""], ["", "error", "line 3: 5 fields where the header has 3"], ["C", "undetermined", ""]]


def test_flat_cells_read_as_users_write_them(rules, tmp_path):
    path = tmp_path / "flat.csv"
    path.write_text("id,birth_date,conditions,inr,inr_unit,inr_date\nNA,1970-01-01,None,1.2,,2026-11-01\n")
    results, _ = _run(path, rules=rules, trials=["NCT04357600"])
    row = results.iloc[0]
    assert row.patient_id == "NA" and row.verdict != "error"  # "NA" is an id, "None" is reviewed-none, an empty unit is INR's "1"
    assert "problem list" not in row.missing


@pytest.mark.parametrize(("columns", "field"), [
    ("inr,inr_unit", "inr_date"),
    ("hbsag", "hbsag_date"),
    ("ascites_grade", "ascites_grade_date"),
])
def test_a_flat_value_without_its_date_is_refused_as_a_missing_date(rules, tmp_path, columns, field):
    cells = {"inr": "1.2", "inr_unit": "1", "hbsag": "positive", "ascites_grade": "1"}
    path = tmp_path / "flat.csv"
    path.write_text(f"id,{columns}\nP,{','.join(cells[c] for c in columns.split(','))}\n")
    results, _ = _run(path, rules=rules, trials=["NCT04357600"])
    assert results.verdict.tolist() == ["error"]
    assert results.error.iloc[0] == f"patient P: field {field}: Field required"


# A flat row's bad cell is named by its column, as the user wrote it (the profile path it becomes
# is the engine's business): each case sets cells of an otherwise valid row.
FLAT_CELL_ERRORS = [
    ({"bilirubin": "2.4", "bilirubin_unit": "mg/dX", "bilirubin_date": "2026-11-01"}, "bilirubin_unit", "'mg/dX' is not a unit"),
    ({"bilirubin": "2.4", "bilirubin_unit": "mg/dL", "bilirubin_date": "2026-11-01", "bilirubin_comparator": "~"}, "bilirubin_comparator", ""),
    ({"albumin": "3.0", "albumin_unit": "g/dL", "albumin_date": "2026-13-01"}, "albumin_date", ""),
    ({"inr": "-1", "inr_unit": "1", "inr_date": "2026-11-01"}, "inr", "INR cannot be -1"),
    ({"albumin": "3.0", "albumin_unit": "g/dL", "albumin_date": "2026-11-01", "inr": "1.2", "inr_unit": "mmol/L", "inr_date": "2026-11-01"},
     "inr_unit", ""),
    ({"hbsag": "maybe", "hbsag_date": "2026-11-01"}, "hbsag", ""),
    ({"ascites_grade": "7", "ascites_grade_date": "2026-11-01"}, "ascites_grade", "Value error, ascites_grade grade must be 0-3"),
    ({"encephalopathy_grade": "1", "encephalopathy_grade_date": "yesterday"}, "encephalopathy_grade_date", ""),
    ({"ultrasound_findings": "cirrhosis;fibrosis", "ultrasound_date": "2026-11-01"}, "ultrasound_findings", ""),
    ({"ultrasound_findings": "cirrhosis", "ultrasound_date": "2026-02-30"}, "ultrasound_date", ""),
    ({"conditions": "B18.1;XYZ"}, "conditions (item 2)", ""),
    ({"sex": "mail"}, "sex", ""),
]


@pytest.mark.parametrize(("cells", "column", "problem"), FLAT_CELL_ERRORS, ids=[c for _, c, _ in FLAT_CELL_ERRORS])
def test_a_bad_flat_cell_is_named_by_its_column(rules, tmp_path, cells, column, problem):
    path = tmp_path / "flat.csv"
    row = {"id": "P", "birth_date": "1970-01-01", **cells}
    path.write_text(",".join(row) + "\n" + ",".join(row.values()) + "\n")
    results, _ = _run(path, rules=rules, trials=["NCT04357600"])
    assert results.verdict.tolist() == ["error"]
    assert results.error.iloc[0].startswith(f"patient P: field {column}: {problem}"), results.error.iloc[0]


def test_long_tables_refuse_a_fractional_grade(rules, tmp_path):
    (tmp_path / "patients.csv").write_text("id\nP\n")
    (tmp_path / "assessments.csv").write_text("patient_id,name,grade,date\nP,ascites_grade,1.5,2026-11-01\n")
    results, _ = _run(tmp_path, rules=rules)
    assert set(results.verdict) == {"error"} and results.error.iloc[0].startswith("assessments.csv line 2: patient P: field grade: ")


@pytest.mark.parametrize("dates", ["text", "timestamp", "date"])
def test_long_parquet_tables_with_typed_dates_and_missing_ones_give_the_csv_results(rules, tmp_path, dates):
    """A Parquet date column with an empty cell holds NaT (timestamps) or None: a missing date, like an empty CSV cell."""
    typed = {"text": lambda s: s, "timestamp": pd.to_datetime, "date": lambda s: pd.to_datetime(s).dt.date}[dates]
    for table in (COHORTS / "long").glob("*.csv"):
        frame = pd.read_csv(table, dtype=str, keep_default_na=False, na_values=[""])
        for column in {"birth_date", "onset", "resolved", "start", "end", "date"} & set(frame.columns):
            frame[column] = typed(frame[column])
        frame.to_parquet(tmp_path / f"{table.stem}.parquet", index=False)
    from_csv, _ = _run(COHORTS / "long", rules=rules)
    from_parquet, _ = _run(tmp_path, chunk_size=2, rules=rules)
    pd.testing.assert_frame_equal(from_parquet.astype(str), from_csv.astype(str))


@pytest.mark.parametrize("writer", ["pandas", "arrow"])  # arrow: no pandas metadata (another tool wrote the file)
@pytest.mark.parametrize("shape", ["flat", "long"])
def test_integer_parquet_ids_read_as_the_csv_ones(rules, tmp_path, shape, writer):
    """Ids stored as integers, one missing (pandas reads such a column as floats, 1.0, unless told it is Int64)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = {"flat": {"cohort": pd.DataFrame({"id": [1, None, 3], "birth_date": "1970-01-01", "conditions": "K74.6"})},
              "long": {"patients": pd.DataFrame({"id": [1, None, 3], "birth_date": "1970-01-01"}),
                       "conditions": pd.DataFrame({"patient_id": [1, None, 3], "icd10": "K74.6", "onset": "2020-01-01"})}}[shape]
    for folder in ("csv", "parquet"):
        (tmp_path / folder).mkdir()
    for name, frame in tables.items():
        frame = frame.astype({frame.columns[0]: "Int64"})
        frame.to_csv(tmp_path / "csv" / f"{name}.csv", index=False)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table if writer == "pandas" else table.replace_schema_metadata(None), tmp_path / "parquet" / f"{name}.parquet")
    source = {"flat": "cohort{}", "long": ""}[shape]
    from_csv, _ = _run(tmp_path / "csv" / source.format(".csv"), rules=rules)
    from_parquet, _ = _run(tmp_path / "parquet" / source.format(".parquet"), rules=rules)
    assert list(from_csv.patient_id.unique()) == ["1", "", "3"]
    if shape == "long":  # the id-less row's error names its line of the CSV table, its row of the Parquet one
        assert set(from_csv.error[2:4]) == {"patients.csv line 3: field id: Field required"}
        from_parquet["error"] = from_parquet.error.str.replace("patients.parquet row 2", "patients.csv line 3")
    pd.testing.assert_frame_equal(from_parquet.astype(str), from_csv.astype(str))


def test_long_parquet_integer_codes_read_as_the_csv_ones(rules, tmp_path):
    """SNOMED, RxNorm and procedure codes stored as integers (as OMOP-like extracts store concept
    codes), one missing: the same verdicts as the CSV extract, not error rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = {"patients": pd.DataFrame({"id": ["P", "Q"], "birth_date": "1970-01-01"}),
              "conditions": pd.DataFrame({"patient_id": ["P", "Q"], "snomed": pd.array([44054006, None], "Int64"), "icd10": [None, "K74.6"],
                                          "onset": "2020-01-01", "status": "active"}),
              "medications": pd.DataFrame({"patient_id": ["P"], "name": ["entecavir"], "rxnorm": pd.array([68244], "Int64"), "status": "active"}),
              "procedures": pd.DataFrame({"patient_id": ["Q", "Q"], "system": "snomed", "code": pd.array([302497006, 302497006], "Int64"),
                                          "date": ["2026-11-18", "2026-11-20"]})}
    for folder in ("csv", "parquet"):
        (tmp_path / folder).mkdir()
    for name, frame in tables.items():
        frame.to_csv(tmp_path / "csv" / f"{name}.csv", index=False)
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "parquet" / f"{name}.parquet")
    from_csv, _ = _run(tmp_path / "csv", rules=rules)
    from_parquet, _ = _run(tmp_path / "parquet", rules=rules)
    assert "error" not in set(from_csv.verdict)
    assert "E5=met" in from_csv.set_index(["patient_id", "trial_id"]).loc[("P", "NCT04357600"), "criteria"]  # the SNOMED diabetes code matched
    pd.testing.assert_frame_equal(from_parquet.astype(str), from_csv.astype(str))


def test_chunk_size_does_not_change_results(rules):
    small, _ = _run(COHORTS / "examples.ndjson", chunk_size=1, rules=rules)
    large, _ = _run(COHORTS / "examples.ndjson", chunk_size=1000, rules=rules)
    pd.testing.assert_frame_equal(small.astype(str), large.astype(str))  # categories differ by chunk


@pytest.mark.parametrize("source", ["flat-sample.csv", "examples.ndjson", "long"])
def test_worker_processes_give_the_in_process_results_in_order(rules, source):
    alone, alone_summary = _run(COHORTS / source, chunk_size=3, rules=rules)
    side_by_side, summary = _run(COHORTS / source, chunk_size=3, rules=rules, workers=2)
    pd.testing.assert_frame_equal(alone.astype(str), side_by_side.astype(str))
    assert summary == alone_summary


def _as_parquet(tmp_path):
    path = tmp_path / "flat-sample.parquet"
    pd.read_csv(COHORTS / "flat-sample.csv", dtype=str, keep_default_na=False, na_values=[""]).to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("chunk_size", [1, 5, 12, 100])
def test_parquet_chunks_read_ahead_keep_every_row_in_order(tmp_path, chunk_size):
    path = _as_parquet(tmp_path)
    chunks = list(read_cohort(path, chunk_size))
    assert [len(c) for c in chunks] == [min(chunk_size, 12 - start) for start in range(0, 12, chunk_size)]
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True).astype(str), pd.read_parquet(path).astype(str))


@pytest.mark.parametrize("closed", [True, False], ids=["closed", "dropped"])
def test_a_reader_left_half_read_stops(tmp_path, closed):
    running = set(threading.enumerate())
    chunks = read_cohort(_as_parquet(tmp_path), 2)
    assert len(next(chunks)) == 2
    reading = [t for t in threading.enumerate() if t not in running and t.name.startswith("read-ahead")]
    assert reading  # the next chunk is being read
    if closed:
        chunks.close()
    del chunks  # dropped: closed when collected
    for thread in reading:
        thread.join(timeout=5)
    assert not [t for t in reading if t.is_alive()]


@pytest.mark.parametrize("workers", [1, 2])
def test_parquet_input_gives_the_csv_results(rules, tmp_path, workers):
    from_csv, csv_summary = _run(COHORTS / "flat-sample.csv", chunk_size=5, rules=rules)
    from_parquet, summary = _run(_as_parquet(tmp_path), chunk_size=2, rules=rules, workers=workers)
    pd.testing.assert_frame_equal(from_csv.astype(str), from_parquet.astype(str))
    assert summary == csv_summary


def test_written_results_read_back_whole_and_in_order(rules, tmp_path):
    results, _ = _run(COHORTS / "flat-sample.csv", chunk_size=5, rules=rules)
    frames = list(screen_cohort(read_cohort(COHORTS / "flat-sample.csv", 5), rules, AS_OF))
    with ResultWriter(tmp_path / "results.parquet") as writer:
        for frame in frames:
            writer.write(frame)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "results.parquet").astype(str), results.astype(str))


def test_a_failed_background_write_is_raised(rules, tmp_path):
    frame = next(screen_cohort(read_cohort(COHORTS / "flat-sample.csv", 5), rules, AS_OF))
    writer = ResultWriter(tmp_path / "results.parquet")
    writer.write(frame)
    writer.write(frame.drop(columns=["error"]))  # another schema: refused by the Parquet writer in its thread
    with pytest.raises(ValueError, match="schema"):
        writer.close()


def test_an_error_leaving_the_writer_is_not_replaced_by_a_failed_background_write(rules, tmp_path):
    frame = next(screen_cohort(read_cohort(COHORTS / "flat-sample.csv", 5), rules, AS_OF))
    path = tmp_path / "results.parquet"
    stopped = RuntimeError("screening stopped")
    with pytest.raises(RuntimeError) as raised, ResultWriter(path) as writer:
        writer.write(frame)
        writer.write(frame.drop(columns=["error"]))  # fails in the writer's thread
        raise stopped
    assert raised.value is stopped
    assert stopped.__notes__ == [f"{path}: writing the results also failed (ValueError)",  # its type, not its text
                                 f"{path}: not written; the rows screened before the error are in {path}.partial"]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_run_that_stops_leaves_the_earlier_results_and_its_rows_so_far_apart(rules, tmp_path, suffix):
    """Results appear whole or not at all: a file named as the results never holds part of a run."""
    frames = screen_cohort(read_cohort(COHORTS / "flat-sample.csv", 5), rules, AS_OF)
    path = tmp_path / f"results.{suffix}"
    with ResultWriter(path) as writer:
        writer.write(next(frames))
    earlier = path.read_bytes()
    stopped = RuntimeError("screening stopped")
    with pytest.raises(RuntimeError), ResultWriter(path) as writer:
        writer.write(next(frames))
        raise stopped
    assert path.read_bytes() == earlier
    partial = tmp_path / f"results.{suffix}.partial"
    rows = pd.read_csv(partial) if suffix == "csv" else pd.read_parquet(partial)
    assert len(rows) == 5 * len(rules.trials)
    assert stopped.__notes__ == [f"{path}: not written; the rows screened before the error are in {partial}"]
    with ResultWriter(path) as writer:
        writer.write(next(frames))
    assert not partial.exists() and path.read_bytes() != earlier


@pytest.mark.parametrize(("suffix", "pools"), [("csv", 0), ("parquet", 1)])
def test_only_parquet_results_start_a_background_writer(rules, tmp_path, monkeypatch, suffix, pools):
    pool = mock.Mock(wraps=ThreadPoolExecutor)
    monkeypatch.setattr("screening.cohort.output.ThreadPoolExecutor", pool)
    frame = next(screen_cohort(read_cohort(COHORTS / "flat-sample.csv", 5), rules, AS_OF))
    with ResultWriter(tmp_path / f"results.{suffix}") as writer:
        writer.write(frame)
        writer.write(frame)
    assert pool.call_count == pools


def test_the_cli_progress_display_starts_after_the_workers_are_forked(tmp_path, monkeypatch):
    """The display runs a thread; a process forked while a thread holds a lock inherits it held."""
    import multiprocessing

    from rich.progress import Progress

    workers_at_start: list[int] = []
    enter = Progress.__enter__
    monkeypatch.setattr(Progress, "__enter__", lambda self: workers_at_start.append(len(multiprocessing.active_children())) or enter(self))
    result = CliRunner().invoke(app, ["screen-cohort", str(COHORTS / "flat-sample.csv"), "--out", str(tmp_path / "r.csv"),
                                      "--rules", str(RULES_DIR), "--as-of", "2026-11-22", "--chunk-size", "5", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert workers_at_start == [2]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_cli_run_writes_a_line_with_too_many_fields_as_an_error_row_in_its_place(tmp_path, workers):
    lines = (COHORTS / "flat-sample.csv").read_text().splitlines()
    cohort = tmp_path / "cohort.csv"
    cohort.write_text("\n".join(lines[:8] + [lines[8] + ",one,cell,too,many"] + lines[9:]) + "\n")
    out = tmp_path / "results.csv"
    result = CliRunner().invoke(app, ["screen-cohort", str(cohort), "--out", str(out), "--rules", str(RULES_DIR),
                                      "--as-of", "2026-11-22", "--chunk-size", "5", "--workers", str(workers)])
    assert result.exit_code == 0, result.output
    assert "12 patients screened" in result.output and "3 rows with errors" in result.output
    written = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert written.patient_id.tolist()[::2] == ["F01", "F02", "F03", "F04", "F05", "F06", "F07", "", "F09", "F10", "F11", "F12"]
    assert set(written.error[14:16]) == {"line 9: 38 fields where the header has 34"}  # the line's cells are not quoted


def test_a_cli_run_stopped_by_an_unreadable_line_writes_no_results_and_says_where_the_rows_are(tmp_path):
    lines = (COHORTS / "flat-sample.csv").read_text().splitlines()
    cohort = tmp_path / "cohort.csv"
    cohort.write_text("\n".join(lines[:8] + ['"an unclosed quote'] + lines[9:]) + "\n")
    out = tmp_path / "results.csv"
    result = CliRunner().invoke(app, ["screen-cohort", str(cohort), "--out", str(out), "--rules", str(RULES_DIR),
                                      "--as-of", "2026-11-22", "--chunk-size", "5", "--workers", "1"])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "cohort.csv: cannot be read: Error tokenizing data. C error: EOF inside string" in message
    assert f"the rows screened before the error are in {out}.partial" in message
    assert not out.exists() and len(pd.read_csv(f"{out}.partial")) == 5 * 2


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_screen_cohort_cli_writes_results(tmp_path, suffix):
    out = tmp_path / f"results.{suffix}"
    result = CliRunner().invoke(app, ["screen-cohort", str(COHORTS / "flat-sample.csv"), "--out", str(out), "--rules", str(RULES_DIR),
                                      "--as-of", "2026-11-22", "--chunk-size", "5"])
    assert result.exit_code == 0, result.output
    assert "12 patients screened" in result.output and "2 rows with errors" in result.output
    written = pd.read_csv(out, dtype=str, keep_default_na=False) if suffix == "csv" else pd.read_parquet(out)
    assert len(written) == 24
    assert list(written.columns) == ["patient_id", "trial_id", "rules_hash", "as_of", "verdict", "deciding", "unknown", "missing", "criteria", "error", "notice"]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
@pytest.mark.parametrize("cohort", ["empty.ndjson", "long"])
def test_an_empty_cohort_writes_empty_results_and_a_report(tmp_path, suffix, cohort):
    (tmp_path / "empty.ndjson").write_text("")
    (tmp_path / "long").mkdir()
    (tmp_path / "long" / "patients.csv").write_text("id,birth_date\n")
    out = tmp_path / f"results.{suffix}"
    result = CliRunner().invoke(app, ["screen-cohort", str(tmp_path / cohort), "--out", str(out), "--rules", str(RULES_DIR),
                                      "--as-of", "2026-11-22", "--report", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    assert "0 patients screened" in result.output
    written = pd.read_csv(out, dtype=str) if suffix == "csv" else pd.read_parquet(out)
    assert list(written.columns) == ["patient_id", "trial_id", "rules_hash", "as_of", "verdict", "deciding", "unknown", "missing", "criteria", "error", "notice"]
    assert written.empty and (tmp_path / "report" / "report.md").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["screen-cohort", "cohort.xlsx", "--out", "r.csv"], "unknown cohort format"),
    (["screen-cohort", "patients/cohorts/flat-sample.csv", "--out", "r.txt"], ".csv or .parquet"),
    (["screen-cohort", "patients/cohorts/flat-sample.csv", "--out", "r.csv", "--trial", "NCT00000000"], "unknown trial"),
])
def test_screen_cohort_bad_input_exits_2(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(ROOT)
    (tmp_path / "cohort.xlsx").write_bytes(b"PK")  # present: a missing cohort is reported as missing
    args = [a if a not in ("r.csv", "r.txt", "cohort.xlsx") else str(tmp_path / a) for a in args]
    result = CliRunner().invoke(app, [*args, "--rules", str(RULES_DIR)])
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.parametrize(("name", "content", "message"), [
    ("cohort.csv", b"", "cohort.csv: cannot be read: No columns to parse from file"),
    ("cohort.csv", b"id,sex\n\xff,male\n", "cohort.csv: cannot be read: 'utf-8' codec can't decode"),
    ("cohort.csv", b'id,sex\n"P1,male\n', "cohort.csv: cannot be read: Error tokenizing data"),
    ("cohort.parquet", b"id,sex\nP1,male\n", "cohort.parquet: cannot be read: Parquet magic bytes not found"),
    ("long/conditions.csv", b"", "conditions.csv: cannot be read: No columns to parse from file"),
    ("long/conditions.csv", b"patient_id,icd10\nP1,K74.6,x\n", "conditions.csv: cannot be read: the first data line has more fields than the header"),
    ("long/conditions.csv", b"patient_id,icd10\nP1,K74.6\nP1,B18.1,x\n", "conditions.csv: cannot be read: Error tokenizing data. C error: Expected 2 fields in line 3, saw 3"),
])
def test_an_unreadable_cohort_file_exits_2_naming_it(tmp_path, name, content, message):
    (tmp_path / "long").mkdir()
    (tmp_path / "long" / "patients.csv").write_text("id\nP1\n")
    (tmp_path / name).write_bytes(content)
    result = CliRunner().invoke(app, ["screen-cohort", str(tmp_path / name.split("/")[0]), "--out", str(tmp_path / "r.csv"),
                                      "--rules", str(RULES_DIR), "--as-of", "2026-11-22"])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_results_into_a_missing_folder_exit_2_naming_it(tmp_path, suffix):
    out = tmp_path / "no" / f"r.{suffix}"
    result = CliRunner().invoke(app, ["screen-cohort", str(COHORTS / "flat-sample.csv"), "--out", str(out),
                                      "--rules", str(RULES_DIR), "--as-of", "2026-11-22"])
    assert result.exit_code == 2, result.output
    assert f"{out}: the folder {tmp_path / 'no'} does not exist" in " ".join(result.output.split())
    assert not (tmp_path / "no").exists()


def test_sample_cohorts_are_current(tmp_path):
    before = {p.relative_to(COHORTS): p.read_bytes() for p in COHORTS.rglob("*") if p.is_file() and p.suffix in (".csv", ".ndjson")}
    subprocess.run([sys.executable, str(COHORTS / "build.py")], check=True)
    after = {p.relative_to(COHORTS): p.read_bytes() for p in COHORTS.rglob("*") if p.is_file() and p.suffix in (".csv", ".ndjson")}
    assert after == before, "run: python patients/cohorts/build.py"


# -- a patient recorded as deceased: screened, and every result says so -----------------------------

DECEASED_CELLS = [  # the deceased cell as written, the notice its rows carry ("" none, None: an error row)
    ("", ""), ("2016-04-05", "the patient is recorded as deceased on 2016-04-05"), ("yes", "the patient is recorded as deceased"),
    ("true", "the patient is recorded as deceased"), ("no", ""), ("on", "the patient is recorded as deceased"), ("maybe", None),
    ("2016-02-30", None),
]


@pytest.mark.parametrize("form", ["flat", "long", "ndjson"])
def test_the_deceased_cell_gives_each_row_its_notice_in_every_cohort_form(rules, tmp_path, form):
    ids = [f"D{i}" for i in range(len(DECEASED_CELLS))]
    if form == "flat":
        path = tmp_path / "flat.csv"
        path.write_text("id,birth_date,deceased\n" + "".join(f"{pid},1970-01-01,{cell}\n" for pid, (cell, _) in zip(ids, DECEASED_CELLS)))
    elif form == "long":
        path = tmp_path / "long"
        path.mkdir()
        (path / "patients.csv").write_text("id,birth_date,deceased\n" + "".join(f"{pid},1970-01-01,{c}\n" for pid, (c, _) in zip(ids, DECEASED_CELLS)))
    else:
        path = tmp_path / "cohort.ndjson"
        path.write_text("".join(json.dumps({"id": pid, "birth_date": "1970-01-01", **({"deceased": cell} if cell else {})}) + "\n"
                                for pid, (cell, _) in zip(ids, DECEASED_CELLS)))
    results, summary = _run(path, rules=rules, trials=["NCT04357600"])
    expected = [notice for _, notice in DECEASED_CELLS]
    assert [r.notice if r.verdict != "error" else None for r in results.itertuples()] == expected
    errors = results.error[results.verdict == "error"].tolist()
    assert all(e.endswith("field deceased: Value error, deceased is the date of death (YYYY-MM-DD), or true/false") for e in errors), errors
    assert summary.notices == sum(bool(n) for n in expected)


@pytest.mark.parametrize("engine", ["explain", "durable", "vectorized"])
def test_a_result_for_a_patient_recorded_as_deceased_carries_the_notice_on_every_engine(rules, engine):
    profile = load_patient(next((ROOT / "patients" / "examples").glob("P01-*.json")))
    alive = screen(profile, rules, as_of=AS_OF, engine=engine)
    dead = screen(profile.model_copy(update={"deceased": dt.date(2026, 11, 1)}), rules, as_of=AS_OF, engine=engine)
    assert alive.notices == () and dead.notices == ("the patient is recorded as deceased on 2026-11-01",)
    assert dead.results == alive.results  # no criterion reads it
