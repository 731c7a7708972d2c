"""Cohort reports: verdict counts, attrition funnel, near-miss worklists, HTML and Markdown output."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from html.parser import HTMLParser

import pandas as pd
import pytest
from typer.testing import CliRunner

from screening.cli import app
from screening.errors import ScreeningError
from screening.cohort import read_cohort, screen_cohort
from screening.cohort import report as report_module
from screening.cohort.flat import CSV_OPTIONS
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
    assert report.near_miss_ineligible[["patient_id", "failed criterion"]].values.tolist() == [
        ["F03", "E5"], ["F04", "I2"], ["F05", "I2"], ["F08", "E2"], ["F11", "E4"], ["F12", "E7"]]
    assert report.near_miss_undetermined.values.tolist() == [["F06", "I2", "INR or prothrombin time with control (last 90 days)"]]


def test_reports_are_written_with_charts(rules, tmp_path):
    html_path, md_path = write_reports(_results(rules), rules, tmp_path, AS_OF)
    page = html_path.read_text()
    assert page.count('src="data:image/png;base64,') == 4  # verdicts and funnel, two trials
    assert re.findall(r'src="(?!data:image/png;base64,)', page) == []  # nothing fetched: the page is self-contained
    assert all((tmp_path / href).is_file() for href in re.findall(r'href="([^"]+)"', page))  # links: the worklists beside it
    assert "Near misses" in page and "F06" in page
    markdown = md_path.read_text()
    assert "![attrition funnel](NCT04357600-funnel.png)" in markdown
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


@pytest.mark.parametrize(("drop_as_of", "option", "stated"), [
    (False, [], "Screening date 2026-11-22;"),  # the results say when they were screened
    (False, ["--as-of", "2026-11-22"], "Screening date 2026-11-22;"),
    (True, ["--as-of", "2026-11-22"], "Screening date 2026-11-22;"),  # results written before the column: as given
    (True, [], "Screening date not stated;"),
])
def test_the_report_states_the_screening_date_the_results_record(tmp_path, drop_as_of, option, stated):
    results = tmp_path / "results.csv"
    screened = CliRunner().invoke(app, ["screen-cohort", str(FLAT), "--out", str(results), "--rules", str(RULES_DIR), "--as-of", "2026-11-22"])
    assert screened.exit_code == 0, screened.output
    if drop_as_of:
        pd.read_csv(results, dtype=str, keep_default_na=False).drop(columns="as_of").to_csv(results, index=False)
    made = CliRunner().invoke(app, ["report", str(results), "--out", str(tmp_path / "report"), "--rules", str(RULES_DIR), *option])
    assert made.exit_code == 0, made.output
    assert stated in (tmp_path / "report" / "report.md").read_text()


def test_the_report_refuses_a_screening_date_the_results_contradict(tmp_path):
    results = tmp_path / "results.csv"
    CliRunner().invoke(app, ["screen-cohort", str(FLAT), "--out", str(results), "--rules", str(RULES_DIR), "--as-of", "2026-11-22"])
    made = CliRunner().invoke(app, ["report", str(results), "--out", str(tmp_path / "report"), "--rules", str(RULES_DIR), "--as-of", "2020-01-01"])
    assert made.exit_code == 2
    assert f"{results}: the results were screened as of 2026-11-22, not 2020-01-01" in " ".join(made.output.split())
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("as_of", ["banana", "2026-11-31", "20261122"])
def test_report_cli_refuses_a_screening_date_that_is_no_date(tmp_path, as_of):
    result = CliRunner().invoke(app, ["report", str(FLAT), "--out", str(tmp_path / "report"), "--rules", str(RULES_DIR), "--as-of", as_of])
    assert result.exit_code == 2
    assert f"--as-of: not a date in YYYY-MM-DD form: {as_of!r}" in result.output
    assert not (tmp_path / "report").exists()


HEADER = "patient_id,trial_id,verdict,deciding,unknown,missing,criteria,error\n"


@pytest.mark.parametrize(("rows", "message"), [
    ("patient_id,verdict\nP1,eligible\n", "not cohort results: no column trial_id, deciding, unknown, missing, criteria"),
    ("patient_id,trial_id,verdict,deciding,unknown,missing,criteria,error\nP1,NCT99999999,eligible,,,,I1=met,\n",
     "unknown trial(s): NCT99999999"),
    ("", "cannot be read: No columns to parse from file"),
    (b"\xff\xfe\x00", "cannot be read: 'utf-8' codec can't decode byte 0xff"),
    (f"{HEADER}P1,,eligible,,,,I1=met;I2=met,\nP2,,eligible,,,,I1=met;I2=met,\n", "no trial_id on 2 rows (the first: row 1)"),
    (f"{HEADER}P1,NCT03945487,eligible,,,,I1=met;I2=met,\nP1,NCT03945487,Eligible,,,,I1=met;I2=met,\n",
     "verdict 'Eligible' (on 1 row, the first: row 2) is not one of eligible, undetermined, ineligible, error"),
    (f"{HEADER}P1,NCT03945487,eligible,,,,I1=met;I3=met,\n",
     "NCT03945487: the results list criteria I1, I3 but the rules have I1, I2: were they screened with other rules?"),
    (f"{HEADER}P1,NCT03945487,eligible,,,,I1=met;I2=maybe,\n",
     "NCT03945487: criterion I2 outcome 'maybe' is not one of met, not_met, unknown, not_applicable"),
])
def test_report_cli_names_what_is_wrong_with_the_results_file(tmp_path, rows, message):
    results = tmp_path / "results.csv"
    results.write_bytes(rows if isinstance(rows, bytes) else rows.encode())
    result = CliRunner().invoke(app, ["report", str(results), "--out", str(tmp_path / "report"), "--rules", str(RULES_DIR)])
    assert result.exit_code == 2
    assert f"{results}: {message}" in " ".join(result.output.split())


# A hand-made cohort for NCT04357600: the flat sample's F01 (eligible) with these cells changed.
HAND = [
    ("H01", {}),                                                          # eligible
    ("H02", {"birth_date": "1950-01-01", "inr": None}),                   # fails I1; I2 unknown (no INR)
    ("H03", {"birth_date": "1950-01-01", "conditions": "B18.1;K74.6;E11.9"}),  # fails I1 and E5
    ("H04", {"consent": None, "medications": None}),                      # undetermined: two items missing
    ("H05", {"conditions": None}),                                        # one item missing, unknown at E2, E3, E5, E6, E7
    ("H06", {"sex": "female", "childbearing_potential": "true", "lactating": "false"}),  # E4 applies, no hCG
    ("H07", {"sex": "female", "lactating": "false", "hcg": "negative", "hcg_date": "2026-11-20"}),  # E4 passes either way
    ("H08", {"bilirubin_unit": "mg/dX"}),                                 # error row
    ("H01", {"procedures": "liver_transplant"}),                          # the same id again: fails E7
    ("H10", {"inr": None, "conditions": "B18.1;K74.6;C22.0"}),            # fails E2; I2 unknown
    ("H11", {"sex": "female", "childbearing_potential": "true", "lactating": "true", "consent": None}),  # fails E4; E1 unknown
]


def _hand_results(rules, cohort=HAND):
    base = pd.read_csv(FLAT, **CSV_OPTIONS).iloc[0].to_dict()
    frame = pd.DataFrame([{**base, "id": pid, **changes} for pid, changes in cohort]).astype(object)
    frame = frame.where(frame.notna(), None)
    return pd.concat(screen_cohort([frame], rules, AS_OF, ["NCT04357600"]), ignore_index=True)


def test_funnel_and_near_misses_of_a_hand_made_cohort(rules):
    [report] = build(_hand_results(rules), rules)
    assert report.verdicts == {"eligible": 2, "undetermined": 3, "ineligible": 5, "error": 1}
    assert (report.screened, report.duplicates) == (10, 1)
    # criterion, fails, unknown, first to exclude, remaining, remaining with an unknown so far
    assert [(s.criterion, s.excluded, s.unknown, s.removed, s.remaining, s.remaining_unknown) for s in report.funnel] == [
        ("I1", 2, 0, 2, 8, 0), ("I2", 0, 2, 0, 8, 1), ("I3", 0, 0, 0, 8, 1), ("I4", 0, 1, 0, 8, 2), ("E1", 0, 2, 0, 8, 3),
        ("E2", 1, 1, 1, 7, 3), ("E3", 0, 1, 0, 7, 3), ("E4", 1, 1, 1, 6, 3), ("E5", 1, 1, 0, 6, 3), ("E6", 0, 1, 0, 6, 3),
        ("E7", 1, 1, 1, 5, 3),
    ]
    last = report.funnel[-1]
    assert (last.remaining - last.remaining_unknown, last.remaining_unknown) == (report.verdicts["eligible"], report.verdicts["undetermined"])
    # patients who pass every other criterion first, then those with other criteria unknown
    assert report.near_miss_ineligible.values.tolist() == [["H01", "E7", ""], ["H02", "I1", "I2"], ["H10", "E2", "I2"], ["H11", "E4", "E1"]]
    assert list(report.near_miss_ineligible.columns) == ["patient_id", "failed criterion", "also unknown"]
    assert report.near_miss_undetermined.values.tolist() == [
        ["H05", "E2;E3;E5;E6;E7", "problem list (conditions not reviewed)"], ["H06", "E4", "hCG pregnancy test (last 30 days)"]]
    assert list(report.near_miss_undetermined.columns) == ["patient_id", "unknown criteria", "missing item"]


def test_a_criterion_no_call_can_change_keeps_the_patients_it_alone_excludes_off_the_worklist(rules, tmp_path):
    """E1 (refuses to take part) is marked near_miss: false: a patient who refused is counted, not
    listed for a call; one whom age alone excludes is still a near miss."""
    assert [c.id for c in rules.trials["NCT04357600"].trial.criteria if not c.near_miss] == ["E1"]
    results = _hand_results(rules, [("R1", {"consent": "refused"}), ("R2", {"birth_date": "1950-01-01"}),
                                    ("R3", {"consent": "refused", "birth_date": "1950-01-01"})])
    [report] = build(results, rules)
    assert report.verdicts["ineligible"] == 3
    assert report.near_miss_ineligible.values.tolist() == [["R2", "I1", ""]]
    assert report.not_listed == {"E1": 1}
    _, md_path = write_reports(results, rules, tmp_path, AS_OF)
    assert "Not listed: the patients a criterion no call or order can change (the rules mark it near\\_miss: false) alone excludes (E1 1)." \
        in md_path.read_text()


class _Blocks(HTMLParser):
    """Headings, paragraphs and table rows of an HTML page, as text."""

    def __init__(self):
        super().__init__()
        self.blocks, self._text, self._cells = [], None, None

    def handle_starttag(self, tag, attrs):
        if tag in ("h1", "h2", "h3", "p", "td", "th"):
            self._text = ""
        elif tag == "tr":
            self._cells = []

    def handle_data(self, data):
        if self._text is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._cells.append(self._text.strip())
            self._text = None
        elif tag == "tr":
            self.blocks.append(" | ".join(self._cells))
        elif tag in ("h1", "h2", "h3", "p") and self._text is not None:
            self.blocks.append(self._text.strip())
            self._text = None


def _markdown_blocks(markdown):
    """The same from Markdown (escapes and link targets dropped; table rules skipped)."""
    blocks = []
    for line in markdown.splitlines():
        if not line.strip() or line.startswith("![") or line.startswith("| ---"):
            continue
        line = re.sub(r"\[([^]]*)\]\([^)]*\)", r"\1", line)
        line = line.lstrip("#").strip()
        if line.startswith("|"):
            line = " | ".join(cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1])
        blocks.append(re.sub(r"\\(.)", r"\1", line))
    return blocks


def test_markdown_and_html_say_the_same(rules, tmp_path):
    html_path, md_path = write_reports(_hand_results(rules), rules, tmp_path, AS_OF)
    parser = _Blocks()
    parser.feed(html_path.read_text())
    assert parser.blocks == _markdown_blocks(md_path.read_text())
    assert "Trials of the rules not in these results: NCT03945487." in parser.blocks
    assert "1 patient id is on more than one row (each row is counted)." in parser.blocks
    assert "failed criterion | patients | passing every other criterion | criterion text" in parser.blocks
    assert f"E7 | 1 | 1 | {rules.trials['NCT04357600'].trial.criteria[-1].text}" in parser.blocks
    assert "remaining with an unknown" in parser.blocks[parser.blocks.index("Attrition") + 1]


def test_long_near_miss_lists_are_cut_in_the_report_and_whole_beside_it(rules, tmp_path, monkeypatch):
    monkeypatch.setattr(report_module, "SHOWN", 2)
    results = _hand_results(rules)
    html_path, md_path = write_reports(results, rules, tmp_path, AS_OF)
    [report] = build(results, rules)
    for name, frame in (("ineligible", report.near_miss_ineligible), ("undetermined", report.near_miss_undetermined)):
        written = pd.read_csv(tmp_path / f"NCT04357600-near-miss-{name}.csv", dtype=str, keep_default_na=False)
        assert written.values.tolist() == frame.values.tolist()
    markdown = md_path.read_text()
    assert "4 patients, the first 2 shown; all in [NCT04357600-near-miss-ineligible.csv](NCT04357600-near-miss-ineligible.csv)" in markdown
    assert "H10" not in markdown and "H10" not in html_path.read_text()
    assert 'href="NCT04357600-near-miss-ineligible.csv"' in html_path.read_text()


def _marked_rules(rules):
    """NCT04357600 with markup in its title and in E2's text."""
    loaded = rules.trials["NCT04357600"]
    criteria = [c.model_copy(update={"text": "<script>alert(1)</script> | *E2*"}) if c.id == "E2" else c for c in loaded.trial.criteria]
    trial = loaded.trial.model_copy(update={"title": "<img src=x onerror=alert(2)>", "criteria": criteria})
    return replace(rules, trials={**rules.trials, "NCT04357600": replace(loaded, trial=trial)})


@pytest.mark.parametrize("markup", ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>", "<b>H10</b>"])
def test_markup_in_ids_and_rules_texts_is_shown_as_text(rules, tmp_path, markup):
    marked = _marked_rules(rules)
    results = _hand_results(marked, [(f"<b>{pid}</b>" if pid == "H10" else pid, changes) for pid, changes in HAND])
    html_path, md_path = write_reports(results, marked, tmp_path, AS_OF)
    assert markup not in html_path.read_text() and html.escape(markup, quote=False) in html_path.read_text()
    assert markup not in md_path.read_text() and re.sub(r"([<>*|_])", r"\\\1", markup) in md_path.read_text()


def test_empty_cells_of_parquet_results_read_as_empty(rules, tmp_path):
    results = _hand_results(rules)
    nulls = results.copy()
    for column in ("deciding", "unknown", "missing", "error"):
        nulls[column] = nulls[column].astype(object).where(nulls[column].astype(str) != "", None).astype("category")
    nulls.to_parquet(tmp_path / "results.parquet")
    assert _whole(build(pd.read_parquet(tmp_path / "results.parquet"), rules)) == _whole(build(results, rules))


def _whole(reports):
    return [(r.verdicts, r.funnel, r.duplicates, r.near_miss_ineligible.values.tolist(), r.near_miss_undetermined.values.tolist()) for r in reports]


def test_results_record_the_rules_hash_of_each_trial(rules):
    results = _results(rules)
    assert list(results.columns[:3]) == ["patient_id", "trial_id", "rules_hash"]
    assert {str(t): {str(h)} for t, h in zip(results["trial_id"], results["rules_hash"])} == {t: {rules.trials[t].rules_hash} for t in rules.trials}


def test_results_screened_with_other_rules_of_the_same_criterion_ids_are_refused(rules, tmp_path):
    """A rules change that keeps every criterion id (here the upper age limit) used to go unseen."""
    import shutil

    from screening import load_rules

    changed = tmp_path / "rules"
    shutil.copytree(RULES_DIR, changed)
    trial = changed / "NCT04357600.yaml"
    text = trial.read_text()
    assert "{type: range, fact: age, min: 18, max: 65}" in text
    trial.write_text(text.replace("{type: range, fact: age, min: 18, max: 65}", "{type: range, fact: age, min: 18, max: 70}"))
    other = load_rules(changed)
    with pytest.raises(ScreeningError, match=rf"NCT04357600: the results were screened with rules {rules.trials['NCT04357600'].rules_hash}, "
                                             rf"not the loaded {other.trials['NCT04357600'].rules_hash}"):
        build(_results(rules), other)
    build(_results(rules).drop(columns="rules_hash"), other)  # results without the column (older runs) are still read
