"""Watch mode: scripted event streams, errors that never stop the stream, bounded state."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from screening.cli import app
from screening.watch import Watcher

from .conftest import AS_OF, ROOT, RULES_DIR

STREAM = ROOT / "patients" / "events" / "P11-stream.jsonl"


def _transitions(records):
    return [(r.get("trial_id"), r.get("old_verdict"), r.get("new_verdict")) for r in records if "new_verdict" in r]


@pytest.mark.parametrize("engine", ["durable", "explain"])
def test_patient_moves_undetermined_eligible_ineligible(rules, engine):
    records = list(Watcher(rules, AS_OF, engine=engine).run(STREAM.read_text().splitlines()))
    assert _transitions(records) == [
        ("NCT03945487", None, "eligible"),
        ("NCT04357600", None, "undetermined"),
        ("NCT04357600", "undetermined", "eligible"),  # INR arrived
        ("NCT04357600", "eligible", "ineligible"),  # diabetes diagnosed
    ]
    inr = next(r for r in records if r.get("old_verdict") == "undetermined")
    assert inr["changed"] == [{"id": "I2", "old": "unknown", "new": "met", "reason": "Met: Child-Pugh class is B."}]
    assert records[1]["missing"] == ["INR or prothrombin time with control (last 90 days)"]
    diabetes = next(r for r in records if r.get("new_verdict") == "ineligible")
    assert [c["id"] for c in diabetes["changed"]] == ["E5"]
    errors = [r for r in records if "error" in r]
    assert [(e["line"], e.get("event")) for e in errors] == [(3, "upsert_observation"), (4, None), (5, "upsert_observation")]
    assert "not known" in errors[0]["error"] and "not valid JSON" in errors[1]["error"]
    assert "observations[7].unit" in errors[2]["error"]
    assert records[-1] == {"patient_id": "P11", "discharged": True}


def test_discharge_drops_state_and_unchanged_verdicts_are_silent(rules):
    watcher = Watcher(rules, AS_OF)
    profile = json.loads((ROOT / "patients/examples/P01-jakarta-cpb-si-eligible.json").read_text())
    assert len(watcher.handle({"type": "profile", "patient": profile})) == 2
    same = {"type": "upsert_observation", "patient_id": "P01", "item": {"loinc": "2951-2", "value": 135, "unit": "mmol/L", "date": "2026-11-21"}}
    assert watcher.handle(same) == []  # sodium does not change a verdict
    assert len(watcher) == 1
    watcher.handle({"type": "discharge", "patient_id": "P01"})
    assert len(watcher) == 0
    assert "not known" in watcher.handle(same)[0]["error"]


def test_set_fields_and_per_event_screening_date(rules):
    watcher = Watcher(rules, AS_OF)
    profile = json.loads((ROOT / "patients/examples/P01-jakarta-cpb-si-eligible.json").read_text())
    watcher.handle({"type": "profile", "patient": profile})
    refused = watcher.handle({"type": "set", "patient_id": "P01", "fields": {"consent": "refused"}})
    assert [(r["trial_id"], r["new_verdict"]) for r in refused] == [("NCT04357600", "ineligible")]
    later = watcher.handle({"type": "set", "patient_id": "P01", "fields": {"consent": "consented"}, "as_of": "2027-06-01"})
    # months later the labs have aged out of their 90-day windows
    assert ("NCT04357600", "undetermined") in [(r["trial_id"], r["new_verdict"]) for r in later]


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({"type": "upsert_lab", "patient_id": "P"}, "type"),
        ({"type": "set", "patient_id": "P", "fields": {"name": "x"}}, "fields.name"),
        ({"type": "profile", "patient": {"id": "P", "sex": "x"}}, "profile.patient.sex"),
        ([1, 2], "valid dictionary"),
        # validator messages that quote the value they refuse
        ({"type": "upsert_condition", "patient_id": "P", "item": {"icd10": "SECRET"}}, "field upsert_condition.item.icd10: invalid value"),
        ({"type": "profile", "patient": {"id": "P", "conditions": [{"icd10": "SECRET"}]}}, "field profile.patient.conditions.0.icd10: invalid value"),
    ],
)
def test_malformed_events_name_the_field_and_carry_no_values(rules, event, problem):
    [record] = Watcher(rules, AS_OF).handle(json.dumps(event), number=7)
    assert record["line"] == 7 and problem in record["error"]
    assert "input_value" not in record["error"] and "SECRET" not in record["error"]


def test_error_lines_name_the_field_not_the_value(rules):
    watcher = Watcher(rules, AS_OF)
    watcher.handle({"type": "profile", "patient": {"id": "P", "conditions": [{"icd10": "E11.9"}]}})
    [negative] = watcher.handle({"type": "upsert_observation", "patient_id": "P", "item": {"loinc": "1975-2", "value": 7.25, "unit": "mg/dx", "date": "2026-11-01"}})
    assert negative["error"] == "unit cannot be used (field observations[0].unit)"
    [bad] = watcher.handle({"type": "upsert_observation", "patient_id": "P", "item": {"loinc": "1975-2", "value": -7.25, "unit": "mg/dL", "date": "2026-11-01"}})
    assert bad["error"] == "invalid value (field observations[0].value)"


def test_coded_histories_are_never_capped(rules):
    watcher = Watcher(rules, AS_OF, max_entries=2)
    watcher.handle({"type": "profile", "patient": {"id": "P", "conditions": [{"icd10": "C22.0"}, {"icd10": "B18.1"}, {"icd10": "K74.6"}]}})
    for day in range(1, 5):
        watcher.handle({"type": "upsert_observation", "patient_id": "P", "item": {"loinc": "6301-6", "value": 1.2, "unit": "1", "date": f"2026-11-0{day}"}})
    state = watcher._patients["P"].profile
    assert len(state.conditions) == 3 and len(state.observations) == 2


def test_an_undecodable_line_is_an_error_record_and_the_stream_goes_on(tmp_path):
    events = tmp_path / "events.jsonl"
    profile = json.dumps({"type": "profile", "patient": {"id": "P"}}).encode()
    events.write_bytes(profile + b"\n" + b'\xff\xfe{"type":"discharge","patient_id":"P"}\n' + b'{"type":"discharge","patient_id":"P"}\n')
    result = CliRunner().invoke(app, ["watch", str(events), "--rules", str(RULES_DIR), "--as-of", "2026-11-22"])
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert result.exit_code == 0
    assert [("error" in r, r.get("discharged")) for r in lines[-2:]] == [(True, None), (False, True)]


def test_patients_beyond_the_bound_are_evicted(rules):
    watcher = Watcher(rules, AS_OF, max_patients=2)
    for i in range(3):
        records = watcher.handle({"type": "profile", "patient": {"id": f"P{i}"}})
    assert records[-1] == {"patient_id": "P0", "evicted": True, "reason": "more than 2 patients watched"}
    assert len(watcher) == 2


def test_watch_cli_reads_a_file_and_stdin():
    runner = CliRunner()
    from_file = runner.invoke(app, ["watch", str(STREAM), "--rules", str(RULES_DIR), "--as-of", "2026-11-22"])
    assert from_file.exit_code == 0
    lines = [json.loads(line) for line in from_file.output.splitlines()]
    assert _transitions(lines)[-1] == ("NCT04357600", "eligible", "ineligible")
    from_stdin = runner.invoke(app, ["watch", "--rules", str(RULES_DIR), "--as-of", "2026-11-22"], input=STREAM.read_text())
    assert from_stdin.output == from_file.output


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("[" * 100_000, "not valid JSON: nested too deeply"),
        ('{"type": "discharge", "patient_id": ' + "[" * 5_000 + "]" * 5_000 + "}", "not valid JSON: nested too deeply"),
        (b'{"type": "discharge", "patient_id": "\xff"}', "not UTF-8 text"),
        ("{", "not valid JSON: Expecting property name enclosed in double quotes at column 2"),
    ],
)
def test_a_line_json_cannot_decode_is_an_error_record_and_the_stream_goes_on(rules, line, problem):
    discharge = '{"type": "discharge", "patient_id": "P"}'
    records = list(Watcher(rules, AS_OF).run([line, discharge]))
    assert records == [{"error": problem, "line": 1}, {"patient_id": "P", "discharged": True}]
