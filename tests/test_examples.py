"""The example patients: intended verdicts and outcomes (decided by hand, tests/cases/example_verdicts.yaml),
and golden snapshots of what people read (tests/snapshots/; refresh with UPDATE_SNAPSHOTS=1)."""

from __future__ import annotations

import io
import os

import pytest
from rich.console import Console

from screening import load_patient, screen
from screening.render.text import render_text

from .conftest import ROOT, load_cases

EXPECTED = load_cases("example_verdicts.yaml")
SNAPSHOTS = ROOT / "tests" / "snapshots"
EXAMPLES = sorted((ROOT / "patients" / "examples").glob("*.json"))


@pytest.mark.parametrize("patient_id", sorted(EXPECTED["patients"]))
def test_example_verdicts_and_outcomes(rules, patient_id):
    expected = EXPECTED["patients"][patient_id]
    result = screen(load_patient(ROOT / expected["file"]), rules, as_of=EXPECTED["as_of"])
    assert result.patient_id == patient_id
    for trial in result.results:
        wanted = expected[trial.trial_id]
        assert {c.id: c.outcome.value for c in trial.criteria} == wanted["outcomes"]
        assert trial.verdict.value == wanted["verdict"]


def test_examples_cover_every_verdict_and_outcome(rules):
    seen = {(t, p[t]["verdict"]) for p in EXPECTED["patients"].values() for t in rules.trials}
    for trial in rules.trials:
        for verdict in ("eligible", "ineligible", "undetermined"):
            assert (trial, verdict) in seen
    outcomes = {(c, o) for p in EXPECTED["patients"].values() for c, o in p["NCT04357600"]["outcomes"].items()}
    for criterion in rules.trials["NCT04357600"].trial.criteria:
        for outcome in ("met", "not_met", "unknown"):
            assert (criterion.id, outcome) in outcomes
    assert ("E4", "not_applicable") in outcomes
    assert len(EXAMPLES) == len(EXPECTED["patients"]) >= 10


def _check_snapshot(name: str, actual: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual)
    assert path.exists(), f"no snapshot {name}: run UPDATE_SNAPSHOTS=1 pytest tests/test_examples.py"
    assert actual == path.read_text(), f"{name} changed: review the diff, then UPDATE_SNAPSHOTS=1"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_text_explanation_snapshot(rules, path):
    out = io.StringIO()
    render_text(screen(load_patient(path), rules, as_of=EXPECTED["as_of"]), Console(file=out, width=120, color_system=None))
    _check_snapshot(f"{path.stem}.txt", out.getvalue())


def test_text_explanation_snapshot_on_a_narrow_terminal(rules):
    """60 columns: the outcome goes under the criterion id, wrapped evidence stays indented."""
    stem = "P18-beijing-incomplete-referral-undetermined"
    out = io.StringIO()
    render_text(screen(load_patient(ROOT / "patients" / "examples" / f"{stem}.json"), rules, as_of=EXPECTED["as_of"]),
                Console(file=out, width=60, color_system=None))
    _check_snapshot(f"{stem}.60-columns.txt", out.getvalue())


@pytest.mark.parametrize("stem", ["P01-jakarta-cpb-si-eligible", "P18-beijing-incomplete-referral-undetermined"])
def test_json_contract_snapshot(rules, stem):
    result = screen(load_patient(ROOT / "patients" / "examples" / f"{stem}.json"), rules, as_of=EXPECTED["as_of"])
    _check_snapshot(f"{stem}.json", result.model_dump_json(indent=2) + "\n")
