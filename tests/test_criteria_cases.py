"""Every case in tests/cases/criteria.yaml, on every evaluator (one suite, parametrized over engines), and the
explaining evaluator's reason where a case pins one."""

from __future__ import annotations

import pytest

from .conftest import AS_OF, ENGINES, case_result, evaluate_case, load_cases

CASES = load_cases("criteria.yaml")
EXPLAINED = [c for c in CASES["cases"] if "reason" in c]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", CASES["cases"], ids=lambda c: f"{c.get('trial', 'inline')}-{c.get('criterion', '')}-{c['name']}")
def test_criterion_case(rules, case, engine):
    assert evaluate_case(rules, case, CASES["base"], CASES.get("as_of", AS_OF), engine) == case["expected"]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", EXPLAINED, ids=lambda c: f"{c.get('trial', 'inline')}-{c.get('criterion', '')}-{c['name']}")
def test_criterion_reason(rules, case, engine):
    """What a coordinator reads for the cases that pin it: the reason and the missing data."""
    result = case_result(rules, case, CASES["base"], CASES.get("as_of", AS_OF), engine)
    assert (result.reason, list(result.missing)) == (case["reason"], case.get("missing", []))


def test_every_nct04357600_criterion_has_met_not_met_and_unknown_cases(rules):
    covered = {(c["criterion"], c["expected"]) for c in CASES["cases"] if c.get("trial") == "NCT04357600"}
    for criterion in rules.trials["NCT04357600"].trial.criteria:
        for outcome in ("met", "not_met", "unknown"):
            assert (criterion.id, outcome) in covered, f"{criterion.id} has no {outcome} case"
    assert ("E4", "not_applicable") in covered
