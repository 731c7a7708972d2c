"""Long EHR-style tables (screening/cohort/long.py): a cohort written as long tables, in CSV or
Parquet, in any row and column order, with rows of patients the extract does not list, gives per
patient the result of screening that patient's profile on its own with the reference evaluator."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from screening import parse_patient, screen
from screening.cli import app
from screening.cohort import long, read_cohort, screen_cohort

from .conftest import AS_OF, ROOT, RULES_DIR
from .rule_strategies import ruleset_of, trials
from .strategies import patients, to_si

# a quarter of the profile's examples (each writes and reads a folder of tables): 50 on CI, 750 with "thorough"
SETTINGS = settings(deadline=None, max_examples=max(settings.default.max_examples // 4, 10),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

HISTORIES = ("conditions", "medications", "procedures")  # closed world: an absent table is "not reviewed"
OPEN = ("observations", "assessments", "imaging")
COLUMNS = {  # every column a long table may have, as screening/cohort/long.py lists them
    "patients": ["id", "birth_date", "sex", "consent", "pregnant", "lactating", "childbearing_potential"],
    "conditions": ["patient_id", "icd10", "snomed", "display", "onset", "resolved", "status"],
    "observations": ["patient_id", "loinc", "value", "unit", "comparator", "control", "result", "date"],
    "medications": ["patient_id", "name", "ingredients", "atc", "rxnorm", "start", "end", "status"],
    "procedures": ["patient_id", "kind", "system", "code", "date"],
    "assessments": ["patient_id", "name", "grade", "date"],
    "imaging": ["patient_id", "modality", "date", "findings", "report"],
}
DATES = {"birth_date", "onset", "resolved", "start", "end", "date"}


def _cell(column: str, value: Any) -> Any:
    if column in ("findings", "ingredients") and value is not None:
        return ";".join(value) if value else "none"  # "none": coded, nothing (an empty cell: not coded)
    return value


def _rows(table: str, profile: dict[str, Any], pad: str) -> list[dict[str, Any]]:
    if table == "patients":
        return [{c: (pad + profile["id"] + pad if c == "id" else profile.get(c)) for c in COLUMNS[table]}]
    return [{"patient_id": pad + profile["id"], **{c: _cell(c, item.get(c)) for c in COLUMNS[table][1:]}}
            for item in profile.get(table) or []]


@st.composite
def long_cohorts(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[str, pd.DataFrame]]:
    """(the profiles as screened on their own, the long tables holding them). A history table left
    out is "not reviewed" for everyone, so a profile's history is ``None`` exactly then."""
    profiles = draw(st.lists(patients(), min_size=1, max_size=5, unique_by=lambda p: p["id"]))
    if draw(st.booleans()):
        profiles = [to_si(profile) for profile in profiles]  # bilirubin, creatinine and albumin in SI units
    present = {name: draw(st.booleans()) for name in HISTORIES + OPEN}
    for profile in profiles:
        for name in HISTORIES:
            profile[name] = profile.get(name, []) if present[name] else None
        for name in OPEN:
            if not present[name]:
                profile[name] = []
        for study in profile["imaging"]:
            if draw(st.integers(0, 3)) == 0:
                del study["findings"]  # not coded
    pad = draw(st.sampled_from(["", " "]))  # ids padded in the extract: the profile model strips them
    orphans = draw(st.lists(patients(), max_size=2).filter(lambda more: not {p["id"] for p in more} & {p["id"] for p in profiles}))
    tables = {}
    for table in ("patients", *(name for name in HISTORIES + OPEN if present[name])):
        rows = [row for profile in profiles for row in _rows(table, profile, pad)]
        if table != "patients":
            rows += [row for orphan in orphans for row in _rows(table, orphan, "")]  # patients the extract does not list
        order = draw(st.permutations(range(len(rows)))) if table != "patients" else range(len(rows))
        columns = draw(st.permutations(COLUMNS[table]))
        frame = pd.DataFrame([rows[i] for i in order], columns=columns, dtype=object)
        kept = [c for c in columns if c in (COLUMNS[table][0],) or frame[c].notna().any() or draw(st.booleans())]
        tables[table] = frame[kept]  # an optional column without values may be left out
    return [{k: v for k, v in p.items() if v is not None} for p in profiles], tables


def _write(tables: dict[str, pd.DataFrame], folder: Path, shape: str) -> None:
    folder.mkdir()
    for name, frame in tables.items():
        if shape == "csv":
            frame.to_csv(folder / f"{name}.csv", index=False)
            continue
        frame = frame.copy()
        for column in frame.columns:
            if column in DATES and shape == "parquet-dates":
                frame[column] = pd.to_datetime(frame[column]).dt.date
            elif column in ("value", "control"):
                frame[column] = frame[column].astype("Float64")
            elif column == "grade":
                frame[column] = frame[column].astype("Int64")
            elif column in ("pregnant", "lactating", "childbearing_potential"):
                frame[column] = frame[column].astype("boolean")
            elif column in ("findings", "ingredients") and shape == "parquet-dates":  # as Parquet lists
                frame[column] = [None if pd.isna(v) else [] if v == "none" else v.split(";") for v in frame[column]]
            else:
                frame[column] = frame[column].astype("string")
        frame.to_parquet(folder / f"{name}.parquet", index=False)


def _reference_rows(rules, profile: dict[str, Any], as_of: dt.date) -> dict[tuple[str, str], dict[str, str]]:
    rows = {}
    for trial in screen(parse_patient(profile), rules, as_of=as_of).results:
        rows[(profile["id"], trial.trial_id)] = {
            "verdict": trial.verdict.value, "deciding": ";".join(trial.deciding),
            "unknown": ";".join(c.id for c in trial.criteria if c.outcome.value == "unknown"),
            "missing": ";".join(trial.missing), "criteria": ";".join(f"{c.id}={c.outcome.value}" for c in trial.criteria), "error": ""}
    return rows


def _check(rules, tmp_path_factory, cohort, shape: str, chunk_size: int) -> None:
    profiles, tables = cohort
    folder = tmp_path_factory.mktemp("long") / "cohort"
    _write(tables, folder, shape)
    results = pd.concat(screen_cohort(read_cohort(folder, chunk_size), rules, AS_OF), ignore_index=True)
    assert len(results) == len(profiles) * len(rules.trials)  # rows out == rows in, the other tables' patients not among them
    expected = {}
    for profile in profiles:
        expected.update(_reference_rows(rules, profile, AS_OF))
    columns = ["verdict", "deciding", "unknown", "missing", "criteria", "error"]
    got = {(row["patient_id"], row["trial_id"]): {c: str(row[c]) for c in columns} for row in results.to_dict("records")}
    assert list(results.patient_id.unique()) == [p["id"] for p in profiles]
    assert got == expected


@SETTINGS
@given(cohort=long_cohorts(), shape=st.sampled_from(["csv", "parquet", "parquet-dates"]), chunk_size=st.integers(1, 3))
def test_long_tables_give_each_patient_the_result_of_its_own_profile(rules, tmp_path_factory, cohort, shape, chunk_size):
    _check(rules, tmp_path_factory, cohort, shape, chunk_size)


@SETTINGS
@given(trial=trials(), cohort=long_cohorts(), chunk_size=st.integers(1, 3))
def test_long_tables_give_each_patient_the_result_of_its_own_profile_on_generated_rules(rules, tmp_path_factory, trial, cohort, chunk_size):
    """Generated rules of every kind: the missing data of each undetermined row too."""
    _check(ruleset_of(rules, trial), tmp_path_factory, cohort, "csv", chunk_size)


def _long(folder: Path, **tables: str) -> Path:
    folder.mkdir(exist_ok=True)
    for name, text in tables.items():
        (folder / f"{name}.csv").write_text(text)
    return folder


def _screened(rules, folder: Path, chunk_size: int = 2) -> pd.DataFrame:
    return pd.concat(screen_cohort(read_cohort(folder, chunk_size), rules, AS_OF, ["NCT04357600"]), ignore_index=True)


def _criterion(row: pd.Series, criterion: str) -> str:
    return dict(pair.split("=") for pair in row.criteria.split(";"))[criterion]


def test_an_id_padded_with_spaces_is_the_profile_models_id_in_every_table(rules, tmp_path):
    """The profile model strips an id: " P1" is P1, whose rows name it "P1 " or "P1"."""
    folder = _long(tmp_path / "long", patients="id\n P1\nP2 \n", conditions="patient_id,icd10\nP1 ,B20\n P2,B20\n")
    results = _screened(rules, folder)
    assert results.patient_id.tolist() == ["P1", "P2"]
    assert results.deciding.tolist() == ["E3", "E3"]  # the HIV diagnosis is theirs, not left out as another patient's


def test_a_row_without_a_patient_id_belongs_to_nobody(rules, tmp_path):
    """Not to a patient whose id reads like an empty cell ("nan", "None"), nor to one without an id."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = _long(tmp_path / "csv", patients="id\nnan\nNone\nP3\n", conditions="patient_id,icd10\n,B20\nP3,K74.6\n")
    (tmp_path / "parquet").mkdir()
    pq.write_table(pa.table({"id": ["nan", "None", "P3"]}), tmp_path / "parquet" / "patients.parquet")
    pq.write_table(pa.table({"patient_id": [None, "P3"], "icd10": ["B20", "K74.6"]}), tmp_path / "parquet" / "conditions.parquet")
    for source in (folder, tmp_path / "parquet"):
        results = _screened(rules, source)
        assert results.patient_id.tolist() == ["nan", "None", "P3"]
        assert [_criterion(row, "E3") for _, row in results.iterrows()] == ["not_met"] * 3, source.name


def test_a_flag_the_profile_model_cannot_read_is_an_error_not_false(rules, tmp_path):
    """"unknown" or "2" is not "no"; "Y" is yes, as the profile model reads it."""
    folder = _long(tmp_path / "long", patients="id,sex,childbearing_potential,lactating\nP1,female,true,unknown\nP2,female,true,2\nP3,female,true,Y\nP4,female,true, no \n")
    results = _screened(rules, folder)
    assert results.verdict.tolist()[:2] == ["error", "error"]
    assert "field lactating" in results.error[0] and "field lactating" in results.error[1]
    assert [_criterion(row, "E4") for _, row in results.iloc[2:].iterrows()] == ["met", "unknown"]  # E4: pregnant or lactating


def test_other_padded_cells_are_read_as_in_a_json_profile(rules, tmp_path):
    """Only a flag is stripped first (as in the flat table): " female" is an error naming the field, as in JSON."""
    folder = _long(tmp_path / "long", patients="id,sex\nP1, female\n", conditions="patient_id,icd10,status\nP1, B20 ,active \n")
    results = _screened(rules, folder)
    assert results.error[0] == "patients.csv line 2: patient P1: field sex: Input should be 'female', 'male' or 'other' (and 1 more problems)"
    (folder / "patients.csv").write_text("id,sex\nP1,female\n")
    assert _screened(rules, folder).error[0].startswith("conditions.csv line 2: patient P1: field status: Input should be 'active'")


def test_a_number_is_read_as_the_profile_model_reads_it(rules, tmp_path):
    """Python's float() reads "１２" (full-width digits) as 12; the profile model, as a JSON profile gives it, does not."""
    folder = _long(tmp_path / "long", patients="id\nP1\nP2\n",
                   observations="patient_id,loinc,value,unit,date\nP1,1975-2,１２,mg/dL,2026-11-01\nP2,1975-2,12,mg/dL,2026-11-01\n",
                   assessments="patient_id,name,grade,date\nP1,ascites_grade,1.0,2026-11-01\nP2,ascites_grade,１,2026-11-01\n")
    results = _screened(rules, folder)
    assert results.verdict.tolist() == ["error", "error"]
    assert "value: Input should be a valid number" in results.error[0] and "grade: Input should be a valid integer" in results.error[1]


def test_imaging_findings_none_is_a_coded_study_showing_none(rules, tmp_path):
    """As in the flat table: "none" is coded, nothing seen (a normal ultrasound); an empty cell is not coded."""
    folder = _long(tmp_path / "long", patients="id\nP1\nP2\n",
                   imaging="patient_id,modality,date,findings\nP1,ultrasound,2026-11-01,none\nP2,ultrasound,2026-11-01,\n")
    results = _screened(rules, folder)
    assert [_criterion(row, "I3") for _, row in results.iterrows()] == ["not_met", "unknown"]


def test_a_table_in_both_csv_and_parquet_stops_the_run_naming_both(rules, tmp_path):
    """Not one of them chosen unseen (one may be left over from an earlier extract)."""
    folder = _long(tmp_path / "long", patients="id\nP1\n", conditions="patient_id,icd10\nP1,B20\n")
    pd.DataFrame({"patient_id": ["P1"], "icd10": ["K74.6"]}).to_parquet(folder / "conditions.parquet", index=False)
    result = CliRunner().invoke(app, ["screen-cohort", str(folder), "--out", str(tmp_path / "r.csv"), "--rules", str(RULES_DIR), "--as-of", "2026-11-22"])
    assert result.exit_code == 2, result.output
    assert "conditions.parquet: conditions.csv is there too: keep one" in " ".join(result.output.split())


@pytest.mark.parametrize(("name", "header", "message"), [
    ("conditions", "person_id,icd10", "conditions.csv: no patient_id column: its rows cannot be given to their patients"),
    ("patients", "person_id,sex", "patients.csv: no id column"),
    ("conditions", "patient_id,icd10,onset_date", "conditions.csv: unknown column 'onset_date' (did you mean 'onset'?)"),
    ("observations", "patient_id,loinc,value,unit,date,encounter_id", "observations.csv: unknown column 'encounter_id'"),
    ("patients", "id,sex,", "patients.csv: unknown column 'Unnamed: 2'"),  # a trailing comma in the header
])
def test_a_table_with_a_column_it_cannot_have_stops_the_run_naming_it(rules, tmp_path, name, header, message):
    """A history table without its patient column would be every patient's empty, reviewed history;
    a column the profile has no field for would be an error row for every patient with a row in it
    (or, left out, a typo such as onset_date would vanish): both are the file's problem, said once."""
    folder = _long(tmp_path / "long", patients="id,sex\nP1,male\n")
    (folder / f"{name}.csv").write_text(header + "\n" + ",".join("x" for _ in header.split(",")) + "\n")
    result = CliRunner().invoke(app, ["screen-cohort", str(folder), "--out", str(tmp_path / "r.csv"), "--rules", str(RULES_DIR), "--as-of", "2026-11-22"])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_parquet_list_columns_are_the_lists_of_a_profile(rules, tmp_path):
    """Findings and ingredients as Parquet lists (list<string>), as a JSON profile holds them: [] is coded, nothing."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "long"
    folder.mkdir()
    pq.write_table(pa.table({"id": ["P1", "P2", "P3"]}), folder / "patients.parquet")
    pq.write_table(pa.table({"patient_id": ["P1", "P2", "P3"], "modality": ["ultrasound"] * 3, "date": ["2026-11-01"] * 3,
                             "findings": [["cirrhosis", "ascites"], [], None]}), folder / "imaging.parquet")
    pq.write_table(pa.table({"patient_id": ["P1"], "name": ["Truvada"], "ingredients": [["emtricitabine", "tenofovir disoproxil fumarate"]]}),
                   folder / "medications.parquet")
    results = _screened(rules, folder)
    assert results.error.tolist() == ["", "", ""]
    assert [_criterion(row, "I3") for _, row in results.iterrows()] == ["met", "not_met", "unknown"]


def test_an_id_on_several_rows_of_patients_is_an_error_on_each(rules, tmp_path):
    """Their rows in the other tables cannot be told apart: screened, both would have both histories."""
    folder = _long(tmp_path / "long", patients="id,birth_date\nP1,1970-01-01\nP2,1970-01-01\n P1,1990-01-01\n",
                   conditions="patient_id,icd10\nP1,B20\n")
    results = _screened(rules, folder)
    assert results.verdict.tolist() == ["error", "undetermined", "error"]
    assert results.patient_id.tolist() == ["P1", "P2", "P1"]
    assert results.error[0] == "patients.csv line 2: patient P1: field id: also on line 4: the rows of other tables name either"
    assert results.error[2] == "patients.csv line 4: patient P1: field id: also on line 2: the rows of other tables name either"


def test_parquet_ids_stored_as_whole_floats_are_the_integer_ids(rules, tmp_path):
    """A pandas column of integer ids with one missing is floats, written so to Parquet: 1.0 is the id 1 of the other tables."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "long"
    folder.mkdir()
    pq.write_table(pa.table({"id": [1.0, None, 3.0]}), folder / "patients.parquet")
    pq.write_table(pa.table({"patient_id": [1, 3], "icd10": ["B20", "K74.6"]}), folder / "conditions.parquet")
    results = _screened(rules, folder)
    assert results.patient_id.tolist() == ["1", "", "3"]
    assert [_criterion(row, "E3") for _, row in results.iloc[[0, 2]].iterrows()] == ["met", "not_met"]


def test_parquet_float_ids_too_large_for_integers_are_read_as_floats(rules, tmp_path):
    """Not a stopped run whose message quotes an id."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "long"
    folder.mkdir()
    pq.write_table(pa.table({"id": [1.0, 1.5e20]}), folder / "patients.parquet")
    assert _screened(rules, folder).patient_id.tolist() == ["1.0", "1.5e+20"]


ERRORS = {  # (table, text): a bad cell in each table, a blank line and a line end inside quotes before some
    "patients": "id,birth_date\nP1,1970-01-01\nP2,1970-01-01\n\nP3,2030-01-01\nP4,1970-02-30\n",
    "observations": "patient_id,loinc,value,unit,date\nP1,1975-2,1.0,mg/dL,2026-11-01\n\nP2,1975-2,1.0,mg/dL,2026-11-01\nP1,1975-2,2.0,furlong,2026-11-02\n",
    "imaging": 'patient_id,modality,date,report\nP2,ultrasound,2026-11-01,"two\nlines"\nP2,xray,2026-11-01,\n',
}


@pytest.mark.parametrize(("shape", "workers"), [("csv", 1), ("csv", 2), ("csv-crlf-bom", 1), ("parquet", 1), ("parquet", 2)])
def test_an_error_names_the_table_its_line_or_row_and_the_field(rules, tmp_path, shape, workers):
    """Lines of a CSV file as an editor numbers them; rows of a Parquet file counted from 1."""
    folder = _long(tmp_path / "long", **ERRORS)
    if shape == "csv-crlf-bom":
        for name, text in ERRORS.items():
            (folder / f"{name}.csv").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
        shape = "csv"
    if shape == "parquet":
        for name in ERRORS:
            pd.read_csv(folder / f"{name}.csv", dtype=str).to_parquet(folder / f"{name}.parquet", index=False)
            (folder / f"{name}.csv").unlink()
    where = {"csv": ("line 5", "line 4", "line 5", "line 6"), "parquet": ("row 3", "row 2", "row 3", "row 4")}[shape]
    results = pd.concat(screen_cohort(read_cohort(folder, 1), rules, AS_OF, ["NCT04357600"], workers=workers), ignore_index=True)
    assert results.verdict.tolist() == ["error"] * 4
    assert [e.split(": ")[:3] for e in results.error] == [
        [f"observations.{shape} {where[0]}", "patient P1", "field unit"],
        [f"imaging.{shape} {where[1]}", "patient P2", "field modality"],
        [f"patients.{shape} {where[2]}", "patient P3", "field birth_date"],  # found when screening, by the fact resolver
        [f"patients.{shape} {where[3]}", "patient P4", "field birth_date"],
    ]


def test_read_cohort_gives_long_tables_as_profiles_the_profile_model_reads():
    """As README's Python API says: lists of profile dicts (where each row came from travels beside them)."""
    chunks = list(read_cohort(ROOT / "patients" / "cohorts" / "long", 4))
    assert [len(chunk) for chunk in chunks] == [4, 4, 4, 4, 3]
    assert [parse_patient(profile).id for chunk in chunks for profile in chunk][:3] == ["P01", "P02", "P03"]


@pytest.mark.parametrize("shape", ["csv", "parquet"])
@pytest.mark.parametrize("batch_rows", [1, 7])
def test_tables_read_a_batch_at_a_time_give_the_same_profiles(tmp_path, monkeypatch, shape, batch_rows):
    """Tables larger than memory are read a batch of rows at a time, each history row sorted into the
    chunk of its patient in a temporary file: batch and chunk sizes change no profile, a patient's
    records keep their table order, each still knows its row (for errors), and no file is left behind.
    The history tables are written in reverse, so one batch holds rows of many chunks."""
    folder = tmp_path / "long"
    folder.mkdir()
    for source in (ROOT / "patients" / "cohorts" / "long").glob("*.csv"):
        frame = pd.read_csv(source, dtype=str)
        frame = frame if source.stem == "patients" else frame.iloc[::-1]
        if shape == "csv":
            frame.to_csv(folder / source.name, index=False)
        else:
            frame.to_parquet(folder / f"{source.stem}.parquet", index=False)
    whole = list(read_cohort(folder, 1000))
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill))
    monkeypatch.setattr(long, "BATCH_ROWS", batch_rows)
    for chunk_size in (1, 4):
        chunks = list(read_cohort(folder, chunk_size))
        assert [len(chunk) for chunk in chunks] == [min(chunk_size, 19 - start) for start in range(0, 19, chunk_size)]
        assert [profile for chunk in chunks for profile in chunk] == whole[0]
        assert [source for chunk in chunks for source in chunk.sources] == whole[0].sources
    assert list(spill.iterdir()) == []
    assert [c["icd10"] for c in whole[0][0]["conditions"]] == ["R18", "K74.6", "B18.1"]  # P01's, in the (reversed) table's order


def test_rows_naming_no_patient_are_counted_after_the_run(rules, tmp_path):
    """Nobody's, so not screened; but ids written one way in patients and another in a table (P001
    and 1) would leave every patient's history empty, and reviewed: the count says so, without an id."""
    folder = _long(tmp_path / "long", patients="id\nP1\n", conditions="patient_id,icd10\nP1,B20\nP9,B20\n,K74.6\n",
                   observations="patient_id,loinc,value,unit,date\nP1,1975-2,1.0,mg/dL,2026-11-01\n")
    counts = []
    assert len(list(read_cohort(folder, on_unmatched=lambda table, n: counts.append((table, n))))) == 1
    assert counts == [("conditions.csv", 2)]
    result = CliRunner().invoke(app, ["screen-cohort", str(folder), "--out", str(tmp_path / "r.csv"), "--rules", str(RULES_DIR), "--as-of", "2026-11-22"])
    assert result.exit_code == 0, result.output
    assert "rows naming no patient of the patients table, not screened: conditions.csv 2" in " ".join(result.output.split())
    assert "P9" not in result.output


def test_a_csv_table_rewritten_between_runs_names_its_new_lines(rules, tmp_path):
    """The lines of a file are counted once per version of it, not once per process."""
    folder = _long(tmp_path / "long", patients="id\nP1\n", conditions="patient_id,icd10\nP1,XYZ\n")
    assert _screened(rules, folder).error[0].startswith("conditions.csv line 2: ")
    (folder / "conditions.csv").write_text("patient_id,icd10\n\n\nP1,XYZ\n")
    assert _screened(rules, folder).error[0].startswith("conditions.csv line 4: ")


def test_ndjson_on_dask_is_refused_before_a_cluster_starts(tmp_path):
    """--dask screens a flat table or a folder of long tables (README, "On a Dask cluster")."""
    cohort = tmp_path / "cohort.ndjson"
    cohort.write_text('{"id": "P1"}\n')
    result = CliRunner().invoke(app, ["screen-cohort", str(cohort), "--out", str(tmp_path / "r.csv"), "--rules", str(RULES_DIR),
                                      "--as-of", "2026-11-22", "--dask", "local"])
    assert result.exit_code == 2
    assert "--dask reads a flat .csv or .parquet table or a folder of long tables" in " ".join(result.output.split())
    assert not (tmp_path / "r.csv").exists()
