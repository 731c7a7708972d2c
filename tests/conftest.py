"""Shared fixtures and the case-table harness (cases live in tests/cases/*.yaml)."""

from __future__ import annotations

import copy
import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import settings

from screening import load_rules, parse_patient, screen
from screening.results import CriterionResult
from screening.rules.loader import LoadedTrial, RuleSet, rules_hash
from screening.rules.model import Trial

# Hypothesis profiles: "dev" explores new random examples each run; "ci" (chosen when CI is set) is
# derandomized so a submission's result does not depend on luck; "thorough" for long local hunts:
# HYPOTHESIS_PROFILE=thorough pytest tests/test_properties.py
settings.register_profile("dev", max_examples=150)
settings.register_profile("ci", max_examples=200, derandomize=True)
settings.register_profile("thorough", max_examples=3000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "rules"
CASES_DIR = Path(__file__).resolve().parent / "cases"
AS_OF = dt.date(2026, 11, 22)


@pytest.fixture(scope="session")
def rules() -> RuleSet:
    return load_rules(RULES_DIR)


def load_cases(name: str) -> dict[str, Any]:
    return yaml.safe_load((CASES_DIR / name).read_text())


def apply_patch(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Build a case's patient: top-level keys of ``patch`` replace the base's (``null`` removes);
    ``set_labs`` replaces the base's observations with the same LOINC codes; ``drop_labs`` removes
    them; ``set_assessments`` likewise by assessment name."""
    patient = copy.deepcopy(base)
    patch = dict(patch)
    set_labs = patch.pop("set_labs", [])
    drop_labs = set(patch.pop("drop_labs", []))
    set_assessments = patch.pop("set_assessments", [])
    for key, value in patch.items():
        if value is None:
            patient.pop(key, None)
        else:
            patient[key] = value
    replaced = drop_labs | {lab["loinc"] for lab in set_labs}
    if replaced or set_labs:
        patient["observations"] = [o for o in patient.get("observations", []) if o["loinc"] not in replaced] + set_labs
    if set_assessments:
        names = {a["name"] for a in set_assessments}
        patient["assessments"] = [a for a in patient.get("assessments", []) if a["name"] not in names] + set_assessments
    return patient


ENGINES = ["explain", "durable", "vectorized"]


def inline_ruleset(rules: RuleSet, criteria: list[dict[str, Any]], defaults: dict[str, Any] | None = None) -> RuleSet:
    """A rule set of one generated trial (NCT99999999) with the shared code lists."""
    trial = Trial.model_validate({"id": "NCT99999999", "title": "inline", "version": "0", "source": {"url": "https://example.org"},
                                  "criteria": criteria, **({"defaults": defaults} if defaults else {})})
    return RuleSet({trial.id: LoadedTrial(trial, "<inline>", rules_hash(trial, rules.codelists))}, rules.codelists, "<inline>")


def evaluate_case(rules: RuleSet, case: dict[str, Any], base: dict[str, Any], as_of: dt.date, engine: str = "explain") -> str:
    """Outcome of the case's criterion (a trial's criterion by id, or an inline rule) on ``engine``."""
    return case_result(rules, case, base, as_of, engine).outcome.value


def case_result(rules: RuleSet, case: dict[str, Any], base: dict[str, Any], as_of: dt.date, engine: str = "explain") -> CriterionResult:
    """The case's criterion result (outcome, evidence, missing data, reason) on ``engine``."""
    patient = parse_patient(apply_patch(base, case.get("patient", {})))
    as_of = case.get("as_of", as_of)
    if "trial" in case:
        trial_id, criterion_id = case["trial"], case["criterion"]
    else:
        criterion = {"id": "X", "kind": case.get("kind", "inclusion"), "text": case["name"], "rule": case["rule"]}
        if "applies_when" in case:
            criterion["applies_when"] = case["applies_when"]
        rules, trial_id, criterion_id = inline_ruleset(rules, [criterion]), "NCT99999999", "X"
    result = screen(patient, rules, as_of=as_of, trials=[trial_id], engine=engine)
    return next(c for c in result.results[0].criteria if c.id == criterion_id)
