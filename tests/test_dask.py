"""Scale-out: the cohort evaluator on a Dask LocalCluster of 2 worker processes gives the
in-process results."""

from __future__ import annotations

import pickle
import re

import dask.base
import dask.dataframe as dd
import pandas as pd
import pytest
from distributed import Client, LocalCluster

from screening import durable_engine, load_rules
from screening.cohort import CohortSummary, read_cohort, screen_cohort
from screening.cohort.distributed import _read_csv, read_flat, rows_with_errors, screen_dask
from screening.cohort.distributed_long import LongTables, align, read_long_dask, screen_long_dask, unmatched_rows
from screening.cohort.flat import ERROR_MARKER

from .conftest import AS_OF, ROOT, RULES_DIR
from .test_csvfile import CASES, _csv

FLAT = ROOT / "patients" / "cohorts" / "flat-sample.csv"


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def test_results_on_a_two_process_cluster_equal_the_in_process_run(client):
    rules = load_rules(RULES_DIR)
    local = pd.concat(screen_cohort(read_cohort(FLAT), rules, AS_OF), ignore_index=True)
    cohort = dd.from_pandas(pd.read_csv(FLAT, dtype=str), npartitions=3)
    distributed = screen_dask(cohort, rules, AS_OF).compute().reset_index(drop=True)
    assert len(client.scheduler_info()["workers"]) == 2
    pd.testing.assert_frame_equal(distributed.astype(str), local.astype(str))


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_dask_reads_a_flat_table_as_the_in_process_reader(tmp_path, suffix):
    path = tmp_path / f"cohort.{suffix}"
    table = pd.DataFrame({"id": ["NA", "None", "P3"], "conditions": ["None", "NA", ""], "sex": ["female", "", "null"]})
    table.to_csv(path, index=False) if suffix == "csv" else table.to_parquet(path, index=False)
    in_process = pd.concat(read_cohort(path), ignore_index=True)
    assert in_process.iloc[0].tolist() == ["NA", "None", "female"]
    on_dask = read_flat(path).compute().reset_index(drop=True)
    if suffix == "csv":  # every CSV partition has the column marking lines that could not be read: here none
        assert on_dask.pop(ERROR_MARKER).isna().all()
    pd.testing.assert_frame_equal(on_dask.fillna("").astype(object), in_process.fillna("").astype(object))


def _as_read(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.reindex(columns=[*frame.columns.drop(ERROR_MARKER, errors="ignore"), ERROR_MARKER]).fillna("").astype(object)


@pytest.mark.parametrize("block_size", [300, 1000, 64_000_000])  # bytes: most lines, some lines, or all in one block
@pytest.mark.parametrize("case", ["first data line", "several, adjacent and across chunks", "every line", "beside blank lines"])
def test_dask_reads_lines_with_too_many_fields_as_the_in_process_reader(tmp_path, case, block_size):
    """In blocks cut at line ends, as dd.read_csv cuts them: each error names its line in the file."""
    lines, chunk_size = CASES[case]
    path = tmp_path / "cohort.csv"
    path.write_text(_csv([line if isinstance(line, str) else line[0] for line in lines]))
    in_process = pd.concat(read_cohort(path, chunk_size), ignore_index=True)
    on_dask = _read_csv(str(path), block_size)
    assert on_dask.npartitions == max(path.stat().st_size // block_size, 1)
    pd.testing.assert_frame_equal(_as_read(on_dask.compute(scheduler="sync").reset_index(drop=True)), _as_read(in_process))


def test_results_with_lines_with_too_many_fields_on_a_two_process_cluster_equal_the_in_process_run(client, tmp_path):
    rules = load_rules(RULES_DIR)
    lines, chunk_size = CASES["quoted commas and newlines in it"]  # one block: a quoted line end is not a block boundary
    path = tmp_path / "cohort.csv"
    path.write_text(_csv([line if isinstance(line, str) else line[0] for line in lines]))
    local = pd.concat(screen_cohort(read_cohort(path, chunk_size), rules, AS_OF), ignore_index=True)
    distributed = screen_dask(read_flat(path), rules, AS_OF).compute().reset_index(drop=True)
    assert (local.verdict == "error").sum() == 2 * (2 + 2)  # two lines too long, two rows with bad values; two trials
    pd.testing.assert_frame_equal(distributed.astype(str), local.astype(str))


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_dask_reads_a_flat_table_from_a_url(tmp_path, suffix):
    """A URL goes to Dask as given (``Path("memory://c/x")`` is the local path ``memory:/c/x``)."""
    import fsspec

    table = pd.read_csv(FLAT, dtype=str, keep_default_na=False)
    local, url = tmp_path / f"cohort.{suffix}", f"memory://screening-tests/cohort.{suffix}"
    for target in (local, url):
        table.to_csv(target, index=False) if suffix == "csv" else table.to_parquet(target, index=False)
    try:
        on_dask = read_flat(url).compute(scheduler="sync").reset_index(drop=True)
    finally:
        fsspec.filesystem("memory").rm(url)
    pd.testing.assert_frame_equal(on_dask, read_flat(local).compute(scheduler="sync").reset_index(drop=True))


def test_dask_reads_integer_parquet_ids_as_the_in_process_reader(tmp_path):
    """Integer ids with one missing, in a file without pandas metadata (as other tools write it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "cohort.parquet"
    pq.write_table(pa.table({"id": pa.array([1, None, 3], pa.int64()), "birth_date": ["1970-01-01"] * 3}), path)
    in_process = pd.concat(read_cohort(path), ignore_index=True)
    on_dask = read_flat(path).compute(scheduler="sync").reset_index(drop=True)
    ids = lambda frame: [None if pd.isna(v) else v for v in frame["id"]]  # noqa: E731 - a missing id is None or NaN: both blank
    assert ids(on_dask) == ids(in_process) == ["1", None, "3"]


def test_rows_with_errors_are_counted_as_in_process_whatever_their_ids():
    rules = load_rules(RULES_DIR)
    table = pd.DataFrame({"id": ["", "", "P", "P", "Q"], "birth_date": ["1970-01-01", "x", "y", "1970-13-01", "1970-01-01"]})
    summary = CohortSummary()
    pd.concat(screen_cohort([table], rules, AS_OF, summary=summary))
    results = screen_dask(dd.from_pandas(table, npartitions=2), rules, AS_OF)
    assert rows_with_errors(results, len(rules.trials)) == summary.errors == 4


def test_rules_pickle_without_their_compiled_engines():
    rules = load_rules(RULES_DIR)
    durable_engine(rules)  # a durable_rules host cannot be pickled
    copy = pickle.loads(pickle.dumps(rules))
    assert copy.compiled == {} and list(copy.trials) == list(rules.trials)


def test_rules_used_by_the_durable_engine_still_go_to_dask():
    """Dask hashes task arguments; rules whose durable engine was compiled (a durable_rules host
    cannot be hashed deterministically) used to raise TokenizationError in screen_dask."""
    rules = load_rules(RULES_DIR)
    before = dask.base.tokenize(rules)
    durable_engine(rules)
    assert dask.base.tokenize(rules) == before == dask.base.tokenize(load_rules(RULES_DIR))
    results = screen_dask(read_flat(FLAT), rules, AS_OF).compute(scheduler="sync")
    assert len(results) == len(pd.read_csv(FLAT)) * len(rules.trials)


def test_cli_runs_on_a_local_cluster(tmp_path):
    from typer.testing import CliRunner

    from screening.cli import app

    out = tmp_path / "results.csv"
    result = CliRunner().invoke(app, ["screen-cohort", str(FLAT), "--out", str(out), "--rules", str(RULES_DIR), "--as-of", "2026-11-22", "--dask", "local"])
    assert result.exit_code == 0, result.output
    assert "12 patients screened" in result.output and "2 rows with errors" in result.output
    local = pd.concat(screen_cohort(read_cohort(FLAT), load_rules(RULES_DIR), AS_OF), ignore_index=True)
    assert sorted(out.read_text().splitlines()[1:]) == sorted(local.to_csv(index=False).splitlines()[1:])


def test_cli_on_a_cluster_reads_and_writes_urls():
    """The workers read the cohort and write the results, so --dask takes URLs for both (here
    memory://, which workers in this process share); the command line made them paths."""
    import fsspec
    from typer.testing import CliRunner

    from screening.cli import app

    cohort, out = "memory://screening-cli/cohort.csv", "memory://screening-cli/results.csv"
    memory = fsspec.filesystem("memory")
    memory.pipe(cohort, FLAT.read_bytes())
    try:
        with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
            result = CliRunner().invoke(app, ["screen-cohort", cohort, "--out", out, "--rules", str(RULES_DIR), "--as-of", "2026-11-22", "--dask", cluster.scheduler_address])
        assert result.exit_code == 0, result.output
        written = memory.cat(out).decode()
    finally:
        memory.rm("memory://screening-cli", recursive=True)
    local = pd.concat(screen_cohort(read_cohort(FLAT), load_rules(RULES_DIR), AS_OF), ignore_index=True)
    assert sorted(written.splitlines()[1:]) == sorted(local.to_csv(index=False).splitlines()[1:])


LONG = ROOT / "patients" / "cohorts" / "long"


def _long_folder(folder, shape: str):
    """The sample long tables, history rows in reverse, with a row naming no patient, a patient on
    two rows of patients, an integer id and a result whose unit no analyte has (an error row)."""
    folder.mkdir()
    for source in LONG.glob("*.csv"):
        frame = pd.read_csv(source, dtype=str)
        if source.stem == "patients":
            frame = pd.concat([frame, pd.DataFrame({"id": ["P02", "7"]})], ignore_index=True)
        else:
            frame = frame.iloc[::-1]
            if source.stem == "observations":
                extra = [{"patient_id": "P99", "loinc": "1975-2", "value": "1.0", "unit": "mg/dL", "date": "2026-11-01"},
                         {"patient_id": "7", "loinc": "1975-2", "value": "1.0", "unit": "furlong", "date": "2026-11-01"}]
                frame = pd.concat([frame, pd.DataFrame(extra)], ignore_index=True)
        if shape == "csv":
            frame.to_csv(folder / source.name, index=False)
        else:
            frame.to_parquet(folder / f"{source.stem}.parquet", index=False)
    return folder


@pytest.mark.parametrize("shape", ["csv", "parquet"])
def test_long_tables_on_a_two_process_cluster_equal_the_in_process_run(client, tmp_path, shape):
    """Each table in 3 partitions, the history rows joined to their patients' partitions: a
    patient's rows meet in one, and the results come in the order of patients, errors and repeated
    ids as in-process (a row named by its number, not its line: the workers do not reread a CSV file)."""
    rules = load_rules(RULES_DIR)
    folder = _long_folder(tmp_path / "long", shape)
    counted = {}
    local = pd.concat(screen_cohort(read_cohort(folder, 4, on_unmatched=counted.__setitem__), rules, AS_OF), ignore_index=True)
    tables = read_long_dask(str(folder))
    tables = LongTables({name: frame.repartition(npartitions=3) for name, frame in tables.frames.items()}, tables.urls)
    aligned = align(tables)
    on_dask = screen_long_dask(aligned, rules, AS_OF).compute().reset_index(drop=True)
    errors = local.pop("error"), on_dask.pop("error")
    pd.testing.assert_frame_equal(on_dask.astype(str), local.astype(str))
    assert local.verdict.tolist().count("error") == 3 * len(rules.trials)  # P02 twice, and 7's unit
    named = [(a, b) for a, b in zip(*errors) if a]
    unplaced = lambda text: re.sub(r" (line|row) [0-9]+", " <place>", text)  # noqa: E731 - a CSV row in-process is named by its line
    assert len(named) == 3 * len(rules.trials) and all(unplaced(a) == unplaced(b) for a, b in named)
    assert all(a == b for a, b in named) if shape == "parquet" else all(" line " not in b for _, b in named)
    assert any(f"observations.{shape} row " in b for _, b in named) and any(f"patients.{shape} row " in b for _, b in named)
    assert unmatched_rows(tables, aligned) == counted == {f"observations.{shape}": 1}


def test_cli_screens_long_tables_on_a_cluster(client, tmp_path):
    from typer.testing import CliRunner

    from screening.cli import app

    folder, out = _long_folder(tmp_path / "long", "parquet"), tmp_path / "results.csv"
    result = CliRunner().invoke(app, ["screen-cohort", str(folder), "--out", str(out), "--rules", str(RULES_DIR), "--as-of", "2026-11-22",
                                      "--dask", client.scheduler.address])
    assert result.exit_code == 0, result.output
    assert "21 patients screened" in result.output and "3 rows with errors" in result.output
    assert "observations.parquet 1" in " ".join(result.output.split())
    local = pd.concat(screen_cohort(read_cohort(folder), load_rules(RULES_DIR), AS_OF), ignore_index=True)
    assert out.read_text().splitlines()[1:] == local.to_csv(index=False).splitlines()[1:]
