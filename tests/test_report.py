"""Cohort reports: verdict counts, attrition funnel, near-miss worklists, HTML and Markdown output."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from screening.cli import app
from screening.cohort import read_cohort, screen_cohort
from screening.cohort.report import build, write_reports

from .conftest import AS_OF, ROOT, RULES_DIR

FLAT = ROOT / "patients" / "cohorts" / "flat-sample.csv"


def _results(rules):
    return pd.concat(screen_cohort(read_cohort(FLAT), rules, AS_OF), ignore_index=True)


def test_funnel_and_near_misses_of_the_flat_sample(rules):
    report = next(r for r in build(_results(rules), rules) if r.trial_id == "NCT04357600")
    assert report.verdicts == {"eligible": 2, "undetermined": 2, "ineligible": 6, "error": 2}
    assert report.screened == 10
    assert [(s.criterion, s.excluded, s.unknown, s.removed, s.remaining) for s in report.funnel] == [
        ("I1", 0, 0, 0, 10), ("I2", 2, 1, 2, 8), ("I3", 0, 0, 0, 8), ("I4", 0, 1, 0, 8), ("E1", 0, 1, 0, 8),
        ("E2", 1, 0, 1, 7), ("E3", 0, 0, 0, 7), ("E4", 1, 0, 1, 6), ("E5", 1, 0, 1, 5), ("E6", 0, 0, 0, 5), ("E7", 1, 0, 1, 4),
    ]
    assert report.funnel[-1].remaining == report.verdicts["eligible"] + report.verdicts["undetermined"]
    assert report.near_miss_ineligible[["patient_id", "criterion"]].values.tolist() == [
        ["F03", "E5"], ["F04", "I2"], ["F05", "I2"], ["F08", "E2"], ["F11", "E4"], ["F12", "E7"]]
    assert report.near_miss_undetermined.values.tolist() == [["F06", "I2", "INR or prothrombin time with control (last 90 days)"]]


def test_reports_are_written_with_charts(rules, tmp_path):
    html_path, md_path = write_reports(_results(rules), rules, tmp_path, AS_OF.isoformat())
    page = html_path.read_text()
    assert page.count('src="data:image/png;base64,') == 4  # verdicts and funnel, two trials
    assert "Near misses" in page and "F06" in page
    markdown = md_path.read_text()
    assert "![funnel](NCT04357600-funnel.png)" in markdown
    for trial in ("NCT03945487", "NCT04357600"):
        for chart in ("verdicts", "funnel"):
            assert (tmp_path / f"{trial}-{chart}.png").read_bytes().startswith(b"\x89PNG")


def test_report_cli_from_a_results_file(tmp_path):
    results = tmp_path / "results.parquet"
    runner = CliRunner()
    screened = runner.invoke(app, ["screen-cohort", str(FLAT), "--out", str(results), "--rules", str(RULES_DIR), "--as-of", "2026-11-22",
                                   "--report", str(tmp_path / "now")])
    assert screened.exit_code == 0, screened.output
    assert (tmp_path / "now" / "report.html").exists()
    later = runner.invoke(app, ["report", str(results), "--out", str(tmp_path / "later"), "--rules", str(RULES_DIR), "--as-of", "2026-11-22"])
    assert later.exit_code == 0, later.output
    assert (tmp_path / "later" / "report.md").read_text() == (tmp_path / "now" / "report.md").read_text()


@pytest.mark.parametrize(("rows", "message"), [
    ("patient_id,verdict\nP1,eligible\n", "not cohort results: no column trial_id, deciding, unknown, missing, criteria"),
    ("patient_id,trial_id,verdict,deciding,unknown,missing,criteria,error\nP1,NCT99999999,eligible,,,,I1=met,\n",
     "unknown trial(s): NCT99999999"),
    ("", "cannot be read: No columns to parse from file"),
    (b"\xff\xfe\x00", "cannot be read: 'utf-8' codec can't decode byte 0xff"),
])
def test_report_cli_names_what_is_wrong_with_the_results_file(tmp_path, rows, message):
    results = tmp_path / "results.csv"
    results.write_bytes(rows if isinstance(rows, bytes) else rows.encode())
    result = CliRunner().invoke(app, ["report", str(results), "--out", str(tmp_path / "report"), "--rules", str(RULES_DIR)])
    assert result.exit_code == 2
    assert f"{results}: {message}" in " ".join(result.output.split())
