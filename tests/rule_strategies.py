"""Hypothesis strategies for rule expressions and trials built from them."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from screening.rules.loader import LoadedTrial, RuleSet, rules_hash
from screening.rules.model import Trial

LEAVES: list[dict[str, Any]] = [
    {"type": "range", "fact": "age", "min": 18, "max": 65},
    {"type": "compare", "fact": "age", "op": "!=", "value": 65},
    {"type": "compare", "fact": "lab.bilirubin", "op": ">=", "value": 2, "unit": "mg/dL"},
    {"type": "compare", "fact": "lab.bilirubin", "op": "<", "value": 51.3, "unit": "umol/L"},
    {"type": "range", "fact": "lab.creatinine", "min": 1.0, "max": 4.0, "min_inclusive": False, "unit": "mg/dL"},
    {"type": "compare", "fact": "lab.albumin", "op": "<=", "value": 28, "unit": "g/L"},
    {"type": "compare", "fact": "lab.sodium", "op": "==", "value": 137, "unit": "mmol/L"},
    {"type": "is", "fact": "child_pugh.class", "value": "B"},
    {"type": "is", "fact": "child_pugh.class", "values": ["A", "B"]},
    {"type": "range", "fact": "child_pugh.score", "min": 7, "max": 9},
    {"type": "compare", "fact": "child_pugh.points.albumin", "op": "==", "value": 3},
    {"type": "compare", "fact": "child_pugh.points.inr", "op": ">=", "value": 2},
    {"type": "compare", "fact": "meld", "op": ">=", "value": 15},
    {"type": "compare", "fact": "meld_na", "op": "<", "value": 20},
    {"type": "compare", "fact": "meld_3", "op": ">", "value": 18},
    {"type": "compare", "fact": "assessment.ascites_grade", "op": ">=", "value": 1},
    {"type": "compare", "fact": "assessment.encephalopathy_grade", "op": ">=", "value": 2, "within": {"days": 30}},
    {"type": "is", "fact": "sex", "value": "female"},
    {"type": "is", "fact": "consent", "values": ["consented", "not_asked"]},
    {"type": "is", "fact": "lactating", "value": True},
    {"type": "is", "fact": "childbearing_potential", "value": True},
    {"type": "is", "fact": "pregnant", "value": False},
    {"type": "is", "fact": "dialysis", "value": True},
    {"type": "lab_result", "analyte": "hbsag", "result": "positive", "within": {"years": 1}},
    {"type": "lab_result", "analyte": "hcg", "result": "negative", "within": {"days": 30}},
    {"type": "condition", "codes": "hepatitis_b", "timing": "active"},
    {"type": "condition", "codes": "malignant_neoplasm", "timing": "ever"},
    {"type": "condition", "codes": "diabetes_mellitus", "timing": "within", "within": {"years": 2}},
    {"type": "medication", "codes": "hbv_antivirals", "timing": "active"},
    {"type": "medication", "codes": "hbv_antivirals", "timing": "within", "within": {"months": 6}},
    {"type": "medication", "codes": "hbv_antivirals", "timing": "ever"},
    {"type": "procedure", "codes": "organ_transplant_procedure"},
    {"type": "procedure", "codes": "dialysis", "within": {"days": 7}, "at_least": 2},
    {"type": "imaging", "finding": "cirrhosis", "modality": ["ultrasound"]},
    {"type": "imaging", "finding": "ascites", "within": {"months": 3}},
]

leaves = st.sampled_from(LEAVES)


def _extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    operands = st.lists(children, min_size=1, max_size=3)
    return st.one_of(
        operands.map(lambda of: {"type": "all", "of": of}),
        operands.map(lambda of: {"type": "any", "of": of}),
        children.map(lambda e: {"type": "not", "of": e}),
        operands.flatmap(lambda of: st.integers(1, len(of)).map(lambda n: {"type": "at_least", "n": n, "of": of})),
    )


expressions = st.recursive(leaves, _extend, max_leaves=6)


@st.composite
def criteria(draw: st.DrawFn, index: int) -> dict[str, Any]:
    out = {"id": f"C{index}", "kind": draw(st.sampled_from(["inclusion", "exclusion"])), "text": f"generated {index}", "rule": draw(expressions)}
    if draw(st.integers(0, 3)) == 0:
        out["applies_when"] = draw(expressions)
    return out


@st.composite
def trials(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 4))
    return {
        "id": "NCT99999999",
        "title": "generated",
        "version": "0",
        "source": {"url": "https://example.org"},
        "criteria": [draw(criteria(i)) for i in range(n)],
    }


def ruleset_of(rules: RuleSet, trial_data: dict[str, Any]) -> RuleSet:
    trial = Trial.model_validate(trial_data)
    loaded = LoadedTrial(trial, "<generated>", rules_hash(trial, rules.codelists))
    return RuleSet({trial.id: loaded}, rules.codelists, "<generated>")
