"""FHIR R4 input (screening/fhir): mapping tables, open-world reading, errors, the Synthea bundles,
the bulk export, and the example bundles that must screen exactly like their native twins."""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from screening import PatientDataError, load_patient, screen
from screening.cli import app
from screening.cohort import read_cohort, screen_cohort
from screening.fhir import MappedProfile, WarningCode, bundle_to_profile, read_bulk_export
from screening.fhir.mapping import HANDLERS, REFERENCED_ONLY
from screening.fhir.parse import MAPPED_RESOURCE_TYPES
from screening.patient.io import load_patient_with_warnings

from .conftest import AS_OF, ROOT

SHARED = Path(__file__).resolve().parents[2] / "shared"
SYNTHETIC = SHARED / "data" / "fhir-synthetic"
needs_shared = pytest.mark.skipif(not SYNTHETIC.is_dir(), reason=f"shared synthetic FHIR data not found at {SYNTHETIC}")

PROJECT = "https://github.com/trial-screening/codes"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
ATC = "http://www.whocc.no/atc"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"

PATIENT = {"resourceType": "Patient", "id": "T1", "identifier": [{"system": "urn:example:mrn", "value": "M-1"}],
           "gender": "female", "birthDate": "1980-02-03"}
SUBJECT = {"reference": "Patient/T1"}
WHEN = "2026-11-10T08:00:00+07:00"


def bundle(*resources: dict, patient: dict | None = PATIENT) -> dict:
    entries = ([{"resource": patient}] if patient else []) + [{"resource": r} for r in resources]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def concept(system: str | None, code: str | None, text: str | None = None, display: str | None = None) -> dict:
    coding = {k: v for k, v in (("system", system), ("code", code), ("display", display)) if v}
    return {k: v for k, v in (("coding", [coding] if coding else None), ("text", text)) if v}


def qty(value: Any, code: str | None = None, system: str | None = UCUM, **extra: Any) -> dict:
    out = {"value": value, **extra}
    if code:
        out["code"] = code
        if system:
            out["system"] = system
    return out


def obs(code: str, system: str = LOINC, rid: str = "o1", when: str | None = WHEN, **fields: Any) -> dict:
    res = {"resourceType": "Observation", "id": rid, "status": "final", "code": concept(system, code), "subject": SUBJECT}
    if when:
        res["effectiveDateTime"] = when
    return {**res, **fields}


def condition(*codings: tuple[str, str], rid: str = "c1", clinical: str | None = "active", verification: str | None = None,
              **fields: Any) -> dict:
    res = {"resourceType": "Condition", "id": rid, "code": {"coding": [{"system": s, "code": c} for s, c in codings]}, "subject": SUBJECT}
    if clinical:
        res["clinicalStatus"] = concept("http://terminology.hl7.org/CodeSystem/condition-clinical", clinical)
    if verification:
        res["verificationStatus"] = concept("http://terminology.hl7.org/CodeSystem/condition-ver-status", verification)
    return {**res, **fields}


def statement(name: str | None = "Baraclude 0.5 mg", *codings: tuple[str, str], rid: str = "m1", status: str = "active", **fields: Any) -> dict:
    med = {"coding": [{"system": s, "code": c} for s, c in codings]} if codings else {}
    if name:
        med["text"] = name
    return {"resourceType": "MedicationStatement", "id": rid, "status": status, "medicationCodeableConcept": med, "subject": SUBJECT, **fields}


def request(name: str, *codings: tuple[str, str], rid: str = "r1", status: str = "active", intent: str = "order", **fields: Any) -> dict:
    med = {"coding": [{"system": s, "code": c} for s, c in codings], "text": name}
    return {"resourceType": "MedicationRequest", "id": rid, "status": status, "intent": intent, "medicationCodeableConcept": med,
            "subject": SUBJECT, **fields}


def by_reference(medication: dict) -> dict:
    return {**{k: v for k, v in request("").items() if k != "medicationCodeableConcept"}, "medicationReference": medication}


def procedure(*codings: tuple[str, str], rid: str = "p1", status: str = "completed", **fields: Any) -> dict:
    return {"resourceType": "Procedure", "id": rid, "status": status, "code": {"coding": [{"system": s, "code": c} for s, c in codings]},
            "subject": SUBJECT, **fields}


def report(*findings: tuple[str, str], rid: str = "d1", category: tuple[str, str] | None = (DICOM, "US"), **fields: Any) -> dict:
    res = {"resourceType": "DiagnosticReport", "id": rid, "status": "final", "code": {"text": "US abdomen"}, "subject": SUBJECT,
           "effectiveDateTime": WHEN}
    if category:
        res["category"] = [concept(*category)]
    if findings:
        res["conclusionCode"] = [concept(s, c) for s, c in findings]
    return {**res, **fields}


def consent(status: str = "active", scope: str = "research", rid: str = "k1", when: str = WHEN, **fields: Any) -> dict:
    return {"resourceType": "Consent", "id": rid, "status": status, "scope": concept("http://terminology.hl7.org/CodeSystem/consentscope", scope),
            "category": [{"text": "Research consent"}], "patient": SUBJECT, "dateTime": when, **fields}


def history_list(code: tuple[str, str], rid: str = "l1", empty: str | None = "nilknown", entries: list | None = None, status: str = "current") -> dict:
    res = {"resourceType": "List", "id": rid, "status": status, "mode": "snapshot", "code": concept(*code), "subject": SUBJECT}
    if empty:
        res["emptyReason"] = concept("http://terminology.hl7.org/CodeSystem/list-empty-reason", empty)
    if entries:
        res["entry"] = [{"item": {"reference": r}} for r in entries]
    return res


def warned(mapped) -> list[tuple[str, str | None, bool]]:
    return [(w.code.value, w.resource_type, w.skipped) for w in mapped.warnings]


def dumped(value: Any) -> Any:
    if isinstance(value, list):
        return [v.model_dump(mode="json", exclude_defaults=True) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value.value if hasattr(value, "value") else value


@dataclass
class Case:
    id: str
    resources: list[dict]
    expect: dict[str, Any]  # profile field -> expected value (lists as dumps without defaults)
    warnings: list[tuple[str, str | None, bool]] = field(default_factory=list)


def W(code: str, rtype: str, skipped: bool = True) -> tuple[str, str, bool]:
    return (code, rtype, skipped)


LAB = "2026-11-10"
CASES = [
    # -- labs: units, censoring, missing and bad codings ---------------------------------------------
    Case("lab-si-unit", [obs("14631-6", valueQuantity=qty(40, "umol/L"))],
         {"observations": [{"loinc": "14631-6", "value": 40.0, "unit": "umol/L", "date": LAB}]}),
    Case("lab-conventional-unit", [{**obs("1975-2", valueQuantity=qty(2.3, "mg/dL")), "code": concept(LOINC, "1975-2", text="Bilirubin total")}],
         {"observations": [{"loinc": "1975-2", "display": "Bilirubin total", "value": 2.3, "unit": "mg/dL", "date": LAB}]}),
    Case("lab-censored-below", [obs("29615-2", valueQuantity=qty(20, "[IU]/mL", comparator="<"))],
         {"observations": [{"loinc": "29615-2", "value": 20.0, "unit": "[IU]/mL", "comparator": "<", "date": LAB}]}),
    Case("lab-censored-above", [obs("1975-2", valueQuantity=qty(30, "mg/dL", comparator=">="))],
         {"observations": [{"loinc": "1975-2", "value": 30.0, "unit": "mg/dL", "comparator": ">=", "date": LAB}]}),
    Case("lab-comparator-ad", [obs("1975-2", valueQuantity=qty(3, "mg/dL", comparator="ad"))],
         {"observations": []}, [W("unmappable_value", "Observation")]),
    Case("lab-unit-text-without-code", [obs("14631-6", valueQuantity={"value": 40, "unit": "umol/L"})],
         {"observations": []}, [W("no_ucum_unit", "Observation")]),
    Case("lab-unit-in-other-system", [obs("14631-6", valueQuantity=qty(40, "UMOLL", system="urn:lab:units"))],
         {"observations": []}, [W("no_ucum_unit", "Observation")]),
    Case("lab-unit-code-without-system", [obs("14631-6", valueQuantity=qty(40, "umol/L", system=None))],
         {"observations": [{"loinc": "14631-6", "value": 40.0, "unit": "umol/L", "date": LAB}]}, [W("assumption", "Observation", False)]),
    Case("lab-unit-not-convertible", [obs("1975-2", valueQuantity=qty(2, "mg"))],
         {"observations": []}, [W("unit_not_convertible", "Observation")]),
    Case("inr-without-unit", [obs("6301-6", valueQuantity={"value": 1.4})],
         {"observations": [{"loinc": "6301-6", "value": 1.4, "unit": "1", "date": LAB}]}),
    Case("platelets-10*3/uL", [obs("777-3", valueQuantity=qty(96, "10*3/uL"))],
         {"observations": [{"loinc": "777-3", "value": 96.0, "unit": "10*3/uL", "date": LAB}]}),
    Case("pt-with-control", [obs("5902-2", valueQuantity=qty(16, "s"), component=[
        {"code": concept(PROJECT, "prothrombin_time_control"), "valueQuantity": qty(11.5, "s")}])],
         {"observations": [{"loinc": "5902-2", "value": 16.0, "unit": "s", "control": 11.5, "date": LAB}]}),
    Case("lab-data-absent", [obs("1975-2", dataAbsentReason=concept("http://terminology.hl7.org/CodeSystem/data-absent-reason", "error"))],
         {"observations": []}, [W("no_value", "Observation")]),
    *[Case(f"{name}-without-value{'-with-reason' if reason else ''}", [obs(code, system, **({"dataAbsentReason": reason} if reason else {}))],
           {}, [W("no_value", "Observation")])
      for name, code, system in [("qualitative", "5196-1", LOINC), ("assessment", "ascites_grade", PROJECT),
                                 ("pregnancy-status", "82810-3", LOINC), ("childbearing-potential", "childbearing_potential", PROJECT)]
      for reason in [None, concept("http://terminology.hl7.org/CodeSystem/data-absent-reason", "asked-unknown")]],
    Case("lab-text-for-numeric-analyte", [obs("1975-2", valueString="high")], {"observations": []}, [W("unmappable_value", "Observation")]),
    Case("unknown-loinc", [obs("29463-7", valueQuantity=qty(70, "kg"))], {"observations": []}, [W("unknown_code", "Observation")]),
    Case("no-loinc-coding", [obs("BILI", system="urn:lab:local", valueQuantity=qty(2, "mg/dL"))],
         {"observations": []}, [W("unknown_code", "Observation")]),
    Case("no-coding-at-all", [{**obs("x"), "code": {"text": "bilirubin"}, "valueQuantity": qty(2, "mg/dL")}],
         {"observations": []}, [W("unknown_code", "Observation")]),
    Case("lab-entered-in-error", [obs("1975-2", status="entered-in-error", valueQuantity=qty(2, "mg/dL"))],
         {"observations": []}, [W("status_excluded", "Observation")]),
    Case("lab-cancelled", [obs("1975-2", status="cancelled")], {"observations": []}, [W("status_excluded", "Observation")]),
    Case("lab-preliminary-kept", [obs("1975-2", status="preliminary", valueQuantity=qty(2, "mg/dL"))],
         {"observations": [{"loinc": "1975-2", "value": 2.0, "unit": "mg/dL", "date": LAB}]}),
    Case("lab-no-date", [obs("1975-2", when=None, valueQuantity=qty(2, "mg/dL"))], {"observations": []}, [W("no_date", "Observation")]),
    Case("lab-partial-date", [obs("1975-2", when="2026-11", valueQuantity=qty(2, "mg/dL"))],
         {"observations": [{"loinc": "1975-2", "value": 2.0, "unit": "mg/dL", "date": "2026-11-01"}]}, [W("partial_date", "Observation", False)]),
    Case("lab-date-in-its-own-offset", [obs("1975-2", when="2026-11-10T23:30:00-05:00", valueQuantity=qty(2, "mg/dL"))],
         {"observations": [{"loinc": "1975-2", "value": 2.0, "unit": "mg/dL", "date": "2026-11-10"}]}),
    Case("lab-effective-period", [obs("1975-2", when=None, effectivePeriod={"start": "2026-11-09"}, valueQuantity=qty(2, "mg/dL"))],
         {"observations": [{"loinc": "1975-2", "value": 2.0, "unit": "mg/dL", "date": "2026-11-09"}]}),
    Case("lab-other-patient", [obs("1975-2", subject={"reference": "Patient/someone-else"}, valueQuantity=qty(2, "mg/dL"))],
         {"observations": []}, [W("other_patient", "Observation")]),
    Case("lab-subject-by-conditional-identifier", [obs("1975-2", subject={"reference": "Patient?identifier=urn:example:mrn|M-1"},
                                                       valueQuantity=qty(2, "mg/dL"))],
         {"observations": [{"loinc": "1975-2", "value": 2.0, "unit": "mg/dL", "date": LAB}]}),
    # -- qualitative results ---------------------------------------------------------------------
    *[Case(f"qualitative-snomed-{code}", [obs("5196-1", valueCodeableConcept=concept(SNOMED, code))],
           {"observations": [{"loinc": "5196-1", "result": result, "date": LAB}]})
      for code, result in [("10828004", "positive"), ("260385009", "negative"), ("260373001", "detected"),
                           ("260415000", "not_detected"), ("11214006", "reactive"), ("131194007", "nonreactive"),
                           ("82334004", "indeterminate")]],
    Case("qualitative-loinc-answer", [obs("2106-3", valueCodeableConcept=concept(LOINC, "LA6577-6"))],
         {"observations": [{"loinc": "2106-3", "result": "negative", "date": LAB}]}),
    Case("qualitative-concept-text", [obs("5196-1", valueCodeableConcept={"text": "Reaktif"})],
         {"observations": [{"loinc": "5196-1", "result": "reactive", "date": LAB}]}),
    Case("qualitative-string", [obs("5196-1", valueString="Non-reactive")],
         {"observations": [{"loinc": "5196-1", "result": "nonreactive", "date": LAB}]}),
    Case("qualitative-string-chinese", [obs("2106-3", valueString="阴性")],
         {"observations": [{"loinc": "2106-3", "result": "negative", "date": LAB}]}),
    Case("qualitative-interpretation-of-a-number", [obs("5196-1", valueQuantity=qty(250.3, "{s_co_ratio}"), interpretation=[
        concept("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "POS")])],
         {"observations": [{"loinc": "5196-1", "result": "positive", "date": LAB}]}),
    Case("qualitative-unreadable", [obs("5196-1", valueString="see report")], {"observations": []}, [W("unmappable_value", "Observation")]),
    # -- assessments and statuses ----------------------------------------------------------------
    Case("ascites-grade", [obs("ascites_grade", PROJECT, valueInteger=2)],
         {"assessments": [{"name": "ascites_grade", "grade": 2, "date": LAB}]}),
    Case("west-haven-grade-as-quantity", [obs("encephalopathy_grade", PROJECT, valueQuantity={"value": 1})],
         {"assessments": [{"name": "encephalopathy_grade", "grade": 1, "date": LAB}]}),
    Case("ascites-grade-out-of-range", [obs("ascites_grade", PROJECT, valueInteger=5)], {"assessments": []},
         [W("unmappable_value", "Observation")]),
    Case("pregnant", [obs("82810-3", valueCodeableConcept=concept(LOINC, "LA15173-0"))], {"pregnant": True}),
    Case("not-pregnant-snomed", [obs("82810-3", valueCodeableConcept=concept(SNOMED, "60001007"))], {"pregnant": False}),
    Case("pregnancy-unknown", [obs("82810-3", valueCodeableConcept=concept(LOINC, "LA4489-6"))], {"pregnant": None},
         [W("no_value", "Observation")]),
    Case("pregnancy-latest-wins", [obs("82810-3", rid="a", when="2026-10-01", valueCodeableConcept=concept(LOINC, "LA15173-0")),
                                   obs("82810-3", rid="b", when="2026-11-01", valueCodeableConcept=concept(LOINC, "LA26683-5"))],
         {"pregnant": False}, [W("superseded", "Observation")]),
    Case("pregnancy-same-day-conflict", [obs("82810-3", rid="a", valueCodeableConcept=concept(LOINC, "LA15173-0")),
                                         obs("82810-3", rid="b", valueCodeableConcept=concept(LOINC, "LA26683-5"))],
         {"pregnant": None}, [W("unmappable_value", "Observation"), W("unmappable_value", "Observation")]),
    Case("not-breastfeeding", [obs("63895-7", valueCodeableConcept=concept(LOINC, "LA29253-4"))], {"lactating": False}),
    Case("breastfeeding-yes-no", [obs("63895-7", valueCodeableConcept=concept("http://terminology.hl7.org/CodeSystem/v2-0136", "Y"))],
         {"lactating": True}),
    Case("childbearing-potential", [obs("childbearing_potential", PROJECT, valueBoolean=True)], {"childbearing_potential": True}),
    # -- conditions ------------------------------------------------------------------------------
    Case("condition-icd10", [{**condition((ICD10, "B18.1"), onsetDateTime="2009-06-01"),
                              "code": concept(ICD10, "B18.1", text="Chronic viral hepatitis B")}],
         {"conditions": [{"icd10": "B18.1", "display": "Chronic viral hepatitis B", "onset": "2009-06-01"}]}),
    Case("condition-icd10-cm-and-snomed", [condition((ICD10_CM, "K74.60"), (SNOMED, "19943007"))],
         {"conditions": [{"icd10": "K74.60", "snomed": "19943007"}]}),
    Case("condition-snomed-only-resolved", [condition((SNOMED, "444814009"), clinical="resolved", onsetDateTime="2012-05-30",
                                                      abatementDateTime="2012-06-13T19:28:31+00:00")],
         {"conditions": [{"snomed": "444814009", "onset": "2012-05-30", "resolved": "2012-06-13", "status": "resolved"}]}),
    Case("condition-onset-and-abatement-periods", [condition((ICD10, "K72.9"), clinical="resolved", onsetPeriod={"start": "2024-02-01"},
                                                            abatementPeriod={"start": "2024-03-01", "end": "2024-03-20"})],
         {"conditions": [{"icd10": "K72.9", "onset": "2024-02-01", "resolved": "2024-03-20", "status": "resolved"}]}),
    Case("condition-no-clinical-status", [condition((ICD10, "B18.1"), clinical=None)],
         {"conditions": [{"icd10": "B18.1"}]}, [W("assumption", "Condition", False)]),
    Case("condition-abated-without-status", [condition((ICD10, "B18.1"), clinical=None, abatementDateTime="2020-01-01")],
         {"conditions": [{"icd10": "B18.1", "resolved": "2020-01-01", "status": "resolved"}]}),
    Case("condition-active-but-abated", [condition((ICD10, "B18.1"), abatementDateTime="2020-01-01")],  # breaks FHIR invariant con-4
         {"conditions": [{"icd10": "B18.1", "resolved": "2020-01-01"}]}, [W("assumption", "Condition", False)]),
    Case("condition-refuted", [condition((ICD10, "B18.2"), verification="refuted")], {"conditions": []},
         [W("status_excluded", "Condition")]),
    Case("condition-entered-in-error", [condition((ICD10, "B18.2"), verification="entered-in-error")], {"conditions": None},
         [W("status_excluded", "Condition")]),
    Case("condition-provisional-kept", [condition((ICD10, "C22.0"), verification="provisional")],
         {"conditions": [{"icd10": "C22.0"}]}, [W("assumption", "Condition", False)]),
    Case("condition-without-usable-code", [condition(("urn:local:dx", "HEPB"))], {"conditions": []}, [W("unknown_code", "Condition")]),
    Case("condition-bad-icd10-good-snomed", [condition((ICD10, "hepatitis"), (SNOMED, "66071002"))],
         {"conditions": [{"snomed": "66071002"}]}, [W("invalid_code", "Condition", False)]),
    Case("condition-abatement-before-onset", [condition((ICD10, "B18.1"), onsetDateTime="2020-01-01", abatementDateTime="2019-01-01")],
         {"conditions": []}, [W("unmappable_value", "Condition")]),
    Case("condition-onset-as-text", [condition((ICD10, "B18.1"), onsetString="childhood")],
         {"conditions": [{"icd10": "B18.1"}]}, [W("no_date", "Condition", False)]),
    Case("condition-other-patient", [condition((ICD10, "B18.1"), subject={"reference": "Patient/T2"})], {"conditions": None},
         [W("other_patient", "Condition")]),
    # -- open world: a history is reviewed only when the data shows it ---------------------------
    Case("no-histories-not-reviewed", [], {"conditions": None, "medications": None, "procedures": None}),
    Case("problem-list-nil-known", [history_list((LOINC, "11450-4"))], {"conditions": [], "medications": None}),
    Case("medication-list-nil-known", [history_list(("http://terminology.hl7.org/CodeSystem/list-example-use-codes", "medications"))],
         {"medications": [], "conditions": None}),
    Case("procedure-list-nil-known", [history_list((LOINC, "47519-4"))], {"procedures": []}),
    Case("problem-list-not-asked", [history_list((LOINC, "11450-4"), empty="notasked")], {"conditions": None},
         [W("assumption", "List", False)]),
    Case("problem-list-retired", [history_list((LOINC, "11450-4"), status="retired")], {"conditions": None},
         [W("status_excluded", "List")]),
    Case("problem-list-with-entries-present", [condition((ICD10, "B18.1")), history_list((LOINC, "11450-4"), empty=None,
                                                                                          entries=["Condition/c1"])],
         {"conditions": [{"icd10": "B18.1"}]}),
    Case("problem-list-with-missing-entry", [history_list((LOINC, "11450-4"), empty=None, entries=["Condition/elsewhere"])],
         {"conditions": None}, [W("no_value", "List", False)]),
    Case("ips-no-known-problems", [condition(("http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips", "no-known-problems"))],
         {"conditions": []}),
    Case("ips-no-problem-info", [condition(("http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips", "no-problem-info"))],
         {"conditions": None}, [W("assumption", "Condition", False)]),
    Case("unknown-list", [history_list((LOINC, "48765-2"))], {"conditions": None}, [W("unknown_code", "List")]),
    # -- medications -----------------------------------------------------------------------------
    Case("statement-atc-period", [statement("Baraclude 0.5 mg", (ATC, "J05AF10"), status="completed",
                                            effectivePeriod={"start": "2019-08-01", "end": "2024-01-31"})],
         {"medications": [{"name": "Baraclude 0.5 mg", "atc": "J05AF10", "start": "2019-08-01", "end": "2024-01-31", "status": "completed"}]}),
    Case("statement-text-only", [statement("Spironolactone 100 mg", effectiveDateTime="2026-09-03")],
         {"medications": [{"name": "Spironolactone 100 mg", "start": "2026-09-03"}]}),
    Case("statement-display-as-name", [statement(None, (RXNORM, "1860480"))], {"medications": [{"name": "RxNorm 1860480", "rxnorm": "1860480"}]}),
    Case("statement-not-taken", [statement(status="not-taken")], {"medications": []}, [W("status_excluded", "MedicationStatement")]),
    Case("statement-entered-in-error", [statement(status="entered-in-error")], {"medications": None},
         [W("status_excluded", "MedicationStatement")]),
    Case("statement-unknown-status", [statement(status="unknown")], {"medications": [{"name": "Baraclude 0.5 mg"}]},
         [W("assumption", "MedicationStatement", False)]),
    Case("statement-bad-atc", [statement("Vemlidy", (ATC, "tenofovir"))], {"medications": [{"name": "Vemlidy"}]},
         [W("invalid_code", "MedicationStatement", False)]),
    Case("statement-no-name-no-code", [statement(None)], {"medications": []}, [W("unknown_code", "MedicationStatement")]),
    Case("request-rxnorm-stopped", [request("Entecavir 0.5 MG Oral Tablet", (RXNORM, "403878"), status="stopped",
                                            authoredOn="2021-02-04T10:00:00+08:00")],
         {"medications": [{"name": "Entecavir 0.5 MG Oral Tablet", "rxnorm": "403878", "start": "2021-02-04", "status": "stopped"}]}),
    Case("request-cancelled", [request("Entecavir", status="cancelled")], {"medications": []}, [W("status_excluded", "MedicationRequest")]),
    Case("request-draft", [request("Entecavir", status="draft")], {"medications": [{"name": "Entecavir", "status": "intended"}]}),
    Case("request-plan-is-intended", [request("Entecavir", intent="plan")], {"medications": [{"name": "Entecavir", "status": "intended"}]}),
    Case("medication-reference", [
        {"resourceType": "Medication", "id": "med1", "code": {"text": "Truvada"},
         "ingredient": [{"itemCodeableConcept": {"text": "emtricitabine"}}, {"itemCodeableConcept": {"text": "tenofovir disoproxil"}}]},
        {"resourceType": "MedicationStatement", "id": "m1", "status": "active", "medicationReference": {"reference": "Medication/med1"},
         "subject": SUBJECT}],
         {"medications": [{"name": "Truvada", "ingredients": ["emtricitabine", "tenofovir disoproxil"]}]}),
    Case("contained-medication", [{"resourceType": "MedicationStatement", "id": "m1", "status": "active",
                                   "contained": [{"resourceType": "Medication", "id": "x", "code": concept(ATC, "J05AF13", "Vemlidy 25 mg")}],
                                   "medicationReference": {"reference": "#x"}, "subject": SUBJECT}],
         {"medications": [{"name": "Vemlidy 25 mg", "atc": "J05AF13"}]}),
    Case("medication-reference-not-in-data", [by_reference({"reference": "Medication/zz"})],
         {"medications": []}, [W("no_value", "MedicationRequest")]),
    Case("medication-reference-not-in-data-with-display", [by_reference({"reference": "#zz", "display": "Entecavir"})],
         {"medications": [{"name": "Entecavir"}]}, [W("no_value", "MedicationRequest", False)]),
    Case("medication-unreferenced", [{"resourceType": "Medication", "id": "med1", "code": {"text": "Truvada"}}],
         {"medications": None}, [W("unsupported_resource", "Medication")]),
    # -- procedures ------------------------------------------------------------------------------
    Case("procedure-liver-transplant", [procedure((SNOMED, "18027006"), performedDateTime="2021-03-15")],
         {"procedures": [{"kind": "liver_transplant", "code": "18027006", "system": "snomed", "date": "2021-03-15"}]}),
    Case("procedure-kidney-allotransplant", [procedure((SNOMED, "765478004"), performedDateTime="2019-05-02")],
         {"procedures": [{"kind": "kidney_transplant", "code": "765478004", "system": "snomed", "date": "2019-05-02"}]}),
    Case("procedure-kidney-regime-has-no-kind", [procedure((SNOMED, "711446003"), performedDateTime="2019-05-03")],
         {"procedures": [{"code": "711446003", "system": "snomed", "date": "2019-05-03"}]}),
    Case("procedure-haemodialysis-period", [procedure((SNOMED, "302497006"), performedPeriod={"start": "2026-11-18T08:00:00+07:00"})],
         {"procedures": [{"kind": "haemodialysis", "code": "302497006", "system": "snomed", "date": "2026-11-18"}]}),
    Case("procedure-project-kind", [procedure((PROJECT, "tips"), performedDateTime="2025-01-05")],
         {"procedures": [{"kind": "tips", "date": "2025-01-05"}]}),
    Case("procedure-icd10pcs", [procedure(("http://www.cms.gov/Medicare/Coding/ICD10", "0FY00Z0"), performedDateTime="2021-03-15")],
         {"procedures": [{"code": "0FY00Z0", "system": "icd10pcs", "date": "2021-03-15"}]}),
    Case("procedure-snomed-no-kind", [procedure((SNOMED, "428191000124101"), performedDateTime="2020-02-20")],
         {"procedures": [{"code": "428191000124101", "system": "snomed", "date": "2020-02-20"}]}),
    Case("procedure-not-done", [procedure((SNOMED, "18027006"), status="not-done")], {"procedures": []}, [W("status_excluded", "Procedure")]),
    Case("procedure-entered-in-error", [procedure((SNOMED, "18027006"), status="entered-in-error")], {"procedures": None},
         [W("status_excluded", "Procedure")]),
    Case("procedure-undated", [procedure((SNOMED, "18027006"))], {"procedures": [{"kind": "liver_transplant", "code": "18027006",
                                                                                "system": "snomed"}]}, [W("no_date", "Procedure", False)]),
    Case("procedure-unknown-coding", [procedure(("urn:local:proc", "LTX"))], {"procedures": []}, [W("unknown_code", "Procedure")]),
    # a LOINC code sent in the SNOMED CT system (Synthea's "trans thoracic echocardiogram", 34552-0) is no SNOMED CT concept id
    Case("procedure-bad-snomed", [procedure((SNOMED, "34552-0"), performedDateTime="2015-10-06")], {"procedures": []},
         [W("invalid_code", "Procedure")]),
    Case("procedure-bad-snomed-then-good-snomed", [procedure((SNOMED, "34552-0"), (SNOMED, "18027006"), performedDateTime="2021-03-15")],
         {"procedures": [{"kind": "liver_transplant", "code": "18027006", "system": "snomed", "date": "2021-03-15"}]},
         [W("invalid_code", "Procedure", False)]),
    Case("procedure-bad-snomed-good-cpt", [procedure((SNOMED, "TTE"), ("http://www.ama-assn.org/go/cpt", "93306"), performedDateTime="2015-10-06")],
         {"procedures": [{"code": "93306", "system": "cpt", "date": "2015-10-06"}]}, [W("invalid_code", "Procedure", False)]),
    Case("procedure-bad-snomed-project-kind", [procedure((SNOMED, "34552-0"), (PROJECT, "tips"), performedDateTime="2025-01-05")],
         {"procedures": [{"kind": "tips", "date": "2025-01-05"}]}, [W("invalid_code", "Procedure", False)]),
    Case("ips-no-known-procedures", [procedure(("http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips", "no-known-procedures"))],
         {"procedures": []}),
    # -- imaging ---------------------------------------------------------------------------------
    Case("ultrasound-cirrhosis", [report((SNOMED, "19943007"), (SNOMED, "389026000"), conclusion="Cirrhosis, ascites.")],
         {"imaging": [{"modality": "ultrasound", "date": LAB, "findings": ["cirrhosis", "ascites"], "report": "Cirrhosis, ascites."}]}),
    Case("imaging-study-modality", [
        {"resourceType": "ImagingStudy", "id": "s1", "status": "available", "subject": SUBJECT,
         "series": [{"uid": "2.25.1", "modality": {"system": DICOM, "code": "CT"}}]},
        report((SNOMED, "109841003"), category=None, imagingStudy=[{"reference": "ImagingStudy/s1"}])],
         {"imaging": [{"modality": "ct", "date": LAB, "findings": ["hepatocellular_carcinoma"]}]}),
    Case("report-dated-by-its-study", [
        {"resourceType": "ImagingStudy", "id": "s1", "status": "available", "subject": SUBJECT, "started": "2026-10-28T09:15:00+07:00",
         "modality": [{"system": DICOM, "code": "US"}]},
        {k: v for k, v in report((SNOMED, "19943007"), category=None, imagingStudy=[{"reference": "ImagingStudy/s1"}]).items()
         if k != "effectiveDateTime"}],
         {"imaging": [{"modality": "ultrasound", "date": "2026-10-28", "findings": ["cirrhosis"]}]}),
    Case("v2-section-and-project-finding", [report((PROJECT, "liver_mass"), category=(V2_0074, "RUS"))],
         {"imaging": [{"modality": "ultrasound", "date": LAB, "findings": ["liver_mass"]}]}),
    Case("project-finding-outside-the-vocabulary", [report((PROJECT, "gallstones"))], {"imaging": [{"modality": "ultrasound", "date": LAB}]},
         [W("unknown_code", "DiagnosticReport", False)]),
    Case("no-abnormality", [report((SNOMED, "281900007"))], {"imaging": [{"modality": "ultrasound", "date": LAB, "findings": []}]}),
    Case("unknown-finding-code-leaves-findings-uncoded", [report((SNOMED, "19943007"), (SNOMED, "80515008"))],
         {"imaging": [{"modality": "ultrasound", "date": LAB}]}, [W("unknown_code", "DiagnosticReport", False)]),
    Case("report-without-conclusion-code", [report(conclusion="Sirosis hati.")],
         {"imaging": [{"modality": "ultrasound", "date": LAB, "report": "Sirosis hati."}]}, [W("findings_unknown", "DiagnosticReport", False)]),
    Case("lab-report", [report(category=(V2_0074, "LAB"))], {"imaging": []}, [W("unsupported_resource", "DiagnosticReport")]),
    Case("report-without-modality", [report((SNOMED, "19943007"), category=None)], {"imaging": []}, [W("unknown_code", "DiagnosticReport")]),
    Case("imaging-study-alone", [{"resourceType": "ImagingStudy", "id": "s1", "status": "available", "subject": SUBJECT}],
         {"imaging": []}, [W("findings_unknown", "ImagingStudy")]),
    # -- consent ---------------------------------------------------------------------------------
    Case("consent-active", [consent()], {"consent": "consented"}),
    Case("consent-rejected", [consent("rejected")], {"consent": "refused"}),
    Case("consent-deny-provision", [consent(provision={"type": "deny"})], {"consent": "refused"}),
    Case("consent-proposed", [consent("proposed")], {"consent": "not_asked"}),
    Case("consent-inactive", [consent("inactive")], {"consent": None}, [W("status_excluded", "Consent")]),
    Case("consent-treatment-scope", [consent(scope="treatment")], {"consent": None}, [W("unknown_code", "Consent")]),
    Case("consent-latest-wins", [consent(rid="k1", when="2026-10-01"), consent("rejected", rid="k2", when="2026-11-01")],
         {"consent": "refused"}, [W("superseded", "Consent")]),
    # -- duplicates: the first copy of a resource is used -----------------------------------------
    Case("duplicate-condition", [condition((ICD10, "B18.1")), condition((ICD10, "B18.1"), verification="entered-in-error")],
         {"conditions": [{"icd10": "B18.1"}]}, [W("assumption", "Condition")]),
    Case("duplicate-lab", [obs("1975-2", valueQuantity=qty(2, "mg/dL")), obs("1975-2", valueQuantity=qty(4, "mg/dL"))],
         {"observations": [{"loinc": "1975-2", "value": 2.0, "unit": "mg/dL", "date": LAB}]}, [W("assumption", "Observation")]),
    Case("same-id-other-type", [condition((ICD10, "B18.1"), rid="x1"), procedure((SNOMED, "18027006"), rid="x1", performedDateTime="2021-03-15")],
         {"conditions": [{"icd10": "B18.1"}], "procedures": [{"kind": "liver_transplant", "code": "18027006", "system": "snomed",
                                                               "date": "2021-03-15"}]}),
    # -- other resources -------------------------------------------------------------------------
    Case("encounter-and-claim", [{"resourceType": "Encounter", "id": "e1", "status": "finished"},
                                 {"resourceType": "Claim", "id": "cl1"}], {},
         [W("unsupported_resource", "Encounter"), W("unsupported_resource", "Claim")]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_mapping(case: Case):
    mapped = bundle_to_profile(bundle(*copy.deepcopy(case.resources)))
    for name, expected in case.expect.items():
        assert dumped(getattr(mapped.profile, name)) == expected, name
    assert warned(mapped) == case.warnings
    for w in mapped.warnings:
        assert w.message and (w.resource_id or w.resource_type)


def test_case_ids_are_unique():
    assert len({c.id for c in CASES}) == len(CASES)


PATIENT_CASES = [
    ({"birthDate": "1979-04-17", "gender": "male"}, {"birth_date": "1979-04-17", "sex": "male", "deceased": None}, []),
    ({"birthDate": "1979", "gender": "unknown"}, {"birth_date": None, "sex": None}, [W("partial_date", "Patient", False)]),
    ({"deceasedDateTime": "2016-04-05T06:58:56+00:00"}, {"birth_date": None, "sex": None, "deceased": "2016-04-05"}, [W("deceased", "Patient", False)]),
    ({"deceasedDateTime": "2016"}, {"deceased": True}, [W("deceased", "Patient", False)]),  # a year: the day is unknown
    ({"deceasedBoolean": True}, {"deceased": True}, [W("deceased", "Patient", False)]),
    ({"deceasedBoolean": False}, {"deceased": False}, []),
]


@pytest.mark.parametrize(("fields", "expect", "warnings"), PATIENT_CASES)
def test_patient_fields(fields, expect, warnings):
    mapped = bundle_to_profile(bundle(patient={"resourceType": "Patient", "id": "T9", **fields}))
    assert mapped.profile.id == "T9"
    assert {k: dumped(getattr(mapped.profile, k)) for k in expect} == expect
    assert warned(mapped) == warnings


def test_patient_id_from_full_url_and_references_by_urn():
    urn = "urn:uuid:6c1e5b6a-1d2b-4c8e-9a52-1b2f3c4d5e6f"
    data = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": urn, "resource": {"resourceType": "Patient", "gender": "male"}, "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:0f0e", "resource": {**condition((ICD10, "B18.1")), "subject": {"reference": urn}},
         "request": {"method": "POST", "url": "Condition"}}]}
    mapped = bundle_to_profile(data)
    assert mapped.profile.id == "6c1e5b6a-1d2b-4c8e-9a52-1b2f3c4d5e6f"
    assert dumped(mapped.profile.conditions) == [{"icd10": "B18.1"}]
    assert mapped.warnings == ()


def test_entry_without_resource_and_duplicate_patient_are_reported():
    data = bundle(PATIENT)
    data["entry"].append({"request": {"method": "DELETE", "url": "Observation/x"}})
    mapped = bundle_to_profile(data)
    assert warned(mapped) == [("assumption", "Patient", True), ("no_value", None, True)]
    assert mapped.warnings[1].where == "entry[2]"


MALFORMED_ENTRY_CASES = [
    ("no-resource-type", {"id": "a"}, [("not_fhir", None, True)]),
    ("resource-type-a-list", {"resourceType": ["Observation"], "id": "a"}, [("not_fhir", None, True)]),
    ("resource-type-an-object", {"resourceType": {"name": "Observation"}}, [("not_fhir", None, True)]),
    ("unread-type-with-number-id", {"resourceType": "Encounter", "id": 5}, [("unsupported_resource", "Encounter", True)]),
]


@pytest.mark.parametrize(("resource", "warnings"), [c[1:] for c in MALFORMED_ENTRY_CASES], ids=[c[0] for c in MALFORMED_ENTRY_CASES])
def test_entry_with_malformed_type_or_id_is_a_warning(resource, warnings):
    mapped = bundle_to_profile(bundle(resource))
    assert warned(mapped) == warnings
    assert mapped.warnings[0].where == "entry[1]" and mapped.warnings[0].resource_id is None


def test_warning_names_resource_place_and_field():
    mapped = bundle_to_profile(bundle(obs("14631-6", rid="bili-1", valueQuantity={"value": 40, "unit": "umol/L"})))
    (w,) = mapped.warnings
    assert (w.resource_type, w.resource_id, w.where, w.field, w.skipped) == ("Observation", "bili-1", "entry[1]", "valueQuantity.code", True)
    assert str(w) == "Observation/bili-1 (entry[1]): valueQuantity.code: no UCUM unit code (unit text 'umol/L')"
    assert mapped.skipped == (w,)


# -- errors ------------------------------------------------------------------------------------------

def _nested_extension(depth: int) -> dict:
    extension = {"url": "urn:example:x", "valueString": "x"}
    for _ in range(depth):
        extension = {"url": "urn:example:x", "extension": [extension]}
    return extension


ERROR_CASES = [
    ("not-a-bundle", {"resourceType": "Patient", "id": "x"}, "resourceType", "expected a FHIR Bundle, got 'Patient'"),
    ("no-patient", bundle(condition((ICD10, "B18.1")), patient=None), "entry", "holds no Patient resource"),
    ("two-patients", bundle({**PATIENT, "id": "T2"}), "entry", "holds 2 Patient resources (T1, T2)"),
    ("bad-decimal", bundle(obs("1975-2", rid="o7", valueQuantity={"value": "abc", "code": "mg/dL"})), "entry[1].resource.valueQuantity.value",
     "Observation/o7 (entry[1]) is not valid FHIR R4"),
    ("missing-status", bundle({k: v for k, v in obs("1975-2", rid="o8").items() if k != "status"}), "entry[1].resource.status",
     "Observation/o8 (entry[1]) is not valid FHIR R4: Value for the field 'status' is required."),
    ("unknown-element", bundle(condition((ICD10, "B18.1"), rid="c9", severityy="high")), "entry[1].resource.severityy",
     "Condition/c9 (entry[1]) is not valid FHIR R4: Extra inputs are not permitted"),
    ("bad-date", bundle(condition((ICD10, "B18.1"), rid="c3", onsetDateTime="2026-13-45")), "entry[1].resource.onsetDateTime",
     "Condition/c3 (entry[1]) is not valid FHIR R4"),
    ("bad-patient", bundle(patient={**PATIENT, "birthDate": "03/02/1980"}), "entry[0].resource.birthDate",
     "Patient/T1 (entry[0]) is not valid FHIR R4"),
    ("bad-bundle-type", {**bundle(), "type": 7}, "type", "Bundle (Bundle) is not valid FHIR R4"),
    ("patient-id-a-list", bundle(patient={**PATIENT, "id": ["T1"]}), "entry[0].resource.id", "Patient (entry[0]) is not valid FHIR R4"),
    ("nested-too-deeply", bundle(obs("1975-2", rid="o9", extension=[_nested_extension(400)])), "entry[1].resource",
     "Observation/o9 (entry[1]) is nested too deeply to be read"),
    ("entries-not-a-list", {"resourceType": "Bundle", "type": "collection", "entry": {"resource": PATIENT}}, "entry",
     "Bundle.entry must be a list"),
]


@pytest.mark.parametrize(("data", "field", "message"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_invalid_input_is_a_patient_data_error(data, field, message):
    with pytest.raises(PatientDataError) as info:
        bundle_to_profile(data, source="referral.json")
    assert info.value.field == field
    assert message in info.value.problem
    assert str(info.value).startswith("referral.json: ")


def test_every_parsed_resource_type_has_a_reader():
    assert set(HANDLERS) | REFERENCED_ONLY | {"Patient"} == MAPPED_RESOURCE_TYPES


# -- files -------------------------------------------------------------------------------------------

BUNDLES = sorted((ROOT / "patients" / "fhir").glob("*.bundle.json"))


def test_example_bundles_cover_p01_p02_p11():
    assert {p.name[:3] for p in BUNDLES} >= {"P01", "P02", "P11"}


@pytest.mark.parametrize("path", BUNDLES, ids=[p.name[:3] for p in BUNDLES])
def test_example_bundle_screens_like_its_native_profile(rules, path):
    native = load_patient(ROOT / "patients" / "examples" / path.name.replace(".bundle.json", ".json"))
    profile, warnings = load_patient_with_warnings(path)
    assert warnings == ()
    assert profile == native  # the mapping recovers the native profile exactly
    from_fhir, from_native = screen(profile, rules, as_of=AS_OF), screen(native, rules, as_of=AS_OF)
    assert [t.trial_id for t in from_fhir.results] == ["NCT03945487", "NCT04357600"]
    for a, b in zip(from_fhir.results, from_native.results, strict=True):
        assert a.verdict == b.verdict
        assert [(c.id, c.outcome) for c in a.criteria] == [(c.id, c.outcome) for c in b.criteria]
    assert from_fhir.model_dump_json() == from_native.model_dump_json()


def test_load_patient_reads_a_bundle_and_refuses_a_bare_resource(tmp_path):
    assert load_patient(BUNDLES[0]).id == "P01"
    bare = tmp_path / "patient.json"
    bare.write_text(json.dumps(PATIENT))
    with pytest.raises(PatientDataError, match="expected a FHIR Bundle, got 'Patient'"):
        load_patient(bare)
    native = ROOT / "patients" / "examples" / "P01-jakarta-cpb-si-eligible.json"
    assert load_patient_with_warnings(native) == (load_patient(native), ())


# -- the Synthea bundles (shared/data/fhir-synthetic/bundles) -------------------------------------

# Counted by reading the files (shared/data/fhir-synthetic/README.md gives the resource counts):
# observations are the Observations whose LOINC is an engine analyte (creatinine 38483-4, sodium
# 2947-0, platelets 777-3, albumin, bilirubin, ALT, AST); the other Observations are unknown codes.
SYNTHEA = {
    "Andy_Schaden": dict(id="9afe28dc-7ad5-4e90-b6a6-16123eae98c3", birth_date="1932-06-09", sex="male", conditions=8, observations=21,
                         medications=4, procedures=4, warnings={"unknown_code": 153, "unsupported_resource": 86}),
    "Clemente_Kreiger": dict(id="d78af07c-9cb9-4f31-9b11-c45a28f2eec8", birth_date="1984-07-02", sex="male", conditions=1, observations=2,
                             medications=None, procedures=1, warnings={"unknown_code": 46, "unsupported_resource": 19}),
    "Laurie_McCullough": dict(id="ca95b2c5-d306-44d4-a7fa-756de736e68e", birth_date="1999-07-10", sex="female", conditions=6,
                              observations=1, medications=3, procedures=10, warnings={"unknown_code": 62, "unsupported_resource": 65}),
    "Louis_Maggio": dict(id="bae2bf00-eca1-47fb-bb43-272f8de1449c", birth_date="1976-01-16", sex="male", conditions=12, observations=3,
                         medications=5, procedures=None, warnings={"unknown_code": 63, "unsupported_resource": 72}),
    # one of Michele Wolf's 11 Procedures is coded 34552-0 (a LOINC code) in the SNOMED CT system: an invalid_code warning
    "Michele_Wolf": dict(id="0f49d2d0-59be-4f72-a22b-0a582367b44b", birth_date="1941-09-14", sex="female", conditions=3, observations=12,
                         medications=4, procedures=10, warnings={"unknown_code": 117, "unsupported_resource": 81, "findings_unknown": 4,
                                                                 "deceased": 1, "invalid_code": 1}),
}


def _synthea(name: str):
    (path,) = (SYNTHETIC / "bundles").glob(f"{name}_*.json")
    return bundle_to_profile(json.loads(path.read_text()), source=str(path))


def _count(items):
    return None if items is None else len(items)


@needs_shared
@pytest.mark.parametrize("name", sorted(SYNTHEA))
def test_synthea_bundle_maps(rules, name):
    expected = SYNTHEA[name]
    mapped = _synthea(name)
    p = mapped.profile
    assert (p.id, str(p.birth_date), p.sex.value) == (expected["id"], expected["birth_date"], expected["sex"])
    counts = {k: _count(getattr(p, k)) for k in ("conditions", "observations", "medications", "procedures")}
    assert counts == {k: expected[k] for k in counts}
    assert (p.imaging, p.assessments, p.consent, p.pregnant) == ([], [], None, None)
    by_code: dict[str, int] = {}
    for w in mapped.warnings:
        by_code[w.code.value] = by_code.get(w.code.value, 0) + 1
    assert by_code == expected["warnings"]
    result = screen(p, rules, as_of=AS_OF)  # screens without error: the profile is usable as mapped
    assert {t.trial_id for t in result.results} == {"NCT03945487", "NCT04357600"}


@needs_shared
def test_synthea_values():
    andy = _synthea("Andy_Schaden").profile
    sodium = [o for o in andy.observations if o.loinc == "2947-0"]
    assert len(sodium) == 10
    latest = max(sodium, key=lambda o: o.date)
    assert (str(latest.date), round(latest.value, 2), latest.unit) == ("2021-02-25", 136.04, "mmol/L")
    assert [(c.snomed, c.status.value, str(c.resolved)) for c in andy.conditions if c.snomed == "195662009"] == [
        ("195662009", "resolved", "2019-05-25")]
    assert [(m.name, m.rxnorm, m.status.value) for m in andy.medications][:2] == [
        ("Vitamin B 12 5 MG/ML Injectable Solution", "2001499", "active"), ("1 ML DOCEtaxel 20 MG/ML Injection", "1860480", "active")]
    laurie = _synthea("Laurie_McCullough").profile
    pregnancy = next(c for c in laurie.conditions if c.snomed == "72892002")
    assert (pregnancy.display, str(pregnancy.onset), str(pregnancy.resolved)) == ("Normal pregnancy", "2019-01-19", "2019-02-16")
    assert {p.code for p in laurie.procedures} >= {"714812005", "252160004"}
    michele = _synthea("Michele_Wolf")
    assert [w.message for w in michele.warnings if w.code is WarningCode.DECEASED] == ["the patient is recorded as deceased on 2016-04-05"]
    assert {m.name for m in michele.profile.medications} >= {"Lasix 40mg"}


# -- the bulk export (shared/data/fhir-synthetic/bulk-10-patients) -------------------------------

# Per patient (Patient.000.ndjson order): conditions, medication requests, procedures, counted in
# Condition/MedicationRequest/Procedure.000.ndjson by subject. The README calls it "10 patients";
# Patient.000.ndjson holds 13 (3 deceased), and every one has records.
BULK = {
    "129c6ac7-8d06-89de-ad63-0204a93e76c3": (49, 447, 587),
    "3af3708d-41f1-cd80-f3dd-ec5ac76072bf": (6, 3, 36),
    "63ee2253-bdd5-da55-2ad2-b4984d0ad700": (3, 2, 8),
    "6a4160eb-a793-2f86-2302-378626f46cce": (62, 93, 57),
    "79a66c97-6131-3213-f3c9-4606946ab056": (219, 1036, 805),
    "7bc002fa-dc52-17d6-1563-fd8901826f7d": (23, 9, 32),
    "8e1a0a7c-e308-444b-075a-3c2b1f60f881": (47, 2, 69),
    "a4a401d1-a46a-eb4a-8a38-760d5d79d6ec": (34, 8, 86),
    "a5cb8ce9-cec6-6b23-0990-cbaf753578a4": (33, 62, 110),
    "bb6a9034-2f23-2508-d29d-35efee156dc9": (5, 5, 31),
    "ca15b832-01e4-41dd-6a52-97bd3e5510cb": (36, 22, 151),
    "cbc86e51-9eca-3855-76ec-c058f72c5761": (21, 4, 36),
    "fb7c882a-f897-e7c5-67e0-825e7fd55d15": (17, 52, 48),
}


@pytest.fixture(scope="module")
def bulk():
    export = read_bulk_export(SYNTHETIC / "bulk-10-patients")
    return export, list(export)


@needs_shared
def test_bulk_export_maps_one_profile_per_patient(bulk):
    export, mapped = bulk
    assert len(export) == 13 and len(mapped) == 13
    assert [m.profile.id for m in mapped] == list(BULK)
    assert {m.profile.id: (len(m.profile.conditions), len(m.profile.medications), len(m.profile.procedures)) for m in mapped} == BULK
    assert sum(len(m.profile.conditions) for m in mapped) == 555
    assert sum(len(m.profile.medications) for m in mapped) == 1745
    assert sum(len(m.profile.procedures) for m in mapped) == 2056
    assert all(m.profile.observations == [] for m in mapped)  # the export's Observation file was not copied
    assert sorted(m.profile.sex.value for m in mapped).count("female") == 9
    assert sum(w.code is WarningCode.DECEASED for m in mapped for w in m.warnings) == 3
    unsupported: dict[str, int] = {}
    for m in mapped:
        for w in m.warnings:
            if w.code is WarningCode.UNSUPPORTED_RESOURCE:
                unsupported[w.resource_type] = unsupported.get(w.resource_type, 0) + 1
    assert unsupported == {"Encounter": 1215, "DocumentReference": 1215, "Immunization": 161, "AllergyIntolerance": 11, "Device": 16}


@needs_shared
def test_bulk_export_level_warnings(bulk):
    export, _ = bulk
    by_type: dict[str | None, int] = {}
    for w in export.warnings:
        by_type[w.resource_type] = by_type.get(w.resource_type, 0) + 1
    assert by_type == {"Organization": 43, "Location": 44, "Practitioner": 43, "PractitionerRole": 43, None: 1}
    (log,) = [w for w in export.warnings if w.code is WarningCode.NOT_FHIR]
    assert log.message == "4 lines of log.ndjson are not FHIR resources: not read"


@needs_shared
def test_screen_cohort_reads_the_bulk_export(rules, bulk, tmp_path):
    """`screening screen-cohort <bulk export folder>`: one row per Patient and trial, the reference
    evaluator's verdicts, and the mapping warnings counted."""
    _, mapped = bulk
    out = tmp_path / "results.csv"
    run = CliRunner().invoke(app, ["screen-cohort", str(SYNTHETIC / "bulk-10-patients"), "--out", str(out), "--rules", str(ROOT / "rules"),
                                   "--as-of", "2024-08-06"])
    assert run.exit_code == 0, run.output
    assert "FHIR mapping warnings: 2795 (unsupported_resource 2618, no_patient 173, deceased 3, not_fhir 1)" in run.output
    rows = pd.read_csv(out, dtype=str, keep_default_na=False)
    expected = [(m.profile.id, t.trial_id, t.verdict.value, ";".join(t.deciding))
                for m in mapped for t in screen(m.profile, rules, as_of=dt.date(2024, 8, 6)).results]
    assert list(rows[["patient_id", "trial_id", "verdict", "deciding"]].itertuples(index=False, name=None)) == expected


def test_cohort_bulk_export_patient_with_an_invalid_resource_is_an_error_row(rules, tmp_path):
    _ndjson(tmp_path, "Patient.000.ndjson", PATIENT, {**PATIENT, "id": "T2", "identifier": []})
    _ndjson(tmp_path, "Observation.000.ndjson", obs("1975-2", rid="bad", valueQuantity={"value": "2,6", "code": "mg/dL"}),
            {**obs("1975-2", rid="ok", valueQuantity=qty(2, "mg/dL")), "subject": {"reference": "Patient/T2"}})
    _ndjson(tmp_path, "Encounter.000.ndjson", {"resourceType": "Encounter", "id": "e1", "subject": {"reference": "Patient/T2"}})
    warnings: list = []
    frames = list(screen_cohort(read_cohort(tmp_path, chunk_size=1, on_fhir_warnings=warnings.extend), rules, AS_OF, ["NCT04357600"]))
    rows = pd.concat(frames, ignore_index=True)
    assert list(rows.patient_id) == ["T1", "T2"]
    assert list(rows.verdict) == ["error", "undetermined"]
    assert "patient T1: field valueQuantity.value: Observation/bad (Observation.000.ndjson line 1) is not valid FHIR R4" in rows.error[0]
    assert [(w.code.value, w.resource_id) for w in warnings] == [("unsupported_resource", "e1")]


@needs_shared
def test_cohort_rows_of_a_patient_recorded_as_deceased_carry_the_notice_and_the_worklists_show_it(rules, tmp_path):
    """A deceased patient is screened like any other (the criteria decide), but every one of its
    result rows says so, the run's summary counts them, and a near-miss worklist that lists one
    says so beside the id: a worklist is for phone calls."""
    out, report = tmp_path / "results.csv", tmp_path / "report"
    run = CliRunner().invoke(app, ["screen-cohort", str(SYNTHETIC / "bulk-10-patients"), "--out", str(out), "--rules", str(ROOT / "rules"),
                                   "--as-of", "2015-01-01", "--trial", "NCT04357600", "--report", str(report)])
    assert run.exit_code == 0, run.output
    assert "patients with a notice (e.g. recorded as deceased): 3;" in run.output
    rows = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert dict(rows.loc[rows.notice != "", ["patient_id", "notice"]].itertuples(index=False, name=None)) == {
        "129c6ac7-8d06-89de-ad63-0204a93e76c3": "the patient is recorded as deceased on 1989-05-09",
        "3af3708d-41f1-cd80-f3dd-ec5ac76072bf": "the patient is recorded as deceased on 1971-10-01",
        "79a66c97-6131-3213-f3c9-4606946ab056": "the patient is recorded as deceased on 1994-11-11",
    }
    worklist = pd.read_csv(report / "NCT04357600-near-miss-ineligible.csv", dtype=str, keep_default_na=False)
    flagged = worklist[worklist["check before contacting"] != ""]
    assert list(flagged.patient_id) == ["3af3708d-41f1-cd80-f3dd-ec5ac76072bf"]
    assert "1 of them has a notice under 'check before contacting'" in (report / "report.md").read_text()


def test_ndjson_lines_may_be_fhir_bundles_screened_as_screen_screens_them(rules, tmp_path):
    """An NDJSON cohort of Bundles (one per line, as POST /screen/batch takes them) gives each
    Bundle's verdicts; a line holding another FHIR resource is an error row naming the line."""
    bundles = sorted((ROOT / "patients" / "fhir").glob("*.bundle.json"))
    cohort = tmp_path / "bundles.ndjson"
    lines = [json.dumps(json.loads(path.read_text())) for path in bundles] + [json.dumps(PATIENT)]
    cohort.write_text("\n".join(lines) + "\n")
    warnings: list = []
    rows = pd.concat(list(screen_cohort(read_cohort(cohort, chunk_size=4, on_fhir_warnings=warnings.extend), rules, AS_OF)), ignore_index=True)
    expected = [(t.trial_id, t.verdict.value, ";".join(t.deciding)) for path in bundles for t in screen(load_patient(path), rules, as_of=AS_OF).results]
    assert list(rows[["trial_id", "verdict", "deciding"]].itertuples(index=False, name=None))[:-2] == expected
    assert list(rows.patient_id[:-2:2]) == [load_patient(path).id for path in bundles]
    assert list(rows.verdict[-2:]) == ["error", "error"]
    assert rows.error.iloc[-1] == f"line {len(bundles) + 1}: field resourceType: expected a FHIR Bundle, got 'Patient'"
    assert len(warnings) == sum(len(load_patient_with_warnings(path)[1]) for path in bundles)


@pytest.mark.parametrize(("make", "said"), [
    (lambda folder: (folder / "a.bundle.json").write_text("{}"),
     "not a cohort folder: no patients.csv or patients.parquet (long tables) and no *.ndjson files (a FHIR bulk export) "
     "(for FHIR Bundles, one per patient: put them in an .ndjson file, one per line)"),
    (lambda folder: (folder / "notes.txt").write_text(""),
     "not a cohort folder: no patients.csv or patients.parquet (long tables) and no *.ndjson files (a FHIR bulk export)"),
])
def test_a_folder_that_is_no_cohort_says_what_a_cohort_folder_holds(tmp_path, make, said):
    make(tmp_path)
    with pytest.raises(PatientDataError) as raised:
        next(read_cohort(tmp_path))
    assert raised.value.problem == said


def test_a_single_json_file_is_pointed_to_screen(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("{}")
    with pytest.raises(PatientDataError, match="a .json file holds one patient: screen it with `screening screen`"):
        next(read_cohort(path))


def _ndjson(folder: Path, name: str, *resources: dict | str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in resources))


def test_bulk_groups_by_reference_and_reports_strays(tmp_path):
    _ndjson(tmp_path, "Patient.000.ndjson", PATIENT, {"resourceType": "Patient", "id": "T2"})
    _ndjson(tmp_path, "Condition.000.ndjson",
            condition((ICD10, "B18.1"), rid="c1"),
            "",
            {**condition((ICD10, "K74.6"), rid="c2"), "subject": {"reference": "Patient?identifier=urn:example:mrn|M-1"}},
            {**condition((ICD10, "R18"), rid="c3"), "subject": {"reference": "https://ehr.example/fhir/Patient/T2/_history/3"}},
            {**condition((ICD10, "R18"), rid="c4"), "subject": {"reference": "Patient/T404"}},
            {**condition((ICD10, "R18"), rid="c5"), "subject": {"reference": "Patient?identifier=urn:example:mrn|nobody"}})
    _ndjson(tmp_path, "Observation.000.ndjson", obs("1975-2", valueQuantity=qty(2.6, "mg/dL")))
    _ndjson(tmp_path, "Organization.000.ndjson", {"resourceType": "Organization", "id": "org1"})
    export = read_bulk_export(tmp_path)
    assert export.patient_ids == ("T1", "T2")
    t1, t2 = list(export)
    assert [c.icd10 for c in t1.profile.conditions] == ["B18.1", "K74.6"]
    assert [o.loinc for o in t1.profile.observations] == ["1975-2"]
    assert [c.icd10 for c in t2.profile.conditions] == ["R18"]
    assert (t2.profile.medications, t2.profile.observations) == (None, [])
    assert [(w.code.value, w.resource_type, w.resource_id, w.where) for w in export.warnings] == [
        ("no_patient", "Organization", "org1", "Organization.000.ndjson line 1"),
        ("no_patient", "Condition", "c5", "Condition.000.ndjson line 6"),
        ("no_patient", "Condition", "c4", "Condition.000.ndjson line 5"),
    ]


@pytest.mark.parametrize("reference", ["Patient?identifier=urn:example:mrn|M-1", "Patient?identifier=urn%3Aexample%3Amrn%7CM-1",
                                       "Patient?identifier=M-1", "Patient?_tag=x&identifier=urn:example:mrn%7CM-1"],
                         ids=["plain", "percent-encoded", "value-only", "second-parameter"])
def test_bulk_conditional_reference_reads_like_in_a_bundle(tmp_path, reference):
    resource = {**condition((ICD10, "B18.1")), "subject": {"reference": reference}}
    _ndjson(tmp_path, "Patient.000.ndjson", PATIENT)
    _ndjson(tmp_path, "Condition.000.ndjson", resource)
    export = read_bulk_export(tmp_path)
    (mapped,) = list(export)
    assert (export.warnings, mapped.warnings) == ((), ())
    assert mapped.profile == bundle_to_profile(bundle(resource)).profile


def test_bulk_medication_reference_reads_like_in_a_bundle(tmp_path):
    """A Medication names no patient: the patients whose requests refer to it read it, as in a Bundle."""
    epivir = {"resourceType": "Medication", "id": "med1", "code": concept(ATC, "J05AF05", display="Epivir-HBV 100 mg"),
              "ingredient": [{"itemCodeableConcept": {"text": "lamivudine"}}]}
    orders = [by_reference({"reference": "Medication/med1"}), {**by_reference({"reference": "Medication/med1"}), "id": "r2"}]
    _ndjson(tmp_path, "Patient.000.ndjson", PATIENT)
    _ndjson(tmp_path, "Medication.000.ndjson", epivir, {**epivir, "code": {"text": "a copy"}},
            {"resourceType": "Medication", "id": "med2", "code": {"text": "Baraclude"}})
    _ndjson(tmp_path, "MedicationRequest.000.ndjson", *orders)
    export = read_bulk_export(tmp_path)
    (mapped,) = list(export)
    assert [(m.name, m.atc, m.ingredients) for m in mapped.profile.medications] == [("Epivir-HBV 100 mg", "J05AF05", ["lamivudine"])] * 2
    assert mapped.warnings == ()
    assert mapped.profile == bundle_to_profile(bundle(epivir, *orders)).profile
    assert [(w.code.value, w.resource_id, w.where) for w in export.warnings] == [
        ("assumption", "med1", "Medication.000.ndjson line 2"), ("no_patient", "med2", "Medication.000.ndjson line 3")]


def test_bulk_line_that_is_not_json_is_named(tmp_path):
    good = json.dumps(condition((ICD10, "B18.1")))
    _ndjson(tmp_path, "Patient.000.ndjson", PATIENT)
    _ndjson(tmp_path, "Condition.000.ndjson", good, good[:40], "", '{"exportId": "x"}', "[" * 100_000, '{"id": ' + "1" * 5000 + "}")
    (tmp_path / "Condition.001.ndjson").write_bytes(b'{"resourceType": "Condition", "id": "\xff"}\n')
    export = read_bulk_export(tmp_path)
    assert [(w.code.value, w.where) for w in export.warnings] == [
        ("not_fhir", "Condition.000.ndjson line 2"), ("not_fhir", "Condition.000.ndjson line 5"),
        ("not_fhir", "Condition.000.ndjson line 6"), ("not_fhir", "Condition.000.ndjson"), ("not_fhir", "Condition.001.ndjson line 1")]
    assert [w.message for w in export.warnings][:2] == ["not valid JSON: Expecting ',' delimiter at column 41: not read",
                                                        "not valid JSON: nested too deeply: not read"]
    assert "4300 digits" in export.warnings[2].message
    assert [w.message for w in export.warnings][3:] == ["1 lines of Condition.000.ndjson are not FHIR resources: not read",
                                                        "not UTF-8 text: not read"]
    assert [c.icd10 for m in export for c in m.profile.conditions] == ["B18.1"]


def test_bulk_invalid_resource_names_file_line_and_field(tmp_path):
    _ndjson(tmp_path, "Patient.000.ndjson", PATIENT)
    _ndjson(tmp_path, "Observation.000.ndjson", obs("1975-2", rid="ok", valueQuantity=qty(2, "mg/dL")),
            obs("1975-2", rid="bad", valueQuantity={"value": "2,6", "code": "mg/dL"}))
    with pytest.raises(PatientDataError) as info:
        list(read_bulk_export(tmp_path))
    assert info.value.field == "valueQuantity.value"
    assert info.value.patient_id == "T1"
    assert "Observation/bad (Observation.000.ndjson line 2) is not valid FHIR R4" in info.value.problem


def test_bulk_malformed_ids_are_warnings(tmp_path):
    _ndjson(tmp_path, "Patient.000.ndjson", PATIENT, {**PATIENT, "id": ["T2"]})
    _ndjson(tmp_path, "Organization.000.ndjson", {"resourceType": "Organization", "id": 5})
    export = read_bulk_export(tmp_path)
    assert export.patient_ids == ("T1",)
    assert [(w.code.value, w.resource_type, w.resource_id, w.where) for w in export.warnings] == [
        ("no_patient", "Organization", None, "Organization.000.ndjson line 1"),
        ("no_patient", "Patient", None, "Patient.000.ndjson line 2"),
    ]


def test_bulk_needs_a_folder_of_ndjson(tmp_path):
    with pytest.raises(PatientDataError, match="no .ndjson files"):
        read_bulk_export(tmp_path)
    with pytest.raises(PatientDataError, match="not a folder"):
        read_bulk_export(tmp_path / "missing")


def test_cli_screens_a_bundle_like_its_native_profile():
    runner = CliRunner()
    args = ["--rules", str(ROOT / "rules"), "--as-of", "2026-11-22", "--format", "json"]
    from_fhir = runner.invoke(app, ["screen", str(BUNDLES[0]), *args])
    from_native = runner.invoke(app, ["screen", str(ROOT / "patients" / "examples" / "P01-jakarta-cpb-si-eligible.json"), *args])
    assert from_fhir.exit_code == 0, from_fhir.output
    assert from_fhir.output == from_native.output


def test_mapped_profile_round_trips_as_json():
    mapped = bundle_to_profile(bundle(obs("29463-7", valueQuantity=qty(70, "kg")), consent()))
    assert MappedProfile.model_validate_json(mapped.model_dump_json()) == mapped
