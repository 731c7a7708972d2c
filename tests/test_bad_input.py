"""Bad rules files fail at load time naming file, criterion and problem; bad patients name the field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from screening import PatientDataError, RulesError, load_patient, load_rules, parse_patient, screen
from screening.errors import UnitError
from screening.jsontext import JsonProblem, decode_json

from .conftest import AS_OF, RULES_DIR

HEADER = """\
id: NCT00000001
title: Broken on purpose
version: "1"
source: {url: https://example.org/NCT00000001}
criteria:
"""

# (criteria YAML, expected criterion id, substrings of the problem, expected suggestion)
BAD_RULES = [
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: compare, fact: lab.bilirubn, op: '>', value: 2, unit: mg/dL}}",
     "I1", ["unknown fact 'lab.bilirubn'"], "lab.bilirubin"),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: compare, fact: lab.bilirubin, op: '>', value: 2, unit: mg/dx}}",
     "I1", ["lab.bilirubin", "mg/dx"], None),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: compare, fact: lab.bilirubin, op: '>', value: 2}}",
     "I1", ["needs a unit"], None),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: compare, fact: lab.albumin, op: '>', value: 2, unit: umol/L}}",
     "I1", ["cannot be converted"], None),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: compare, fact: age, op: '=>', value: 18}}",
     "I1", ["rule.compare.op"], ">="),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: compair, fact: age, op: '>=', value: 18}}",
     "I1", ["unknown expression type 'compair'"], "compare"),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: condition, codes: hepatitis_x}}",
     "I1", ["unknown code list 'hepatitis_x'"], "hepatitis_c"),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: condition, codes: hepatitis_b, timing: activ}}",
     "I1", ["timing"], "active"),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: range, fact: age, min: 18, mx: 65}}",
     "I1", ["unknown key 'mx'"], "max"),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: range, fact: age, min: 65, max: 18}}",
     "I1", ["above max"], None),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: is, fact: sex, value: femal}}",
     "I1", ["cannot be 'femal'"], "female"),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: is, fact: age, value: 'x'}}",
     "I1", ["is a number"], None),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: compare, fact: sex, op: '>', value: 1}}",
     "I1", ["is a category"], None),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: lab_result, analyte: hbsg, result: positive}}",
     "I1", ["unknown qualitative analyte"], "hbsag"),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: at_least, n: 3, of: [{type: is, fact: sex, value: male}]}}",
     "I1", ["at_least n=3"], None),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: all, of: []}}",
     "I1", ["rule.all.of"], None),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: is, fact: sex, value: male}}\n"
     "  - {id: E1, kind: exclusoin, text: t, rule: {type: is, fact: sex, value: male}}",
     "E1", ["kind"], "exclusion"),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: compare, fact: age, op: '>', value: 1, within: {days: 3}}}",
     "I1", ["takes no 'within' window"], None),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: medication, codes: hbv_antivirals, within: {days: 3, months: 1}, timing: within}}",
     "I1", ["exactly one of days"], None),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: compare, fact: age, op: '>', value: 1, unit: mg}}",
     "I1", ["unit 'mg' not allowed"], None),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: range, fact: lab.inr, min: 1.5, max: 1.5, min_inclusive: false, unit: '1'}}",
     "I1", ["accepts nothing"], None),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: imaging, finding: cirhosis}}",
     "I1", ["rule.imaging.finding"], "cirrhosis"),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: procedure, codes: tips, within: {years: 3000}}}",
     "I1", ["rule.procedure.within.years"], None),
    ("  - {id: I1, kind: inclusion, text: '  ', rule: {type: is, fact: sex, value: male}}",
     "I1", ["text: String should match pattern"], None),
    # YAML reads yes/no/true/false/on/off as booleans: never a number
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: compare, fact: age, op: '>=', value: yes}}",
     "I1", ["rule.compare.value: Value error, a number is needed, not True"], None),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: range, fact: age, min: 18, max: on}}",
     "I1", ["rule.range.max: Value error, a number is needed, not True"], None),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: procedure, codes: dialysis, within: {days: true}}}",
     "I1", ["rule.procedure.within.days: Value error, a number is needed, not True"], None),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: procedure, codes: dialysis, at_least: true}}",
     "I1", ["rule.procedure.at_least: Value error, a number is needed, not True"], None),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: at_least, n: yes, of: [{type: is, fact: sex, value: male}]}}",
     "I1", ["rule.at_least.n: Value error, a number is needed, not True"], None),
    # thresholds every engine can compare: durable_rules takes plain decimals only
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: compare, fact: age, op: '<', value: 1.0e+20}}",
     "I1", ["fact 'age': threshold 1e+20 is out of range"], None),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: compare, fact: lab.bilirubin, op: '>', value: 0.00001, unit: mg/dL}}",
     "I1", ["fact 'lab.bilirubin': threshold 1e-05 mg/dL is out of range"], None),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: range, fact: lab.bilirubin, min: 0, max: 0.001, unit: umol/L}}",
     "I1", ["threshold 0.001 umol/L (5.84795e-05 mg/dL) is out of range"], None),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: compare, fact: lab.inr, op: '>', value: 0.0001, unit: '1'}}",  # the bound itself: json writes 1e-04
     "I1", ["fact 'lab.inr': threshold 0.0001 is out of range"], None),
    ("  - {id: I1, kind: inclusion, text: t, rule: {type: compare, fact: lab.hbv_dna, op: '<', value: 1.0e+308, unit: 'k[IU]/mL'}}",
     "I1", ["threshold 1e+308 k[IU]/mL (inf [IU]/mL) is out of range"], None),
]


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    return target


@pytest.mark.parametrize(("criteria", "criterion", "problems", "suggestion"), BAD_RULES, ids=[p[2][0] for p in BAD_RULES])
def test_bad_rule_is_one_clear_error(rules_copy, criteria, criterion, problems, suggestion):
    path = rules_copy / "NCT00000001.yaml"
    path.write_text(HEADER + criteria + "\n")
    with pytest.raises(RulesError) as caught:
        load_rules(rules_copy)
    error = caught.value
    assert error.file == str(path)
    assert error.criterion == criterion
    for problem in problems:
        assert problem in error.problem
    assert error.suggestion == suggestion
    assert str(error).startswith(f"{path}: criterion {criterion}: ")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("id: [unclosed\n", "not valid YAML"),
        ("- just a list\n", "a rules file is a mapping"),
        (HEADER.replace("title: Broken on purpose\n", "title: a\ntitle: b\n") + "  - {id: I1, kind: inclusion, text: t, rule: {type: is, fact: sex, value: male}}\n", "duplicate key 'title'"),
        ("!!python/object/apply:os.system ['echo hi']\n", "not valid YAML"),
        (HEADER.replace("id: NCT00000001", "id: NCT00000002") + "  - {id: I1, kind: inclusion, text: t, rule: {type: is, fact: sex, value: male}}\n", "differs from the file name"),
        (HEADER + "  - {id: I1, kind: inclusion, text: t, rule: {type: is, fact: sex, value: male}}\n  - {id: I1, kind: inclusion, text: t, rule: {type: is, fact: sex, value: male}}\n", "duplicate criterion id"),
    ],
)
def test_bad_rules_file(rules_copy, text, problem):
    (rules_copy / "NCT00000001.yaml").write_text(text)
    with pytest.raises(RulesError, match=problem):
        load_rules(rules_copy)


@pytest.mark.parametrize(
    ("icd10", "problem"),
    [
        ("['not a code']", "not an ICD-10 code or range: 'not a code'"),
        ("['E10-E09']", "range 'E10-E09' is reversed (write E09-E10)"),
        ("['K74-K70']", "range 'K74-K70' is reversed (write K70-K74)"),
        ("['E10-E14', 'E12-E16']", "ranges 'E10-E14' and 'E12-E16' overlap"),
        ("['B20-B24', 'C00-C97', 'B24-B30']", "ranges 'B20-B24' and 'B24-B30' overlap"),
        ("['C00-C97', 'C50-C50']", "ranges 'C00-C97' and 'C50-C50' overlap"),
    ],
)
def test_bad_code_list(rules_copy, icd10, problem):
    path = rules_copy / "codelists" / "broken.yaml"
    path.write_text(f"id: broken\ntitle: x\ncodes: {{icd10: {icd10}}}\n")
    with pytest.raises(RulesError) as caught:
        load_rules(rules_copy)
    assert str(caught.value) == f"{path}: codes.icd10: Value error, {problem}"


def test_missing_rules_directory(tmp_path):
    with pytest.raises(RulesError, match="rules directory not found"):
        load_rules(tmp_path / "nope")


GOOD = {"id": "P", "birth_date": "1970-01-01", "sex": "male", "observations": [{"loinc": "1975-2", "value": 2.0, "unit": "mg/dL", "date": "2026-11-01"}]}


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"sex": "femal"}, "sex"),
        ({"birth_date": "1970-13-01"}, "birth_date"),
        ({"nickname": "x"}, "nickname"),
        ({"observations": [{"loinc": "1975-2", "value": 2.0, "date": "2026-11-01"}]}, "observations[0]"),
        ({"observations": [{"loinc": "1975-2", "value": float("nan"), "unit": "mg/dL", "date": "2026-11-01"}]}, "observations[0].value"),
        ({"observations": [{"loinc": "1975-2", "value": 2.0, "result": "positive", "unit": "mg/dL", "date": "2026-11-01"}]}, "observations[0]"),
        ({"conditions": [{"display": "no code"}]}, "conditions[0]"),
        ({"conditions": [{"icd10": "cirrhosis"}]}, "conditions[0].icd10"),
        ({"assessments": [{"name": "ascites_grade", "grade": 5, "date": "2026-11-01"}]}, "assessments[0]"),
        ({"medications": [{"name": "x", "start": "2026-01-02", "end": "2026-01-01"}]}, "medications[0]"),
        ({"id": ""}, "id"),
    ],
)
def test_bad_patient_names_the_field(patch, field):
    with pytest.raises(PatientDataError) as caught:
        parse_patient({**GOOD, **patch})
    assert caught.value.field == field


def test_bad_unit_names_the_observation(rules):
    patient = parse_patient({**GOOD, "observations": [{"loinc": "1975-2", "value": 2.0, "unit": "mg/dx", "date": "2026-11-01"}]})
    with pytest.raises(UnitError) as caught:
        screen(patient, rules, as_of=AS_OF)
    assert caught.value.field == "observations[0].unit"
    assert caught.value.patient_id == "P"


@pytest.mark.parametrize("unit", ["-", "umol/L^", "mg/dL/", "10*", "(", "mmol/L)", "nan", "inf", "-umol/L", "0*umol/L"])
def test_malformed_units_are_unit_errors_not_crashes(rules, unit):
    patient = parse_patient({**GOOD, "observations": [{"loinc": "1975-2", "value": 2.0, "unit": unit, "date": "2026-11-01"}]})
    with pytest.raises(UnitError):
        screen(patient, rules, as_of=AS_OF)


@pytest.mark.parametrize("unit", ["%", "mg/dL", "s"])
def test_a_unitless_ratio_takes_no_unit(rules, unit):
    patient = parse_patient({**GOOD, "observations": [{"loinc": "6301-6", "value": 1.2, "unit": unit, "date": "2026-11-01"}]})
    with pytest.raises(UnitError, match="unitless|cannot be converted"):
        screen(patient, rules, as_of=AS_OF)


@pytest.mark.parametrize("result", [{"value": -2.0}, {"value": 0.0, "comparator": "<"}])  # "< 0": no value is possible
def test_impossible_lab_value_names_the_field(rules, result):
    patient = parse_patient({**GOOD, "observations": [{"loinc": "1975-2", **result, "unit": "mg/dL", "date": "2026-11-01"}]})
    with pytest.raises(PatientDataError) as caught:
        screen(patient, rules, as_of=AS_OF)
    assert caught.value.field == "observations[0].value"


def test_a_screening_date_near_year_one_does_not_crash(rules):
    import datetime as dt

    result = screen(parse_patient({"id": "P"}), rules, as_of=dt.date(1, 1, 5))
    assert {t.verdict.value for t in result.results} == {"undetermined"}


def test_birth_after_screening_date_is_an_error(rules):
    with pytest.raises(PatientDataError, match="birth_date"):
        screen(parse_patient({**GOOD, "birth_date": "2027-01-01"}), rules, as_of=AS_OF)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"id": "P', "not valid JSON: Unterminated string starting at column 8"),  # a stream cut mid-line
        ("{", "not valid JSON: Expecting property name enclosed in double quotes at column 2"),
        ('{"id": 1 2}', "not valid JSON: Expecting ',' delimiter at column 10"),
        ('{}\n{}', "not valid JSON: Extra data at line 2 column 1"),
        (b"\xff", "not UTF-8 text"),
    ],
)
def test_json_problems_say_why_and_where_once(text, problem):
    with pytest.raises(JsonProblem) as raised:
        decode_json(text)
    assert str(raised.value) == problem


def test_unreadable_patient_files(tmp_path):
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes('{"id": "Jos\xe9"}'.encode("latin-1"))
    with pytest.raises(PatientDataError, match="not UTF-8"):
        load_patient(latin1)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    with pytest.raises(PatientDataError, match=r"bad.json: not valid JSON"):
        load_patient(bad_json)
    with pytest.raises(PatientDataError, match="cannot read"):
        load_patient(tmp_path / "missing.json")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)  # json recurses per nesting level
    with pytest.raises(PatientDataError, match=r"deep.json: not valid JSON: nested too deeply"):
        load_patient(deep)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({**GOOD, "sex": 3}))
    with pytest.raises(PatientDataError, match=r"wrong.json: patient P: field sex"):
        load_patient(wrong)


@pytest.mark.parametrize("score", ["meld", "meld_na", "meld_3"])
def test_zero_lab_values_give_a_meld_score_not_a_crash(rules, score):
    """A zero result (implausible, but a valid number) is scored at its input's domain edge."""
    from screening.facts.resolve import PatientFacts

    zeros = [{"loinc": loinc, "value": 0.0, "unit": unit, "date": "2026-11-01"}
             for loinc, unit in (("1975-2", "mg/dL"), ("2160-0", "mg/dL"), ("6301-6", "1"), ("2951-2", "mmol/L"), ("1751-7", "g/dL"))]
    patient = parse_patient({**GOOD, "procedures": [], "observations": zeros})
    facts = PatientFacts(patient, AS_OF, rules.trials["NCT04357600"].trial.defaults, rules.codelists)
    assert facts.number(score).interval.is_point


@pytest.mark.parametrize(("ask", "name", "problem"), [
    ("number", "sex", "fact 'sex' is a category, not a number"),
    ("number", "lab.bilirubn", "unknown fact 'lab.bilirubn'"),
    ("category", "age", "fact 'age' is a number, not a category"),
    ("category", "consnt", "unknown fact 'consnt'"),
])
def test_a_fact_asked_as_the_wrong_kind_is_named_by_both_resolvers(rules, ask, name, problem):
    """Rules are checked at load time; a direct caller of a resolver gets the fact's name, not a KeyError."""
    import pandas as pd

    from screening.cohort.cells import read_chunk
    from screening.cohort.columnar import ChunkFacts
    from screening.facts.resolve import PatientFacts

    defaults = rules.trials["NCT04357600"].trial.defaults
    patient = PatientFacts(parse_patient(GOOD), AS_OF, defaults, rules.codelists)
    chunk = ChunkFacts(read_chunk(pd.DataFrame({"id": ["P1"], "sex": ["female"]}), AS_OF), defaults, rules.codelists)
    for facts in (patient, chunk):
        with pytest.raises(ValueError, match=problem):
            facts.number(name, None) if ask == "number" else facts.category(name)
