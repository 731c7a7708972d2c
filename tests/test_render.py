"""The text renderer: what a coordinator and a hepatologist read, line by line (whole pages are
pinned by the snapshots in tests/snapshots/)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from rich.console import Console

from screening import load_patient, screen
from screening.render.text import format_evidence, render_text
from screening.results import Evidence

from .conftest import AS_OF, ROOT

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


# -- the page: verdict line, table, missing data -----------------------------------------------------

def _page(rules, stem: str, width: int = 120, trial: str = "NCT04357600", **changes) -> list[str]:
    out = io.StringIO()
    profile = load_patient(ROOT / "patients" / "examples" / f"{stem}.json").model_copy(update=changes)
    result = screen(profile, rules, as_of=AS_OF, trials=[trial])
    render_text(result, Console(file=out, width=width, color_system=None))
    return out.getvalue().splitlines()


@pytest.mark.parametrize(("stem", "verdict"), [
    ("P01-jakarta-cpb-si-eligible", "Verdict: ELIGIBLE   rules"),
    ("P13-jakarta-liver-transplant-ineligible", "Verdict: INELIGIBLE (decided by I2, I3, E7)   rules"),
    ("P11-beijing-inr-missing-undetermined", "Verdict: UNDETERMINED (unknown: I2)   rules"),
    ("P18-beijing-incomplete-referral-undetermined", "Verdict: UNDETERMINED (unknown: I1, I2, I3, E1, E2)   rules"),
])
def test_the_verdict_line_names_the_criteria_that_decide_it_or_leave_it_open(rules, stem, verdict):
    assert [line for line in _page(rules, stem) if line.startswith("Verdict:")][0].startswith(verdict)


@pytest.mark.parametrize(("stem", "missing"), [
    ("P11-beijing-inr-missing-undetermined", ["Missing data that would decide it: INR or prothrombin time with control (last 90 days) (for I2)"]),
    # each item once, with every criterion it decides, in the table's order
    ("P17-jakarta-conditions-not-reviewed-undetermined", [
        "Missing data that would decide it:",
        "  - problem list (conditions not reviewed) (for E2, E3, E5, E6, E7)",
        "  - hCG pregnancy test (last 30 days) (for E4)",
        "  - lactating (for E4)"]),
    ("P18-beijing-incomplete-referral-undetermined", [
        "Missing data that would decide it:",
        "  - birth date (for I1)",
        "  - Ascites grade (last 90 days) (for I2)",
        "  - Encephalopathy grade (last 90 days) (for I2)",
        "  - ultrasound (last 6 months) (for I3)",
        "  - consent (for E1)",
        "  - imaging (last 6 months) (for E2)"]),
])
def test_missing_data_is_listed_once_per_item_with_the_criteria_it_decides(rules, stem, missing):
    page = _page(rules, stem)
    start = next(i for i, line in enumerate(page) if line.startswith("Missing data"))
    assert page[start:start + len(missing)] == missing
    assert len(page) == start + len(missing) or not page[start + len(missing)].startswith("  - ")


def test_a_wrapped_evidence_line_stays_indented_under_its_criterion(rules):
    page = _page(rules, "P13-jakarta-liver-transplant-ineligible", trial="NCT03945487")
    at = next(i for i, line in enumerate(page) if "Cirrhosis of liver (hepatitis B), explanted" in line)
    assert page[at + 1].split("│")[3].startswith("   2021-03-15)")  # under the evidence, not under the reason


@pytest.mark.parametrize("width", [60, 80])
def test_a_narrow_terminal_puts_the_outcome_under_the_criterion_and_keeps_every_line_within_it(rules, width):
    page = _page(rules, "P18-beijing-incomplete-referral-undetermined", width=width)
    assert all(len(line) <= width for line in page)
    header = next(line for line in page if line.startswith("┃ Criterion"))
    assert "Outcome" not in header and "Why" in header
    row = next(i for i, line in enumerate(page) if line.startswith("│ I2 inclusion"))
    assert page[row + 1].split("│")[1].strip() == "unknown"
    bilirubin = next(i for i, line in enumerate(page) if "Total bilirubin:" in line)
    continued = page[bilirubin + 1].split("│")[2]
    assert continued.startswith("     ") and continued.strip()  # the wrapped part stays under the score's part


def test_a_notice_comes_before_any_verdict(rules):
    page = _page(rules, "P01-jakarta-cpb-si-eligible", deceased=dt.date(2016, 4, 5))
    assert page[:2] == ["Patient P01   screened as of 2026-11-22   engine 0.1.0",
                        "Check before contacting: the patient is recorded as deceased on 2016-04-05"]
