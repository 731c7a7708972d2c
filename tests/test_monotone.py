"""Monotonicity under every kind of added information, not only whole items added.

``test_properties`` removes whole items (a field, a lab group, a history) from a complete profile.
Here a profile is coarsened in the other ways a profile can lack information, each consistent
with what the more complete one says (README, Semantics: what "filling in" covers):

- a numeric result censored (``< v``, ``>= v``...) around its value;
- a record's date left out, when it is on or before the screening date (an undated record is
  read as dated up to the screening date);
- a condition's abatement or a medication's end date left out, when the record's status says the
  same about the screening date (a non-active status: it ended before; an active one: after);
- an imaging study's findings not coded; a prothrombin time's control left out;
- a result older than the latest one of its analyte (or grade), or any record dated after the
  screening date, left out;
- and the whole items of ``test_properties`` (with dialysis sessions near the creatinine test,
  for the MELD family).

Every fact must then answer the coarser profile with a range (or set of values) that holds the
finer one's, every leaf decided on the coarser one must be decided alike, and criterion outcomes
and verdicts must be monotone on the seed trials and on generated rules.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from screening import parse_patient, screen
from screening.clinical.analytes import ANALYTE_BY_LOINC
from screening.evaluators.explain import evaluate
from screening.facts.catalog import FACTS
from screening.facts.resolve import PatientFacts
from screening.logic import CriterionKind, Outcome, fails
from screening.rules.model import Defaults, Trial

from .conftest import ENGINES, evaluate_case, load_cases
from .rule_strategies import LEAVES, ruleset_of, trials
from .strategies import AS_OF, REMOVABLE, patients, remove
from .test_properties import _check_monotone

SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
TODAY = AS_OF.isoformat()


def _days(n: int) -> str:
    return (AS_OF - dt.timedelta(days=n)).isoformat()


# -- a more complete profile ----------------------------------------------------------------------

dialysis_sessions = st.lists(st.sampled_from([0, 1, 2, 3, 6, 7, 8, 13, 20, 40]), min_size=2, max_size=3, unique=True).map(
    lambda days: [{"kind": "haemodialysis", "date": _days(d)} for d in days])


@st.composite
def fine_profiles(draw: st.DrawFn) -> dict[str, Any]:
    """A generated profile, sometimes with dialysis sessions (for the week before a creatinine
    test), a condition resolved after the screening date or a medication ending after it."""
    profile = copy.deepcopy(draw(st.one_of(patients(), patients(complete=True))))
    if profile.get("procedures") is not None and draw(st.booleans()):
        profile["procedures"] += draw(dialysis_sessions)
    for condition in profile.get("conditions") or ():
        resolved = (AS_OF + dt.timedelta(days=draw(st.sampled_from([1, 60])))).isoformat()
        if condition["status"] == "active" and condition.get("onset", "") <= resolved and draw(st.integers(0, 3)) == 0:
            condition["resolved"] = resolved
    for medication in profile.get("medications") or ():
        end = (AS_OF + dt.timedelta(days=draw(st.sampled_from([0, 1, 60])))).isoformat()
        if medication["status"] == "active" and "end" not in medication and medication["start"] <= end and draw(st.integers(0, 3)) == 0:
            medication["end"] = end
    return profile


# -- coarsening it, consistently -------------------------------------------------------------------


def _usable(obs: dict[str, Any]) -> bool:
    """A result the engine reads: numeric (a prothrombin time with its control) or qualitative."""
    return "result" in obs or obs["loinc"] != "5902-2" or "control" in obs


def _analyte(obs: dict[str, Any]) -> str | None:
    analyte = ANALYTE_BY_LOINC.get(obs["loinc"])
    return analyte.name if analyte else None


def _censor(obs: dict[str, Any], comparator: str, factor: float) -> dict[str, Any] | None:
    """``obs`` censored so that its value lies in the censored interval (None when it cannot be)."""
    value = obs["value"]
    bound = value * factor if comparator in ("<", "<=") else value / factor
    if comparator in ("<", ">") and bound == value:
        return None
    return {**obs, "comparator": comparator, "value": bound}


@st.composite
def coarsen(draw: st.DrawFn, profile: dict[str, Any]) -> dict[str, Any]:
    """``profile`` with less information, by a few of the ways listed in the module docstring."""
    out = copy.deepcopy(profile)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["item", "lab", "censor", "undate", "unend", "uncode", "control", "older", "later"]))
        if kind == "item":
            out = remove(out, [draw(st.sampled_from(REMOVABLE))])
        elif kind == "lab":  # the lab groups again, so that each is often missing
            out = remove(out, [draw(st.sampled_from([item for item in REMOVABLE if item.startswith("lab:")]))])
        elif kind == "censor":
            numeric = [i for i, o in enumerate(out.get("observations", [])) if "value" in o and "comparator" not in o]
            if numeric:
                i = draw(st.sampled_from(numeric))
                censored = _censor(out["observations"][i], draw(st.sampled_from(["<", "<=", ">", ">="])), draw(st.sampled_from([1.0, 1.05, 2.0])))
                if censored is not None:
                    out["observations"][i] = censored
        elif kind == "undate":
            dated = [(k, i, f) for k, f in (("procedures", "date"), ("conditions", "onset"), ("medications", "start"))
                     for i, r in enumerate(out.get(k) or ()) if r.get(f) and r[f] <= TODAY]
            if dated:
                k, i, f = draw(st.sampled_from(dated))
                del out[k][i][f]
        elif kind == "unend":  # the status then says when it ended: before the screening date, or after
            ended = [("conditions", i, "resolved") for i, c in enumerate(out.get("conditions") or ())
                     if c.get("resolved") and (c["resolved"] > TODAY) == (c["status"] in ("active", "recurrence", "relapse"))]
            ended += [("medications", i, "end") for i, m in enumerate(out.get("medications") or ())
                      if m.get("end") and (m["end"] >= TODAY) == (m["status"] == "active")]
            if ended:
                k, i, f = draw(st.sampled_from(ended))
                del out[k][i][f]
        elif kind == "uncode":
            coded = [i for i, s in enumerate(out.get("imaging", [])) if s.get("findings") is not None]
            if coded:
                out["imaging"][draw(st.sampled_from(coded))]["findings"] = None
        elif kind == "control":  # a prothrombin time without its control is no result: only the last one goes
            pts = [i for i, o in enumerate(out.get("observations", [])) if o["loinc"] == "5902-2" and "control" in o]
            if len(pts) == 1 and len([o for o in out["observations"] if o["loinc"] == "5902-2"]) == 1:
                del out["observations"][pts[0]]["control"]
        elif kind == "older":
            observations = out.get("observations", [])
            older = [i for i, o in enumerate(observations) if any(
                _analyte(n) == _analyte(o) and o["date"] < n["date"] <= TODAY and _usable(n) for n in observations)]
            assessments = out.get("assessments", [])
            older_grades = [i for i, a in enumerate(assessments) if any(
                b["name"] == a["name"] and a["date"] < b["date"] <= TODAY for b in assessments)]
            if older:
                observations.pop(draw(st.sampled_from(older)))
            elif older_grades:
                assessments.pop(draw(st.sampled_from(older_grades)))
        else:  # records after the screening date are ignored
            for key, field in (("observations", "date"), ("assessments", "date"), ("imaging", "date"),
                               ("procedures", "date"), ("conditions", "onset"), ("medications", "start")):
                if out.get(key):
                    out[key] = [r for r in out[key] if not (r.get(field) and r[field] > TODAY)]
    return out


pairs = fine_profiles().flatmap(lambda fine: st.tuples(coarsen(fine), st.just(fine)))

# -- the properties -------------------------------------------------------------------------------

_LEAF_RULES = [rule for rule in LEAVES if rule["type"] not in ("compare", "range")]  # number leaves: by interval below
_LEAF_NODES = Trial.model_validate({
    "id": "NCT99999999", "title": "t", "version": "0", "source": {"url": "u"},
    "criteria": [{"id": f"L{i}", "kind": "inclusion", "text": "t", "rule": rule} for i, rule in enumerate(_LEAF_RULES)],
}).criteria


def _facts(rules, profile: dict[str, Any]) -> PatientFacts:
    return PatientFacts(parse_patient(profile), AS_OF, Defaults(), rules.codelists)


@SETTINGS
@given(pair=pairs)
def test_every_fact_of_a_coarser_profile_holds_the_finer_answer(rules, pair):
    coarse, fine = (_facts(rules, p) for p in pair)
    for name, spec in FACTS.items():
        if spec.kind == "number":
            wide, narrow = coarse.number(name).interval, fine.number(name).interval
            assert narrow.within(wide), (name, wide, narrow)
        else:
            wide_set, narrow_set = coarse.category(name).possible, fine.category(name).possible
            assert narrow_set <= wide_set, (name, wide_set, narrow_set)
    for criterion in _LEAF_NODES:
        before = evaluate(criterion.rule, coarse).value
        if before is not None:
            assert evaluate(criterion.rule, fine).value is before, criterion.rule


@SETTINGS
@given(pair=pairs)
def test_filling_in_any_kind_of_information_never_changes_a_decided_outcome(rules, pair):
    coarse, fine = pair
    _check_monotone(screen(parse_patient(coarse), rules, as_of=AS_OF), screen(parse_patient(fine), rules, as_of=AS_OF))


@SETTINGS
@given(trial=trials(), pair=pairs)
def test_filling_in_any_kind_of_information_never_changes_a_decided_outcome_of_generated_rules(rules, trial, pair):
    generated = ruleset_of(rules, trial)
    coarse, fine = pair
    _check_monotone(screen(parse_patient(coarse), generated, as_of=AS_OF), screen(parse_patient(fine), generated, as_of=AS_OF))


# -- hand-picked pairs, on every engine ------------------------------------------------------------

REFINEMENTS = load_cases("refinements.yaml")["cases"]
BASE = load_cases("criteria.yaml")["base"]
EXCEPTIONS = {"newer result", "same-day conflict", "reviewed history", "undated record", "status without its date", "INR"}  # README, Semantics


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", REFINEMENTS, ids=lambda c: f"{c.get('trial', 'inline')}-{c.get('criterion', '')}-{c['name']}")
def test_refinement_case(rules, case, engine):
    coarse, fine = (evaluate_case(rules, {**case, "patient": case.get(side, {})}, BASE, AS_OF, engine) for side in ("coarse", "fine"))
    assert [coarse, fine] == case["expected"]
    if "exception" in case:
        assert case["exception"] in EXCEPTIONS
        return
    if "trial" in case:
        kind = next(c.kind for c in rules.trials[case["trial"]].trial.criteria if c.id == case["criterion"])
    else:
        kind = CriterionKind(case.get("kind", "inclusion"))
    if coarse != "unknown":
        passing = coarse == "not_applicable" or not fails(kind, Outcome(coarse))
        assert fine == coarse or (passing and fine == "not_applicable")
