"""The command line, as a user runs it: output, exit codes, messages naming file and field."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from screening import load_patient_with_warnings, load_rules, screen
from screening.cli import app

from .conftest import AS_OF, ROOT, RULES_DIR

runner = CliRunner()
P01 = str(ROOT / "patients/examples/P01-jakarta-cpb-si-eligible.json")
P11 = str(ROOT / "patients/examples/P11-beijing-inr-missing-undetermined.json")
RULES = ["--rules", str(RULES_DIR)]


def run(*args: str):
    return runner.invoke(app, list(args))


def test_screen_text_lists_deciding_and_unknown_criteria_first():
    result = run("screen", P11, *RULES, "--as-of", "2026-11-22", "--trial", "NCT04357600")
    assert result.exit_code == 0, result.output
    assert "Verdict: UNDETERMINED" in result.output
    table = result.output.split("Verdict: UNDETERMINED", 1)[1]
    assert table.index("I2 inclusion") < table.index("I1 inclusion")  # the unknown criterion comes first
    assert "INR or prothrombin time with control (last 90 days)" in result.output


def test_screen_json_contract():
    result = run("screen", P01, *RULES, "--as-of", "2026-11-22", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"patient_id", "as_of", "engine_version", "notices", "results"}
    assert data["as_of"] == "2026-11-22"
    for trial in data["results"]:
        assert {"trial_id", "rules_version", "rules_hash", "verdict", "missing", "caveats", "criteria"} <= set(trial)
        for criterion in trial["criteria"]:
            assert {"id", "kind", "text", "outcome", "evidence", "missing", "reason"} <= set(criterion)
    child_pugh = next(c for t in data["results"] if t["trial_id"] == "NCT04357600" for c in t["criteria"] if c["id"] == "I2")
    score = child_pugh["evidence"][0]
    assert score["fact"] == "child_pugh.score" and score["value"] == 8
    assert {p["fact"]: p["points"] for p in score["parts"]} == {
        "lab.bilirubin": 2, "lab.albumin": 2, "lab.inr": 1, "assessment.ascites_grade": 2, "assessment.encephalopathy_grade": 1
    }


def test_same_input_gives_byte_identical_json_across_processes_and_entry_orders(tmp_path):
    profile = json.loads(open(P01).read())
    shuffled = {key: list(reversed(value)) if isinstance(value, list) else value for key, value in reversed(profile.items())}
    (tmp_path / "shuffled.json").write_text(json.dumps(shuffled))
    outputs = set()
    for seed, path in (("1", P01), ("2", str(tmp_path / "shuffled.json"))):
        done = subprocess.run(
            [sys.executable, "-m", "screening.cli", "screen", path, *RULES, "--as-of", "2026-11-22", "--format", "json"],
            capture_output=True, check=True, env={**os.environ, "PYTHONHASHSEED": seed},
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "X", "sex": "femal"}', "field sex"),
        ('{"id": "X", "observations": [{"loinc": "1975-2", "value": 2, "unit": "mg/dx", "date": "2026-11-01"}]}', "observations[0].unit"),
        ("{oops", "not valid JSON"),
    ],
)
def test_bad_patient_exits_2_naming_file_and_field(tmp_path, content, message):
    path = tmp_path / "patient.json"
    path.write_text(content)
    result = run("screen", str(path), *RULES, "--as-of", "2026-11-22")
    assert result.exit_code == 2
    assert message in result.output
    assert "patient.json" in result.output


@pytest.mark.parametrize("as_of", ["22/11/2026", "20261122", "2026-W47-7", "2026-11-31", "2026-11-22T00:00"])
def test_an_as_of_not_written_yyyy_mm_dd_exits_2(as_of):
    """Python's ISO parser also reads 20261122 and week dates; the option promises one form."""
    result = run("screen", P01, *RULES, "--as-of", as_of)
    assert result.exit_code == 2 and "not a date in YYYY-MM-DD form" in result.output


def test_bad_options_exit_2():
    result = run("screen", P01, *RULES, "--trial", "NCT00000000")
    assert result.exit_code == 2 and "NCT00000000" in result.output
    assert run("screen", str(ROOT / "nope.json"), *RULES).exit_code == 2


@pytest.mark.parametrize(
    ("command", "name", "options"),
    [
        ("screen", "nope.json", []),
        ("screen-cohort", "nope.csv", ["--out", "results.csv"]),
        ("screen-cohort", "nope.parquet", ["--out", "results.csv"]),  # pyarrow's message named no file
        ("screen-cohort", "nope.ndjson", ["--out", "results.csv"]),
        ("report", "nope.csv", ["--out", "report"]),
        ("report", "nope.parquet", ["--out", "report"]),  # pandas said only 'nope.parquet'
        ("watch", "nope.jsonl", []),
    ],
)
def test_a_missing_input_file_exits_2_naming_it(tmp_path, monkeypatch, command, name, options):
    monkeypatch.chdir(tmp_path)
    result = run(command, name, *options, *RULES, "--as-of", "2026-11-22")
    assert result.exit_code == 2
    assert result.output == f"error: {name}: cannot read: No such file or directory\n"


def test_trials_text_shows_ids_hashes_and_basis_whole():
    """What one compares with GET /health; the title wraps instead (rich cut these at 120 columns)."""
    listed = run("trials", *RULES)
    assert listed.exit_code == 0, listed.output
    for trial in load_rules(RULES_DIR).trials.values():
        assert all(text in listed.output for text in (trial.trial.id, trial.trial.version, trial.rules_hash, trial.trial.source.basis.value))


def test_trials_and_validate(tmp_path):
    listed = json.loads(run("trials", *RULES, "--format", "json").output)
    assert [t["trial_id"] for t in listed] == ["NCT03945487", "NCT04357600"]
    assert listed[0]["basis"] == "study_description"
    assert "NCT04357600" in run("trials", *RULES).output
    ok = run("validate", str(RULES_DIR))
    assert ok.exit_code == 0 and ok.output.startswith("ok: 2 trials")
    broken = tmp_path / "rules"
    shutil.copytree(RULES_DIR, broken)
    text = (broken / "NCT04357600.yaml").read_text().replace("codes: hepatitis_c", "codes: hepatitis_cc")
    (broken / "NCT04357600.yaml").write_text(text)
    bad = run("validate", str(broken))
    assert bad.exit_code == 2
    assert "NCT04357600.yaml: criterion E3: unknown code list 'hepatitis_cc'" in bad.output
    assert "did you mean 'hepatitis_c'" in bad.output


def test_console_script_runs_as_installed(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "screening.cli", "screen", P01, *RULES, "--as-of", "2026-11-22", "--format", "json"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["patient_id"] == "P01"


def test_a_patient_recorded_as_deceased_is_flagged_before_any_verdict(tmp_path):
    """The warning list comes after every trial's table; a coordinator deciding whether to call
    reads the verdict first, so a death is stated under the patient line."""
    bundle = json.loads((ROOT / "patients/fhir/P01-jakarta-cpb-si-eligible.bundle.json").read_text(encoding="utf-8"))
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    patient["deceasedDateTime"] = "2026-11-20T06:58:56+00:00"
    path = tmp_path / "P01-deceased.bundle.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    text = run("screen", str(path), *RULES, "--as-of", "2026-11-22")
    assert text.exit_code == 0, text.output
    assert text.output.splitlines()[:2] == ["Patient P01   screened as of 2026-11-22   engine 0.1.0",
                                            "Check before contacting: the patient is recorded as deceased on 2026-11-20"]
    assert "  kept: Patient/P01 (entry[0]): the patient is recorded as deceased on 2026-11-20" in text.output  # and still listed
    clean = run("screen", P01, *RULES, "--as-of", "2026-11-22")
    assert "Check before contacting" not in clean.output


def test_text_follows_columns_when_not_printed_to_a_terminal():
    """Piped (to less, a file, a pager) the text is 120 columns wide, unless COLUMNS says otherwise."""
    wide = runner.invoke(app, ["screen", P11, *RULES, "--as-of", "2026-11-22", "--trial", "NCT04357600"], env={"COLUMNS": ""})
    assert max(len(line) for line in wide.output.splitlines()) == 120
    narrow = runner.invoke(app, ["screen", P11, *RULES, "--as-of", "2026-11-22", "--trial", "NCT04357600"], env={"COLUMNS": "70"})
    assert narrow.exit_code == 0, narrow.output
    assert max(len(line) for line in narrow.output.splitlines()) == 70
    assert "Outcome" not in next(line for line in narrow.output.splitlines() if line.startswith("┃ Criterion"))


def test_screen_a_bundle_shows_the_mapping_warnings(tmp_path):
    bundle = json.loads((ROOT / "patients/fhir/P01-jakarta-cpb-si-eligible.bundle.json").read_text(encoding="utf-8"))
    bundle["entry"] += [{"fullUrl": f"urn:uuid:imm-{i}", "resource": {
        "resourceType": "Immunization", "id": f"imm-{i}", "status": "completed", "vaccineCode": {"text": "hepatitis B"},
        "patient": {"reference": "Patient/P01"}, "occurrenceDateTime": "2026-01-01"}} for i in range(22)]
    path = tmp_path / "P01-with-immunizations.bundle.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    profile, warnings = load_patient_with_warnings(path)
    assert len(warnings) == 22

    text = run("screen", str(path), *RULES, "--as-of", "2026-11-22")
    assert text.exit_code == 0, text.output
    section = text.output.split("FHIR mapping warnings: 22 (unsupported_resource 22)\n", 1)[1].splitlines()
    assert section == [f"  skipped: {w}" for w in warnings[:20]] + ["  ... and 2 more (--format json lists them all)"]

    as_json = run("screen", str(path), *RULES, "--as-of", "2026-11-22", "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output) == {**screen(profile, load_rules(RULES_DIR), as_of=AS_OF).model_dump(mode="json"),
                                          "warnings": [w.model_dump(mode="json") for w in warnings]}
    clean = run("screen", str(ROOT / "patients/fhir/P01-jakarta-cpb-si-eligible.bundle.json"), *RULES, "--as-of", "2026-11-22")
    assert "FHIR mapping warnings" not in clean.output


def test_the_text_lists_warnings_about_what_was_read_before_unread_resource_types(tmp_path):
    """A Synthea bundle carries dozens of Claims and Encounters before its first Observation, and
    vital signs no rule reads: the first 20 warnings listed are those that change what the profile
    says, then those that may hide what a criterion asks about (a procedure with a malformed code)."""
    bundle = json.loads((ROOT / "patients/fhir/P01-jakarta-cpb-si-eligible.bundle.json").read_text(encoding="utf-8"))
    bundle["entry"] += [{"resource": {"resourceType": "Claim", "id": f"claim-{i}"}} for i in range(25)] + [
        {"resource": {"resourceType": "Observation", "id": "weight", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                      "effectiveDateTime": "2026-11-01", "valueQuantity": {"value": 70, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}},
        {"resource": {"resourceType": "Observation", "id": "bili", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "1975-2"}]},
                      "effectiveDateTime": "2026-11", "valueQuantity": {"value": 2.0, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}}},
        {"resource": {"resourceType": "Procedure", "id": "tx", "status": "completed", "subject": {"reference": "Patient/P01"},
                      "code": {"coding": [{"system": "http://snomed.info/sct", "code": "liver-tx"}]}, "performedDateTime": "2020-01-01"}}]
    path = tmp_path / "P01-with-claims.bundle.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    _, warnings = load_patient_with_warnings(path)
    assert [(w.code.value, w.skipped) for w in warnings] == [("unsupported_resource", True)] * 25 + [
        ("unknown_code", True), ("partial_date", False), ("invalid_code", True)]
    text = runner.invoke(app, ["screen", str(path), *RULES, "--as-of", "2026-11-22"], env={"COLUMNS": "200"})  # a warning a line
    section = text.output.split("FHIR mapping warnings: 28 (unsupported_resource 25, unknown_code 1, partial_date 1, invalid_code 1)\n", 1)[1]
    assert section.splitlines() == [f"  kept: {warnings[26]}", *(f"  skipped: {w}" for w in [warnings[27], warnings[25], *warnings[:17]]),
                                    "  ... and 8 more (--format json lists them all)"]
    assert "warnings" not in json.loads(run("screen", P01, *RULES, "--as-of", "2026-11-22", "--format", "json").output)


def test_every_option_and_argument_has_help():
    """What --help shows; every rules directory defaults to $SCREENING_RULES, validate's too."""
    import typer.main

    commands = typer.main.get_command(app).commands
    undocumented = [f"{name} {param.name}" for name, command in commands.items() for param in command.params if param.name != "help" and not getattr(param, "help", None)]
    assert undocumented == []
    rules_help = {name: param.help for name, command in commands.items() for param in command.params if param.name in ("rules", "directory")}
    assert set(rules_help) == {"screen", "screen-cohort", "report", "watch", "serve", "trials", "validate"}
    assert all("(default: $SCREENING_RULES or ./rules)" in text for text in rules_help.values()), rules_help
