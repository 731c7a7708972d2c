"""Watch mode: scripted event streams, errors that never stop the stream, bounded state."""

from __future__ import annotations

import datetime as dt
import io
import json
import signal
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from screening.cli import app
from screening.watch import Watcher, bounded_lines

from . import strategies
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
    assert "not watched" in errors[0]["error"] and "not valid JSON" in errors[1]["error"]
    assert errors[2]["error"] == "unit cannot be used (field item.unit)"
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
    assert "not watched" in watcher.handle(same)[0]["error"]


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
        ({"type": "profile", "patient": {"id": "P", "sex": "x"}}, "field patient.sex"),
        ([1, 2], "valid dictionary"),
        # validator messages that quote the value they refuse
        ({"type": "upsert_condition", "patient_id": "P", "item": {"icd10": "SECRET"}}, "field item.icd10: invalid value"),
        ({"type": "profile", "patient": {"id": "P", "conditions": [{"icd10": "SECRET"}]}}, "field patient.conditions[0].icd10: invalid value"),
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
    assert negative["error"] == "unit cannot be used (field item.unit)"
    [bad] = watcher.handle({"type": "upsert_observation", "patient_id": "P", "item": {"loinc": "1975-2", "value": -7.25, "unit": "mg/dL", "date": "2026-11-01"}})
    assert bad["error"] == "invalid value (field item.value)"


def test_coded_histories_are_never_capped(rules):
    watcher = Watcher(rules, AS_OF, max_entries=2)
    watcher.handle({"type": "profile", "patient": {"id": "P", "conditions": [{"icd10": "C22.0"}, {"icd10": "B18.1"}, {"icd10": "K74.6"}]}})
    for day in range(1, 5):
        watcher.handle({"type": "upsert_observation", "patient_id": "P", "item": {"loinc": "6301-6", "value": 1.2, "unit": "1", "date": f"2026-11-0{day}"}})
    state = watcher.profile("P")
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
    [refused] = watcher.handle({"type": "set", "patient_id": "P0", "fields": {"sex": "male"}})
    assert refused["error"] == "patient P0 is not watched (no profile yet, or discharged or evicted): send a profile event first"
    assert watcher.handle({"type": "discharge", "patient_id": "P0"}) == []


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
    watcher = Watcher(rules, AS_OF)
    watcher.handle({"type": "profile", "patient": {"id": "P"}})
    records = list(watcher.run([line, discharge]))
    assert records == [{"error": problem, "line": 1, "event": None, "patient_id": None}, {"patient_id": "P", "discharged": True}]


# -- what a feed sends: upserts, corrections, late and repeated events ---------------------------------

def _profile(**fields):
    return {"type": "profile", "patient": {"id": "P", "conditions": [], "medications": [], "procedures": [], **fields}}


def _upsert(kind, item, **extra):
    return {"type": kind, "patient_id": "P", "item": item, **extra}


@pytest.mark.parametrize(
    ("kind", "field", "before", "item", "after"),
    [
        # a corrected lab result: same LOINC and date
        ("upsert_observation", "observations", [{"loinc": "6301-6", "value": 1.4, "unit": "1", "date": "2026-11-20"}],
         {"loinc": "6301-6", "value": 1.5, "unit": "1", "date": "2026-11-20"}, [("6301-6", 1.5)]),
        ("upsert_observation", "observations", [{"loinc": "6301-6", "value": 1.4, "unit": "1", "date": "2026-11-20"}],
         {"loinc": "6301-6", "value": 1.5, "unit": "1", "date": "2026-11-19"}, [("6301-6", 1.5), ("6301-6", 1.4)]),
        # a condition resolved: the same ICD-10 code, written with or without its dot
        ("upsert_condition", "conditions", [{"icd10": "E11.9"}], {"icd10": "e119", "status": "resolved"}, [("E119", "resolved")]),
        ("upsert_condition", "conditions", [{"icd10": "K74.6", "snomed": "19943007"}], {"snomed": "19943007", "status": "inactive"},
         [(None, "inactive")]),
        ("upsert_condition", "conditions", [{"icd10": "K74.6", "snomed": "19943007"}], {"icd10": "K74.60", "snomed": "19943007"},
         [("K74.60", "active"), ("K74.6", "active")]),
        # a medication stopped: the same name, whatever its case and spacing
        ("upsert_medication", "medications", [{"name": "Baraclude 0.5 mg"}], {"name": "baraclude  0.5 MG", "status": "stopped"},
         [("baraclude  0.5 MG", "stopped")]),
        ("upsert_procedure", "procedures", [{"kind": "tips", "date": "2026-01-02"}], {"kind": "tips", "date": "2026-01-02", "display": "TIPS"},
         [("tips", "TIPS")]),
        ("upsert_assessment", "assessments", [{"name": "ascites_grade", "grade": 1, "date": "2026-11-08"}],
         {"name": "ascites_grade", "grade": 2, "date": "2026-11-08"}, [("ascites_grade", 2)]),
        # a study read again (preliminary, then final): same modality and date
        ("add_imaging", "imaging", [{"modality": "ct", "date": "2026-11-08"}], {"modality": "ct", "date": "2026-11-08", "findings": ["cirrhosis"]},
         [("ct", ("cirrhosis",))]),
        ("add_imaging", "imaging", [{"modality": "ct", "date": "2026-11-08"}], {"modality": "mri", "date": "2026-11-08"},
         [("mri", None), ("ct", None)]),
    ],
)
def test_an_upsert_replaces_the_same_record(rules, kind, field, before, item, after):
    watcher = Watcher(rules, AS_OF, engine="explain")
    watcher.handle(_profile(**{field: before}))
    assert not [r for r in watcher.handle(_upsert(kind, item)) if "error" in r]
    shown = {
        "observations": lambda o: (o.loinc, o.value), "conditions": lambda c: (c.icd10, c.status.value),
        "medications": lambda m: (m.name, m.status.value), "procedures": lambda p: (p.kind, p.display),
        "assessments": lambda a: (a.name.value, a.grade), "imaging": lambda i: (i.modality.value, tuple(i.findings) if i.findings is not None else None),
    }[field]
    assert [shown(e) for e in getattr(watcher.profile("P"), field)] == after


@pytest.mark.parametrize("field", ["conditions", "medications", "procedures"])
def test_an_upsert_into_a_history_not_reviewed_is_refused(rules, field):
    """A history left out was not reviewed: one record added would make it read as complete."""
    kind, item = {"conditions": ("upsert_condition", {"icd10": "E11.9"}), "medications": ("upsert_medication", {"name": "metformin"}),
                  "procedures": ("upsert_procedure", {"kind": "tips"})}[field]
    watcher = Watcher(rules, AS_OF, engine="explain")
    profile = _profile()
    del profile["patient"][field]
    watcher.handle(profile)
    [refused] = watcher.handle(_upsert(kind, item))
    assert refused == {"error": f"{field} were not reviewed (left out of the profile): an upsert cannot say the list is complete; "
                                f"send the reviewed list in a profile or set event ([] when there are none)",
                       "line": None, "event": kind, "patient_id": "P"}
    assert getattr(watcher.profile("P"), field) is None
    assert not [r for r in watcher.handle({"type": "set", "patient_id": "P", "fields": {field: []}}) if "error" in r]
    assert not [r for r in watcher.handle(_upsert(kind, item)) if "error" in r]
    assert len(getattr(watcher.profile("P"), field)) == 1


P01 = json.loads((ROOT / "patients/examples/P01-jakarta-cpb-si-eligible.json").read_text())
INR = {"loinc": "6301-6", "value": 1.4, "unit": "1", "date": "2026-11-20"}


@pytest.mark.parametrize(
    "event",
    [
        {"type": "profile", "patient": P01},
        {"type": "upsert_observation", "patient_id": "P01", "item": INR},
        {"type": "upsert_condition", "patient_id": "P01", "item": {"icd10": "E11.9"}},
        {"type": "upsert_medication", "patient_id": "P01", "item": {"name": "Baraclude 0.5 mg", "status": "stopped"}},
        {"type": "upsert_procedure", "patient_id": "P01", "item": {"kind": "liver_transplant", "date": "2026-11-01"}},
        {"type": "upsert_assessment", "patient_id": "P01", "item": {"name": "ascites_grade", "grade": 3, "date": "2026-11-21"}},
        {"type": "add_imaging", "patient_id": "P01", "item": {"modality": "ct", "date": "2026-11-21", "findings": ["hepatocellular_carcinoma"]}},
        {"type": "set", "patient_id": "P01", "fields": {"birth_date": None}},
        {"type": "discharge", "patient_id": "P01"},
    ],
)
def test_a_repeated_event_changes_nothing_and_prints_nothing(rules, event):
    watcher = Watcher(rules, AS_OF, engine="explain")
    watcher.handle({"type": "profile", "patient": P01})
    watcher.handle(event)
    profile = watcher.profile("P01")
    assert watcher.handle(event) == []
    assert watcher.profile("P01") == profile


def test_a_discharge_of_a_patient_not_watched_prints_nothing(rules):
    assert Watcher(rules, AS_OF).handle({"type": "discharge", "patient_id": "nobody"}) == []


def test_an_older_result_arriving_late_does_not_supersede_the_newer(rules):
    watcher = Watcher(rules, AS_OF, engine="explain")
    watcher.handle({"type": "profile", "patient": P01})
    late = {"type": "upsert_observation", "patient_id": "P01", "item": {**INR, "value": 9.0, "date": "2026-10-01"}}
    assert watcher.handle(late) == []  # the latest INR decides


def test_the_screening_date_of_a_patient_never_goes_back(rules):
    """A late event (as_of before one already applied) is applied, and screened at the latest date."""
    watcher = Watcher(rules, AS_OF, engine="explain")
    watcher.handle({"type": "profile", "patient": P01, "as_of": "2026-11-22"})
    assert watcher.handle({"type": "upsert_observation", "patient_id": "P01", "item": INR, "as_of": "2026-01-01"}) == []
    later = watcher.handle({"type": "set", "patient_id": "P01", "fields": {"sex": "male"}, "as_of": "2027-06-01"})
    assert {r["as_of"] for r in later} == {"2027-06-01"}
    [again] = watcher.handle({"type": "set", "patient_id": "P01", "fields": {"consent": "refused"}})  # no as_of: not the watcher's date
    assert again["as_of"] == "2027-06-01"


def test_without_a_date_each_event_is_screened_on_the_day_it_is_read(rules):
    days = iter([dt.date(2026, 11, 22), dt.date(2027, 6, 1)])
    watcher = Watcher(rules, None, engine="explain", today=lambda: next(days))
    assert {r["as_of"] for r in watcher.handle({"type": "profile", "patient": P01})} == {"2026-11-22"}
    assert {r["as_of"] for r in watcher.handle({"type": "set", "patient_id": "P01", "fields": {"sex": "male"}})} == {"2027-06-01"}


def test_a_field_set_to_null_is_unknown_again_and_the_line_says_what_is_missing(rules):
    watcher = Watcher(rules, AS_OF, engine="explain")
    watcher.handle({"type": "profile", "patient": P01})
    [line] = watcher.handle({"type": "set", "patient_id": "P01", "fields": {"birth_date": None}}, number=2)
    trial = rules.trials["NCT04357600"]
    assert line == {
        "patient_id": "P01", "trial_id": "NCT04357600", "as_of": "2026-11-22",
        "rules_version": trial.trial.version, "rules_hash": trial.rules_hash,
        "old_verdict": "eligible", "new_verdict": "undetermined", "deciding": [], "missing": ["birth date"],
        "changed": [{"id": "I1", "old": "met", "new": "unknown", "reason": "Unknown: Age is missing, which cannot be checked against the range [18, 65]."}],
    }


def test_a_line_is_printed_when_the_missing_data_changes_under_the_same_verdict(rules):
    p11 = json.loads(STREAM.read_text().splitlines()[0])
    watcher = Watcher(rules, AS_OF, engine="explain")
    watcher.handle(p11)
    [line] = watcher.handle({"type": "set", "patient_id": "P11", "fields": {"birth_date": None}})
    assert (line["old_verdict"], line["new_verdict"]) == ("undetermined", "undetermined")
    assert line["missing"] == ["INR or prothrombin time with control (last 90 days)", "birth date"]


def test_an_ineligible_line_names_the_deciding_criteria(rules):
    watcher = Watcher(rules, AS_OF, engine="explain")
    watcher.handle({"type": "profile", "patient": P01})
    [line] = watcher.handle({"type": "upsert_condition", "patient_id": "P01", "item": {"icd10": "E11.9"}})
    assert (line["new_verdict"], line["deciding"], line["missing"]) == ("ineligible", ["E5"], [])


def test_a_refused_event_leaves_the_patient_as_it_was(rules):
    """Also a result dated after the screening date, which screening would not read until later."""
    watcher = Watcher(rules, AS_OF, engine="explain")
    watcher.handle({"type": "profile", "patient": P01})
    before = watcher.profile("P01")
    for date in ("2026-11-21", "2026-12-20"):
        bad = {"type": "upsert_observation", "patient_id": "P01", "item": {"loinc": "1975-2", "value": 2, "unit": "mg/dx", "date": date}}
        assert watcher.handle(bad, number=3) == [
            {"error": "unit cannot be used (field item.unit)", "line": 3, "event": "upsert_observation", "patient_id": "P01"}]
    assert watcher.profile("P01") == before
    assert not [r for r in watcher.handle({"type": "set", "patient_id": "P01", "fields": {"sex": "male"}, "as_of": "2026-12-21"}) if "error" in r]


def test_labs_are_capped_per_code_so_a_frequent_one_keeps_a_rare_one(rules):
    watcher = Watcher(rules, AS_OF, engine="explain", max_entries=3)
    watcher.handle({"type": "profile", "patient": P01})
    for day in range(11, 20):  # after P01's INR of 2026-11-10
        watcher.handle({"type": "upsert_observation", "patient_id": "P01", "item": {**INR, "date": f"2026-11-{day}"}})
    kept = watcher.profile("P01").observations
    assert [o.date.day for o in kept if o.loinc == "6301-6"] == [19, 18, 17]
    assert {o.loinc for o in kept} == {o["loinc"] for o in P01["observations"]}


@pytest.mark.parametrize(
    ("event", "record"),
    [
        ({"type": "upsert_lab", "patient_id": "P"}, {"event": None, "patient_id": "P"}),
        ({"type": "set", "patient_id": "P", "fields": {"name": "x"}}, {"event": "set", "patient_id": "P", "field": "fields.name"}),
        ({"type": "upsert_condition", "patient_id": "P", "item": {"icd10": "SECRET"}}, {"event": "upsert_condition", "patient_id": "P", "field": "item.icd10"}),
        ({"type": "profile", "patient": {"id": "P", "conditions": [{"icd10": "SECRET"}]}},
         {"event": "profile", "patient_id": "P", "field": "patient.conditions[0].icd10"}),
        ({"type": "discharge", "patient_id": "P" * 129}, {"event": "discharge", "patient_id": None, "field": "patient_id"}),
    ],
)
def test_an_error_line_has_the_same_keys_and_names_the_event_patient_and_field(rules, event, record):
    [line] = Watcher(rules, AS_OF).handle(json.dumps(event), number=4)
    assert list(line) == ["error", "line", "event", "patient_id"]
    assert (line["line"], line["event"], line["patient_id"]) == (4, record["event"], record["patient_id"])
    assert "field" not in record or f"field {record['field']}:" in line["error"] or f"(field {record['field']})" in line["error"]
    assert "SECRET" not in line["error"]


def test_field_paths_are_those_of_the_event(rules):
    watcher = Watcher(rules, AS_OF, engine="explain")
    watcher.handle({"type": "profile", "patient": P01})
    bad_date = watcher.handle({"type": "set", "patient_id": "P01", "fields": {"birth_date": "2030-01-01"}})
    assert bad_date[0]["error"] == "invalid value (field fields.birth_date)"
    bad_unit = dict(P01, observations=[{**P01["observations"][0], "unit": "mg/dx"}])
    assert watcher.handle({"type": "profile", "patient": bad_unit})[0]["error"] == "unit cannot be used (field patient.observations[0].unit)"


def test_a_line_longer_than_the_bound_is_an_error_and_is_not_held(rules):
    discharge = '{"type": "discharge", "patient_id": "P"}'
    watcher = Watcher(rules, AS_OF, max_line_chars=100)
    watcher.handle({"type": "profile", "patient": {"id": "P"}})
    stream = io.StringIO('{"type": "discharge", "patient_id": "' + "x" * 10_000 + '"}\n' + discharge + "\n")
    lines = list(bounded_lines(stream, 100))
    assert [len(line) for line in lines] == [101, len(discharge) + 1]
    assert list(watcher.run(lines)) == [
        {"error": "line longer than 100 characters", "line": 1, "event": None, "patient_id": None},
        {"patient_id": "P", "discharged": True},
    ]


def test_watch_cli_refuses_a_line_past_max_line_chars(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text(STREAM.read_text().splitlines()[0] + "\n" + '{"type": "discharge", "patient_id": "P11"}\n')
    options = ["watch", str(events), "--rules", str(RULES_DIR), "--as-of", "2026-11-22", "--engine", "explain", "--max-line-chars", "200"]
    lines = [json.loads(line) for line in CliRunner().invoke(app, options).output.splitlines()]
    assert lines == [{"error": "line longer than 200 characters", "line": 1, "event": None, "patient_id": None}]

@pytest.mark.parametrize("source", ["file", "stdin"])
def test_a_byte_order_mark_before_the_first_event_is_not_an_error(tmp_path, source):
    """Windows tools write one; json refuses it ("Unexpected UTF-8 BOM"), which lost the first profile."""
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\xef\xbb\xbf" + STREAM.read_bytes())
    options = ["watch", "--rules", str(RULES_DIR), "--as-of", "2026-11-22", "--engine", "explain"]
    result = CliRunner().invoke(app, [*options, str(events)] if source == "file" else options, input=None if source == "file" else events.read_bytes())
    assert _transitions(json.loads(line) for line in result.output.splitlines())[0] == ("NCT03945487", None, "eligible")

def test_stdin_closed_mid_line_gives_an_error_line_for_the_cut_line():
    cut = STREAM.read_text().splitlines()[0] + "\n" + '{"type": "discharge", "pati'
    result = CliRunner().invoke(app, ["watch", "--rules", str(RULES_DIR), "--as-of", "2026-11-22"], input=cut)
    assert result.exit_code == 0
    assert json.loads(result.output.splitlines()[-1]) == {
        "error": "not valid JSON: Unterminated string starting at column 23", "line": 2, "event": None, "patient_id": None}


def test_a_reader_that_stops_reading_ends_the_watch_without_a_traceback():
    """``screening watch ... | head -1``: the broken pipe ends the command quietly."""
    events = "\n".join(STREAM.read_text().splitlines()[:2] * 200) + "\n"
    command = f"{sys.executable} -m screening watch --rules {RULES_DIR} --as-of 2026-11-22 --engine explain | head -1"
    done = subprocess.run(["bash", "-c", command], input=events, capture_output=True, text=True, timeout=120)
    assert len(done.stdout.splitlines()) == 1 and json.loads(done.stdout)["patient_id"] == "P11"
    assert done.stderr == ""



def test_an_interrupt_ends_the_watch_without_a_traceback():
    command = [sys.executable, "-m", "screening", "watch", "--rules", str(RULES_DIR), "--as-of", "2026-11-22", "--engine", "explain"]
    # a shell without job control starts background commands with SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler: the child gets the default disposition, as in a terminal
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) as watching:
        watching.stdin.write(STREAM.read_text().splitlines()[0] + "\n")
        watching.stdin.flush()
        assert json.loads(watching.stdout.readline())["patient_id"] == "P11"  # waiting for the next line
        watching.send_signal(signal.SIGINT)
        _, stderr = watching.communicate(timeout=60)
    assert watching.returncode == 130 and "Traceback" not in stderr

# -- every engine prints the same lines ---------------------------------------------------------------

ENGINES = ["explain", "durable", "vectorized"]


@pytest.mark.parametrize("engine", ENGINES[1:])
def test_every_engine_prints_the_lines_of_the_reference_for_the_example_stream(rules, engine):
    lines = STREAM.read_text().splitlines()
    assert list(Watcher(rules, AS_OF, engine=engine).run(lines)) == list(Watcher(rules, AS_OF, engine="explain").run(lines))


def _event(patient_id: str):
    item = lambda kind, strategy: strategy.map(lambda i: {"type": kind, "patient_id": patient_id, "item": i})  # noqa: E731
    settable = st.fixed_dictionaries({}, optional={
        "birth_date": st.one_of(st.none(), strategies.birth_dates), "sex": st.sampled_from([None, "female", "male"]),
        "consent": st.sampled_from([None, "consented", "refused"]), "pregnant": st.sampled_from([None, True, False]),
    }).filter(bool)
    return st.one_of(
        item("upsert_observation", st.one_of(*(strategies._lab(name) for name in strategies.LABS), strategies.qualitative_lab)),
        item("upsert_condition", strategies.condition()),
        item("upsert_medication", strategies.medication()),
        item("upsert_procedure", strategies.procedure()),
        item("upsert_assessment", strategies.assessment),
        item("add_imaging", strategies.imaging_study),
        settable.map(lambda f: {"type": "set", "patient_id": patient_id, "fields": f}),
        st.just({"type": "discharge", "patient_id": patient_id}),
        strategies.dates.map(lambda d: {"type": "set", "patient_id": patient_id, "fields": {"sex": "male"}, "as_of": d}),
    )


@st.composite
def streams(draw):
    profile = draw(strategies.patients())
    events = [{"type": "profile", "patient": profile}] + draw(st.lists(_event(profile["id"]), max_size=8))
    return [e if not draw(st.integers(0, 5)) == 0 else {"type": "profile", "patient": profile} for e in events]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_every_engine_prints_the_same_lines_and_each_line_follows_the_last(rules, events):
    printed = {engine: list(Watcher(rules, AS_OF, engine=engine).run(json.dumps(e) for e in events)) for engine in ENGINES}
    assert printed["durable"] == printed["explain"] and printed["vectorized"] == printed["explain"]
    verdicts: dict[str, str | None] = {}
    for line in printed["explain"]:
        if "discharged" in line:
            verdicts.clear()
        elif "new_verdict" in line:
            assert line["old_verdict"] == verdicts.get(line["trial_id"])
            verdicts[line["trial_id"]] = line["new_verdict"]
