"""The text renderer: what a coordinator and a hepatologist read, line by line (whole pages are
pinned by the snapshots in tests/snapshots/)."""

from __future__ import annotations

import datetime as dt

import pytest

from screening.render.text import format_evidence
from screening.results import Evidence

D = dt.date(2026, 11, 10)


def lab(fact: str, label: str, unit: str, recorded: str, loinc: str = "0000-0", **values) -> Evidence:
    return Evidence(fact=fact, label=label, unit=unit, date=D, source=f"LOINC {loinc}: {recorded}", **values)


EVIDENCE_LINES = [
    # a converted value shows what was recorded; a value shown as recorded is not repeated
    (lab("lab.bilirubin", "Total bilirubin", "mg/dL", "40 umol/L", value=2.33918, points=2),
     ["Total bilirubin: 2.339 mg/dL on 2026-11-10 -> 2 points (recorded 40 umol/L)"]),
    (lab("lab.albumin", "Albumin", "g/dL", "3.3 g/dL", value=3.3, points=2), ["Albumin: 3.3 g/dL on 2026-11-10 -> 2 points"]),
    (lab("lab.inr", "INR", "1", "1.45", value=1.45, points=1), ["INR: 1.45 on 2026-11-10 -> 1 point"]),
    (lab("lab.albumin", "Albumin", "g/dL", "3.30 g/dL", value=3.3), ["Albumin: 3.3 g/dL on 2026-11-10 (recorded 3.30 g/dL)"]),
    # censored: "<" is below the bound, "<=" at most; ">" above, ">=" at least
    (lab("lab.bilirubin", "Total bilirubin", "mg/dL", "<17 umol/L", high=0.994152, points=1),
     ["Total bilirubin: below 0.9942 mg/dL on 2026-11-10 -> 1 point (recorded <17 umol/L)"]),
    (lab("lab.bilirubin", "Total bilirubin", "mg/dL", "<1 mg/dL", high=1.0, points=1),
     ["Total bilirubin: below 1 mg/dL on 2026-11-10 -> 1 point (recorded <1 mg/dL)"]),
    (lab("lab.hbv_dna", "HBV DNA", "[IU]/mL", "<=20 [IU]/mL", high=20.0), ["HBV DNA: at most 20 [IU]/mL on 2026-11-10 (recorded <=20 [IU]/mL)"]),
    (lab("lab.bilirubin", "Total bilirubin", "mg/dL", ">40 umol/L", low=2.33918),
     ["Total bilirubin: above 2.339 mg/dL on 2026-11-10 (recorded >40 umol/L)"]),
    (lab("lab.albumin", "Albumin", "g/dL", ">=35 g/L", low=3.5), ["Albumin: at least 3.5 g/dL on 2026-11-10 (recorded >=35 g/L)"]),
    # large values in full, never in scientific notation
    (lab("lab.hbv_dna", "HBV DNA", "[IU]/mL", "23456789 [IU]/mL", value=23456789.0), ["HBV DNA: 23456789 [IU]/mL on 2026-11-10"]),
    (lab("lab.platelets", "Platelets", "10*3/uL", "150000 /uL", value=150.0), ["Platelets: 150 10*3/uL on 2026-11-10 (recorded 150000 /uL)"]),
    # a prothrombin time is shown with its control
    (lab("lab.prothrombin_time", "Prothrombin time prolongation over control", "s", "16 s, control 11.5 s", value=4.5, points=2),
     ["Prothrombin time prolongation over control: 4.5 s on 2026-11-10 -> 2 points (recorded 16 s, control 11.5 s)"]),
    # a condition's date is its onset, a medication's its start; the status as words
    (Evidence(fact="condition", label="Ascites", value="R18", date=dt.date(2026, 9, 3), source="condition active"),
     ["Ascites: R18, onset 2026-09-03 (active)"]),
    (Evidence(fact="condition", label="HCC", value="C22.0", date=dt.date(2020, 1, 1), source="condition resolved 2022-01-01"),
     ["HCC: C22.0, onset 2020-01-01 (resolved 2022-01-01)"]),
    (Evidence(fact="condition", label="T2DM", value="E11.9", source="condition inactive"), ["T2DM: E11.9 (inactive)"]),
    (Evidence(fact="medication", label="Baraclude 0.5 mg", value="J05AF10", date=dt.date(2019, 8, 1), source="medication on_hold"),
     ["Baraclude 0.5 mg: J05AF10, started 2019-08-01 (on hold)"]),
    (Evidence(fact="medication", label="Baraclude 0.5 mg", value="J05AF10", date=dt.date(2025, 3, 3), source="medication stopped, ended 2026-06-15"),
     ["Baraclude 0.5 mg: J05AF10, started 2025-03-03 (stopped, ended 2026-06-15)"]),
    # a procedure named by its kind alone is not named twice
    (Evidence(fact="procedure", label="haemodialysis", value="haemodialysis", date=dt.date(2026, 11, 8), source="procedure"),
     ["haemodialysis on 2026-11-08"]),
    (Evidence(fact="procedure", label="Living-donor liver transplantation", value="liver_transplant", date=dt.date(2021, 3, 15), source="procedure"),
     ["Living-donor liver transplantation: liver_transplant on 2021-03-15"]),
    # coded words read as words
    (Evidence(fact="consent", label="Consent", value="not_asked", source="consent"), ["Consent: not asked"]),
    (Evidence(fact="imaging", label="ultrasound", value="ascites, cirrhosis, liver_mass", date=D, source="imaging report: Nodular liver."),
     ["ultrasound: ascites, cirrhosis, liver mass on 2026-11-10"]),
    # a study without coded findings: its report is what a reader has to go on
    (Evidence(fact="imaging", label="ultrasound", value="findings not coded", date=D, source="imaging report: Nodular liver, coarse echotexture."),
     ["ultrasound: findings not coded on 2026-11-10", '  report: "Nodular liver, coarse echotexture."']),
    (Evidence(fact="imaging", label="ct", value="findings not coded", date=D, source="imaging report"), ["ct: findings not coded on 2026-11-10"]),
    # an age shows the birth date it was computed from
    (Evidence(fact="age", label="Age", value=18, unit="a", source="birth_date: 2008-11-22"), ["Age: 18 years (born 2008-11-22)"]),
    # a score: its range when an input is missing, its parts below it
    (Evidence(fact="child_pugh.score", label="Child-Pugh score", low=8.0, high=10.0, parts=(
        Evidence(fact="assessment.ascites_grade", label="Ascites grade", value=1, date=D, source="assessment", points=2),)),
     ["Child-Pugh score: 8-10", "  Ascites grade: 1 on 2026-11-10 -> 2 points"]),
]


@pytest.mark.parametrize(("evidence", "lines"), EVIDENCE_LINES, ids=lambda v: v.label if isinstance(v, Evidence) else "")
def test_evidence_lines(evidence, lines):
    assert format_evidence(evidence) == lines

