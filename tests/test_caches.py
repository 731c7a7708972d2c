"""The speed-ups of the per-patient path: every cache keys on all its answer depends on, and
results built without validation are the same as validated ones."""

from __future__ import annotations

import datetime as dt

import pytest

from screening import parse_patient, screen
from screening.facts.resolve import PatientFacts
from screening.results import CriterionResult, Evidence, ScreeningResult, TrialResult
from screening.rules.model import Defaults, Timing, Window

from .conftest import AS_OF

PROFILE = {
    "id": "C1",
    "birth_date": "1970-01-01",
    "conditions": [
        {"icd10": "B18.1", "onset": "2020-01-01"},
        {"icd10": "C22.0", "onset": "2026-10-01"},
        {"icd10": "K74.6", "onset": "2026-10-01", "status": "resolved", "resolved": "2026-11-01"},
    ],
    "medications": [],
    "procedures": [],
    "observations": [
        {"loinc": "6301-6", "value": 1.2, "unit": "1", "date": "2026-11-20"},
        {"loinc": "6301-6", "value": 2.5, "unit": "1", "date": "2026-06-01"},
        {"loinc": "14631-6", "value": 34.2, "unit": "umol/L", "date": "2026-11-20"},
        {"loinc": "14682-9", "value": 1.0, "unit": "mg/dL", "date": "2026-11-20"},
        {"loinc": "14682-9", "value": 88.4, "unit": "umol/L", "date": "2026-11-19"},
    ],
}


@pytest.fixture()
def facts(rules) -> PatientFacts:
    return PatientFacts(parse_patient(PROFILE), AS_OF, Defaults(), rules.codelists)


def test_shared_facts_answer_under_each_trials_default_windows(facts):
    short = facts.with_defaults(Defaults(lab_within=Window(days=30)))
    long = facts.with_defaults(Defaults(lab_within=Window(days=365)))
    assert facts.with_defaults(facts.defaults) is facts
    # the long window sees the same latest INR; a window ending before it sees none
    assert short.number("lab.inr").interval.low == long.number("lab.inr").interval.low == 1.2
    assert facts.number("lab.inr", Window(days=1)).missing
    early = PatientFacts(facts.profile, dt.date(2026, 10, 1), Defaults(lab_within=Window(days=365)), facts.codelists)
    assert early.number("lab.inr").interval.low == 2.5
    # Child-Pugh and its class follow the default windows, not the first trial that asked
    assert short.number("child_pugh.score").missing == ("Albumin (last 30 days)", "Ascites grade (last 90 days)", "Encephalopathy grade (last 90 days)")
    assert long.number("child_pugh.score").missing[0] == "Albumin (last 365 days)"
    assert short.category("child_pugh.class").missing[0] == "Albumin (last 30 days)"
    assert long.category("child_pugh.class").missing[0] == "Albumin (last 365 days)"
    none_recent = facts.with_defaults(Defaults(lab_within=Window(days=1), assessment_within=Window(days=1)))
    assert none_recent.number("child_pugh.score").interval != short.number("child_pugh.score").interval


def test_record_answers_key_on_code_list_timing_and_window(facts):
    assert facts.condition("hepatitis_b", Timing.ACTIVE, None).value is True
    assert facts.condition("hepatocellular_carcinoma", Timing.ACTIVE, None).value is True
    assert facts.condition("hiv", Timing.EVER, None).value is False
    assert facts.condition("liver_cirrhosis", Timing.EVER, None).value is True
    assert facts.condition("liver_cirrhosis", Timing.ACTIVE, None).value is False
    assert facts.condition("liver_cirrhosis", Timing.WITHIN, Window(days=30)).value is True
    assert facts.condition("liver_cirrhosis", Timing.WITHIN, Window(days=10)).value is False


def test_a_result_asked_about_by_several_questions_has_one_evidence(rules):
    hbsag = {"loinc": "5196-1", "result": "positive", "date": "2026-11-20"}
    facts = PatientFacts(parse_patient({**PROFILE, "observations": [*PROFILE["observations"], hbsag]}), AS_OF, Defaults(), rules.codelists)
    positive, negative = facts.lab_result("hbsag", True, Window(days=365)), facts.lab_result("hbsag", False, Window(days=30))
    assert (positive.value, negative.value) == (True, False)
    assert positive.evidence[0] is negative.evidence[0]
    assert facts.number("lab.inr", Window(days=365)).evidence[0] is facts.number("lab.inr", Window(days=30)).evidence[0]


def test_code_list_matches_are_remembered_per_list_and_code(rules):
    hepatitis_b, cancer = rules.codelists["hepatitis_b"], rules.codelists["malignant_neoplasm"]
    for _ in range(2):
        assert hepatitis_b.matches_icd10("B18.1") and hepatitis_b.matches_icd10("b181")
        assert not hepatitis_b.matches_icd10("C22.0")
        assert cancer.matches_icd10("C22.0") and not cancer.matches_icd10("B18.1")
        assert not cancer.matches_icd10(None) and not cancer.matches_icd10("")


CONDITION_CODES = [("B18.1", None), ("b181", None), ("C22.0", None), ("K74.60", None), ("=I85.0", None), ("C50.9", None),
                   (None, "66071002"), (None, "1234"), ("Z99.9", "66071002"), (None, None)]
MEDICATION_CODES = [(("Baraclude 0.5 mg",), None, None), (("Vemlidy",), None, None), (("metformin",), "A10BA02", None),
                    (("x",), "J05AF10", None), (("x",), None, "197361"), (("Truvada", "emtricitabine", "tenofovir"), None, None)]
PROCEDURE_CODES = [("liver_transplant", None, None), (None, "snomed", "18027006"), (None, "icd10", "Z94.4"), ("haemodialysis", None, None),
                   (None, "snomed", "1"), (None, None, None)]


def test_a_records_code_lists_are_those_each_list_matches(rules):
    """The reverse lookup (every list a record belongs to, remembered per code) gives what asking
    each list in turn gives, and is asked again from the memo."""
    codelists = rules.codelists
    for _ in range(2):
        for icd10, snomed in CONDITION_CODES:
            expected = {i for i, cl in codelists.items() if cl.matches_icd10(icd10) or cl.matches_snomed(snomed)}
            assert set(codelists.for_condition(icd10, snomed)) == expected, (icd10, snomed)
        for names, atc, rxnorm in MEDICATION_CODES:
            expected = {i: cl.matches_name(names) or True for i, cl in codelists.items()
                        if cl.matches_name(names) or cl.matches_atc(atc) or cl.matches_rxnorm(rxnorm)}
            assert codelists.for_medication(names, atc, rxnorm) == expected, names
        for kind, system, code in PROCEDURE_CODES:
            expected = {i for i, cl in codelists.items() if cl.matches_kind(kind) or (code is not None and (
                (system == "snomed" and cl.matches_snomed(code)) or (system == "icd10" and cl.matches_icd10(code))))}
            assert set(codelists.for_procedure(kind, system, code)) == expected, (kind, code)
    assert any(codelists.for_condition(icd10, snomed) for icd10, snomed in CONDITION_CODES)  # the table is not all misses
    assert any(codelists.for_procedure(*codes) for codes in PROCEDURE_CODES)
    assert any(isinstance(hit, str) for codes in MEDICATION_CODES for hit in codelists.for_medication(*codes).values())
    assert any(hit is True for codes in MEDICATION_CODES for hit in codelists.for_medication(*codes).values())


def test_code_lists_pickle_without_their_memo_and_plain_mappings_still_work(rules, facts):
    import pickle

    from screening.rules.codelists import CodeLists

    rules.codelists.for_condition("B18.1", None)
    copied = pickle.loads(pickle.dumps(rules.codelists))
    assert isinstance(copied, CodeLists) and copied == rules.codelists and not copied._matched
    plain = PatientFacts(facts.profile, AS_OF, Defaults(), dict(rules.codelists))
    for codes in ("hepatitis_b", "hepatocellular_carcinoma", "hiv", "liver_cirrhosis"):
        assert plain.condition(codes, Timing.EVER, None) == facts.condition(codes, Timing.EVER, None)


def test_code_lists_used_pickle_as_loaded(rules):
    """Each list's own derived state (compiled patterns, the ICD-10 codes it has matched, one
    entry per distinct code seen) stays behind too: Dask and worker processes receive the lists
    as loaded, however many records this process has matched against them."""
    import pickle

    from screening.rules.loader import load_codelists

    from .conftest import RULES_DIR

    fresh = load_codelists(RULES_DIR)
    as_loaded = len(pickle.dumps(fresh))
    for i in range(500):
        fresh.for_condition(f"K{i % 100:02d}.{i // 100}", None)
        fresh.for_medication((f"drug {i}",), None, None)
    copied = pickle.loads(pickle.dumps(fresh))
    assert len(pickle.dumps(fresh)) == as_loaded
    assert all(set(vars(codelist)) == set(type(codelist).model_fields) for codelist in copied.values())
    assert copied == fresh and "hepatitis_b" in copied.for_condition("B18.1", None)


def test_the_code_list_memo_is_bounded(rules, monkeypatch):
    from screening.rules import codelists as module

    monkeypatch.setattr(module, "_MATCH_MEMO_LIMIT", 3)
    lists = module.CodeLists(rules.codelists)
    for i in range(10):
        lists.for_condition(f"Z{i:02d}", None)
        assert len(lists._matched) == i % 3 + 1  # remembered up to the bound, then started over
    assert "hepatitis_b" in lists.for_condition("B18.1", None)


def test_each_lists_icd10_memo_is_bounded_too(rules, monkeypatch):
    """The reverse lookup's bound holds only if what it asks is bounded as well: each list
    remembers the ICD-10 codes it has matched, one entry per distinct code as recorded."""
    from screening.rules import codelists as module

    monkeypatch.setattr(module, "_MATCH_MEMO_LIMIT", 3)
    hepatitis_b = module.CodeList.model_validate(rules.codelists["hepatitis_b"].model_dump())
    for i in range(10):
        assert not hepatitis_b.matches_icd10(f"Z{i:02d}")
        assert len(hepatitis_b._icd10_matched) == i % 3 + 1
    assert hepatitis_b.matches_icd10("B18.1") and hepatitis_b.matches_icd10("b181")


def test_same_patient_same_result_at_other_dates_and_trial_selections(rules):
    patient = parse_patient(PROFILE)
    both = screen(patient, rules, as_of=AS_OF)
    for result in both.results:
        alone = screen(patient, rules, as_of=AS_OF, trials=[result.trial_id])
        assert alone.results == (result,)
    earlier = screen(patient, rules, as_of=dt.date(2026, 6, 2))
    assert earlier.model_dump_json() != both.model_dump_json()


EVIDENCE = {"fact": "child_pugh.score", "label": "Child-Pugh score", "low": 7.0, "high": 9.0,
            "parts": (Evidence(fact="lab.inr", label="INR", value=1.2, date=AS_OF, points=1),)}


@pytest.mark.parametrize(
    ("model", "values"),
    [
        (Evidence, EVIDENCE),
        (Evidence, {"fact": "age", "label": "Age", "value": 56, "unit": "a", "source": "birth_date: 1970-01-01"}),
        (Evidence, {"fact": "pregnant", "label": "Pregnant", "value": False, "source": "pregnant"}),
        (CriterionResult, {"id": "I1", "kind": "inclusion", "text": "t", "outcome": "met", "reason": "Met: x.",
                           "evidence": (Evidence(**EVIDENCE),)}),
        (TrialResult, {"trial_id": "NCT00000001", "title": "t", "rules_version": "1", "rules_hash": "sha256:0",
                       "verdict": "eligible", "criteria": ()}),
        (ScreeningResult, {"patient_id": "P", "as_of": AS_OF, "engine_version": "0", "results": ()}),
    ],
)
def test_trusted_results_equal_validated_ones(model, values):
    validated = model(**values)
    typed = {name: getattr(validated, name) for name in values}  # the declared types, as evaluators pass them
    trusted = model.trusted(**typed)
    assert trusted == validated
    assert trusted.model_dump_json() == validated.model_dump_json()
    assert trusted.model_fields_set == validated.model_fields_set
    assert repr(trusted) == repr(validated)


def test_replaced_equals_model_copy():
    evidence = Evidence(**EVIDENCE)
    replaced, copied = evidence.replaced(points=2), evidence.model_copy(update={"points": 2})
    assert replaced == copied and replaced.model_dump_json() == copied.model_dump_json()
    assert replaced.model_fields_set == copied.model_fields_set
    assert evidence.points is None


def test_compiled_criteria_are_per_criterion_object(facts, monkeypatch):
    from screening.evaluators import explain
    from screening.rules.model import Criterion

    def age_at_least(years: int) -> Criterion:
        return Criterion.model_validate({"id": "I1", "kind": "inclusion", "text": "adult",
                                         "rule": {"type": "compare", "fact": "age", "op": ">=", "value": years}})

    monkeypatch.setattr(explain, "_COMPILED_LIMIT", 2)
    for _ in range(2):  # the third criterion clears the memo; answers never mix
        assert explain.evaluate_criterion(age_at_least(18), facts).outcome.value == "met"
        assert explain.evaluate_criterion(age_at_least(80), facts).outcome.value == "not_met"
        assert explain.evaluate_criterion(age_at_least(56), facts).reason == "Met: Age is 56 years, which meets >= 56."
