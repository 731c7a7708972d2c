"""The command line, as a user runs it: output, exit codes, messages naming file and field."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from screening.cli import app

from .conftest import ROOT, RULES_DIR

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
    assert set(data) == {"patient_id", "as_of", "engine_version", "results"}
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


def test_bad_options_exit_2():
    assert run("screen", P01, *RULES, "--as-of", "22/11/2026").exit_code == 2
    result = run("screen", P01, *RULES, "--trial", "NCT00000000")
    assert result.exit_code == 2 and "NCT00000000" in result.output
    assert run("screen", str(ROOT / "nope.json"), *RULES).exit_code == 2


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
