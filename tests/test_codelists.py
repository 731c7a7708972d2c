"""The shared code lists (rules/codelists): which concepts each list matches and which it
deliberately leaves out (tests/cases/codelists.yaml), that every SNOMED CT entry names its concept,
and that a record coded only with a concept the lists now cover changes a verdict as it should.

SNOMED CT entries match exactly (no hierarchy), so a concept missing from a list reads as "not that
disease": a patient whose diabetes is recorded only as a diabetic complication would pass a "no
diabetes" exclusion. The verdict tests take the concept as Synthea records it (the shared bulk
export, shared/data/fhir-synthetic) and add it to an otherwise eligible patient's FHIR bundle."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from screening import screen
from screening.fhir import bundle_to_profile

from .conftest import AS_OF, ENGINES, ROOT, load_cases

TABLE = load_cases("codelists.yaml")
CODELISTS = ROOT / "rules" / "codelists"
SYNTHETIC = ROOT.parent / "shared" / "data" / "fhir-synthetic"
needs_shared = pytest.mark.skipif(not SYNTHETIC.is_dir(), reason=f"shared synthetic FHIR data not found at {SYNTHETIC}")


def _rows(section: str) -> list[tuple[str, str, str, str]]:
    return [(list_id, system, str(code), display)
            for list_id, systems in TABLE[section].items() for system, codes in systems.items() for code, display in codes.items()]


def _matches(codelist, system: str, code: str) -> bool:
    return codelist.matches_snomed(code) if system == "snomed" else codelist.matches_icd10(code)


@pytest.mark.parametrize(("list_id", "system", "code", "display"), _rows("members"), ids=lambda v: str(v))
def test_list_matches_its_concepts(rules, list_id, system, code, display):
    assert _matches(rules.codelists[list_id], system, code), f"{list_id} does not match {system} {code} {display}"


@pytest.mark.parametrize(("list_id", "system", "code", "display"), _rows("not_members"), ids=lambda v: str(v))
def test_list_leaves_out_what_its_description_excludes(rules, list_id, system, code, display):
    assert not _matches(rules.codelists[list_id], system, code), f"{list_id} matches {system} {code} {display}"


_SNOMED_BLOCK = re.compile(r"^  snomed:\n((?:    - .*\n)+)", re.M)
_SNOMED_ENTRY = re.compile(r'^    - "(\d+)"\s+# \S.*$')


@pytest.mark.parametrize("path", sorted(CODELISTS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_snomed_entry_names_its_concept(rules, path):
    """Each SNOMED CT id sits on its own line with its display name as a comment, once per list."""
    text = path.read_text()
    assert "snomed: [" not in text, "write SNOMED CT ids one per line, each with its display name"
    listed = [line for block in _SNOMED_BLOCK.findall(text) for line in block.splitlines()]
    bad = [line for line in listed if not _SNOMED_ENTRY.match(line)]
    assert bad == [], f"entries without a display comment: {bad}"
    ids = [_SNOMED_ENTRY.match(line).group(1) for line in listed]
    assert len(ids) == len(set(ids)), f"duplicate SNOMED CT ids: {sorted({i for i in ids if ids.count(i) > 1})}"
    assert ids == list(rules.codelists[path.stem].codes.snomed)  # every loaded id was seen here


# -- a Synthea-coded record on an otherwise eligible patient --------------------------------------

P01 = ROOT / "patients" / "fhir" / "P01-jakarta-cpb-si-eligible.bundle.json"
P01_REFERENCE = "https://fhir.rscm.example.id/r4/Patient/P01"


def _synthea_resource(resource_type: str, code: str) -> dict:
    """The first resource of the bulk export coded ``code`` (SNOMED CT), as Synthea wrote it."""
    with (SYNTHETIC / "bulk-10-patients" / f"{resource_type}.000.ndjson").open() as lines:
        for line in lines:
            resource = json.loads(line)
            if any(c.get("code") == code for c in resource["code"]["coding"]):
                return resource
    raise AssertionError(f"no {resource_type} coded {code} in the bulk export")


def _p01_with(resource: dict | None) -> dict:
    bundle = json.loads(P01.read_text())
    if resource is not None:
        resource = copy.deepcopy(resource)
        resource["subject"] = {"reference": P01_REFERENCE}  # the Synthea patient's record, moved onto P01
        for key in ("encounter", "location", "reasonReference"):  # references into the Synthea export
            resource.pop(key, None)
        bundle["entry"].append({"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource})
        if resource["resourceType"] == "Procedure":  # P01's procedure history says "none": it now holds one
            bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "List"]
    return bundle


def _screen(bundle: dict, rules, engine: str = "explain"):
    (trial,) = screen(bundle_to_profile(bundle).profile, rules, as_of=AS_OF, trials=["NCT04357600"], engine=engine).results
    return trial


# (resource type, SNOMED CT code as Synthea records it, criterion, outcome, verdict): an exclusion
# met by the concept alone makes the eligible P01 ineligible; a concept a list leaves out does not.
SYNTHEA_CASES = [
    ("Condition", "127013003", "E5", "met", "ineligible"),  # Disorder of kidney due to diabetes mellitus
    ("Condition", "90781000119102", "E5", "met", "ineligible"),  # Microalbuminuria due to type 2 diabetes mellitus
    ("Condition", "157141000119108", "E5", "met", "ineligible"),  # Proteinuria due to type 2 diabetes mellitus
    ("Condition", "161665007", "E7", "met", "ineligible"),  # History of renal transplant (situation)
    ("Procedure", "711446003", "E7", "met", "ineligible"),  # Transplantation of kidney regime (regime/therapy)
    ("Condition", "424132000", "E2", "met", "ineligible"),  # Non-small cell carcinoma of lung, TNM stage 1
    ("Condition", "15777000", "E5", "not_met", "eligible"),  # Prediabetes: not diabetes
    ("Condition", "698306007", "E7", "not_met", "eligible"),  # Awaiting transplantation of kidney: not transplanted
    ("Condition", "10939881000119105", "E6", "not_met", "eligible"),  # Unhealthy alcohol drinking behavior
    ("Condition", "78275009", "E5", "not_met", "eligible"),  # Obstructive sleep apnea syndrome: not in respiratory_disease
]


@needs_shared
def test_p01_is_eligible_without_the_synthea_record(rules):
    trial = _screen(_p01_with(None), rules)
    assert trial.verdict.value == "eligible"
    assert {c.id: c.outcome.value for c in trial.criteria if c.id in ("E2", "E5", "E6", "E7")} == {
        "E2": "not_met", "E5": "not_met", "E6": "not_met", "E7": "not_met"}


@needs_shared
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("resource_type", "code", "criterion", "outcome", "verdict"), SYNTHEA_CASES, ids=[c[1] for c in SYNTHEA_CASES])
def test_synthea_coded_record_decides_the_exclusion(rules, resource_type, code, criterion, outcome, verdict, engine):
    resource = _synthea_resource(resource_type, code)
    trial = _screen(_p01_with(resource), rules, engine)
    result = next(c for c in trial.criteria if c.id == criterion)
    assert (result.outcome.value, trial.verdict.value) == (outcome, verdict)
    if outcome == "met":  # the evidence names the Synthea record
        display = resource["code"]["coding"][0]["display"]
        assert display in [e.label for e in result.evidence], [e.label for e in result.evidence]
