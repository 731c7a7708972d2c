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

from screening import load_rules, parse_patient
from screening.evaluators.explain import evaluate_criterion
from screening.facts.resolve import PatientFacts
from screening.rules.loader import RuleSet
from screening.rules.model import Criterion, Defaults

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


def evaluate_case(rules: RuleSet, case: dict[str, Any], base: dict[str, Any], as_of: dt.date) -> str:
    """Outcome of the case's criterion (a trial's criterion by id, or an inline rule)."""
    patient = parse_patient(apply_patch(base, case.get("patient", {})))
    as_of = case.get("as_of", as_of)
    if "trial" in case:
        loaded = rules.trials[case["trial"]]
        criterion = next(c for c in loaded.trial.criteria if c.id == case["criterion"])
        defaults = loaded.trial.defaults
    else:
        criterion = Criterion.model_validate({"id": "X", "kind": case.get("kind", "inclusion"), "text": case["name"], "rule": case["rule"],
                                              **({"applies_when": case["applies_when"]} if "applies_when" in case else {})})
        defaults = Defaults()
    facts = PatientFacts(patient, as_of, defaults, rules.codelists)
    return evaluate_criterion(criterion, facts).outcome.value
