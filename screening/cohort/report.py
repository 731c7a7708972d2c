"""Cohort reports a coordinator and a trial manager can read (HTML with charts, and Markdown).

Per trial: counts by verdict; an attrition funnel (criteria in the rules file's order, how many
patients remain after each, like OHDSI ATLAS's inclusion-rule attrition) with, per criterion,
the patients it excludes and the patients for whom it is unknown; and a near-miss worklist:
patients ineligible by exactly one criterion, and undetermined ones missing exactly one item
("INR ... missing: everything else passes"), the patients worth a phone call or a lab order.
Built from the results ``screening screen-cohort`` writes, so a report can be made later.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: charts are rendered to PNG
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..errors import ScreeningError, UnknownTrialError  # noqa: E402
from ..logic import CriterionKind, Outcome  # noqa: E402
from ..rules.loader import RuleSet  # noqa: E402
from .run import COLUMNS  # noqa: E402

VERDICT_ORDER = ["eligible", "undetermined", "ineligible", "error"]
VERDICT_COLOURS = {"eligible": "#2e7d32", "undetermined": "#f9a825", "ineligible": "#c62828", "error": "#757575"}


@dataclass(frozen=True)
class FunnelStep:
    criterion: str
    kind: str
    text: str
    excluded: int  # patients this criterion fails, whatever the others say
    unknown: int  # patients for whom it is unknown
    removed: int  # patients it is the first (in file order) to fail
    remaining: int  # patients not failed by this or any earlier criterion


@dataclass(frozen=True)
class TrialReport:
    trial_id: str
    title: str
    verdicts: dict[str, int]
    screened: int
    funnel: list[FunnelStep]
    near_miss_ineligible: pd.DataFrame  # patient_id, criterion, text
    near_miss_undetermined: pd.DataFrame  # patient_id, criterion, missing


def _outcomes(results: pd.DataFrame) -> pd.DataFrame:
    parsed = [dict(item.split("=", 1) for item in str(text).split(";") if "=" in item) for text in results["criteria"]]
    return pd.DataFrame(parsed, index=results.index)


def build(results: pd.DataFrame, rules: RuleSet) -> list[TrialReport]:
    """One report per trial present in ``results``, in trial id order."""
    absent = [c for c in COLUMNS if c != "error" and c not in results.columns]  # the reasons ("error") are not reported
    if absent:
        raise ScreeningError(f"not cohort results: no column {', '.join(absent)}")
    unknown = sorted(set(results["trial_id"].dropna()) - set(rules.trials))
    if unknown:
        raise UnknownTrialError(unknown)
    results = results.fillna("")
    reports = []
    for trial_id in sorted(results["trial_id"].unique()):
        rows = results[results["trial_id"] == trial_id]
        trial = rules.trials[trial_id].trial
        verdicts = {v: int((rows["verdict"] == v).sum()) for v in VERDICT_ORDER}
        screened = rows[rows["verdict"] != "error"]
        outcomes = _outcomes(screened)
        failed_before = pd.Series(False, index=screened.index)
        funnel = []
        for criterion in trial.criteria:
            column = outcomes.get(criterion.id, pd.Series("", index=screened.index))
            failing = column == (Outcome.NOT_MET.value if criterion.kind is CriterionKind.INCLUSION else Outcome.MET.value)
            removed = failing & ~failed_before
            failed_before = failed_before | failing
            funnel.append(FunnelStep(criterion.id, criterion.kind.value, criterion.text, int(failing.sum()),
                                     int((column == Outcome.UNKNOWN.value).sum()), int(removed.sum()), int((~failed_before).sum())))
        texts = {c.id: c.text for c in trial.criteria}
        single = screened[(screened["verdict"] == "ineligible") & ~screened["deciding"].str.contains(";")]
        near_ineligible = pd.DataFrame({"patient_id": single["patient_id"], "criterion": single["deciding"],
                                        "text": single["deciding"].map(texts)}).reset_index(drop=True)
        one_missing = screened[(screened["verdict"] == "undetermined") & (screened["missing"] != "") & ~screened["missing"].str.contains(";")]
        near_undetermined = pd.DataFrame({"patient_id": one_missing["patient_id"], "criterion": one_missing["unknown"],
                                          "missing": one_missing["missing"]}).reset_index(drop=True)
        reports.append(TrialReport(trial_id, trial.title, verdicts, len(screened), funnel, near_ineligible, near_undetermined))
    return reports


def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def verdict_chart(report: TrialReport) -> bytes:
    figure, axis = plt.subplots(figsize=(6, 2.2))
    labels = [v for v in VERDICT_ORDER if report.verdicts[v] or v != "error"]
    axis.barh(labels, [report.verdicts[v] for v in labels], color=[VERDICT_COLOURS[v] for v in labels])
    axis.invert_yaxis()
    axis.set_xlabel("patients")
    axis.set_title(f"{report.trial_id}: verdicts")
    for y, value in enumerate(report.verdicts[v] for v in labels):
        axis.text(value, y, f" {value}", va="center")
    return _png(figure)


def funnel_chart(report: TrialReport) -> bytes:
    figure, axis = plt.subplots(figsize=(7, 0.45 * len(report.funnel) + 1.2))
    labels = ["screened"] + [f"{s.criterion} ({s.kind[:3]})" for s in report.funnel]
    values = [report.screened] + [s.remaining for s in report.funnel]
    unknown = [0] + [s.unknown for s in report.funnel]
    axis.barh(labels, values, color="#1565c0", label="remaining (not failed)")
    axis.barh(labels, unknown, left=0, color="#f9a825", alpha=0.55, label="unknown at this criterion")
    axis.invert_yaxis()
    axis.set_xlabel("patients")
    axis.set_title(f"{report.trial_id}: attrition in the rules file's order")
    axis.legend(loc="lower right", fontsize=8)
    for y, value in enumerate(values):
        axis.text(value, y, f" {value}", va="center", fontsize=8)
    return _png(figure)


def _table_md(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_none_\n"
    header = "| " + " | ".join(frame.columns) + " |\n| " + " | ".join("---" for _ in frame.columns) + " |\n"
    return header + "".join("| " + " | ".join(str(v).replace("|", "/") for v in row) + " |\n" for row in frame.itertuples(index=False))


def _funnel_frame(report: TrialReport) -> pd.DataFrame:
    return pd.DataFrame([{"criterion": s.criterion, "kind": s.kind, "excluded": s.excluded, "unknown": s.unknown,
                          "first to exclude": s.removed, "remaining": s.remaining, "text": s.text} for s in report.funnel])


def write_reports(results: pd.DataFrame, rules: RuleSet, folder: str | Path, as_of: str) -> tuple[Path, Path]:
    """Write ``report.html`` (charts embedded) and ``report.md`` (charts as PNG files beside it)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    reports = build(results, rules)
    patients = int(results.groupby("trial_id").size().max()) if len(results) else 0  # one row per patient and trial
    md = [f"# Cohort screening report\n\nScreening date {as_of}; {patients} patients.\n"]
    body = [f"<h1>Cohort screening report</h1><p>Screening date {html.escape(as_of)}; {patients} patients.</p>"]
    for report in reports:
        charts = {"verdicts": verdict_chart(report), "funnel": funnel_chart(report)}
        for name, png in charts.items():
            (folder / f"{report.trial_id}-{name}.png").write_bytes(png)
        counts = ", ".join(f"{v} {n}" for v, n in report.verdicts.items())
        md += [f"\n## {report.trial_id}: {report.title}\n\n{counts}\n",
               f"\n![verdicts]({report.trial_id}-verdicts.png)\n\n### Attrition\n\n![funnel]({report.trial_id}-funnel.png)\n\n",
               _table_md(_funnel_frame(report)),
               "\n### Near misses: ineligible by exactly one criterion\n\n", _table_md(report.near_miss_ineligible),
               "\n### Near misses: undetermined, one item missing (everything else passes)\n\n", _table_md(report.near_miss_undetermined)]
        embed = {k: base64.b64encode(v).decode() for k, v in charts.items()}
        body += [f"<h2>{html.escape(report.trial_id)}: {html.escape(report.title)}</h2><p>{html.escape(counts)}</p>",
                 f'<img alt="verdicts" src="data:image/png;base64,{embed["verdicts"]}">',
                 "<h3>Attrition</h3>", f'<img alt="attrition funnel" src="data:image/png;base64,{embed["funnel"]}">',
                 _funnel_frame(report).to_html(index=False, escape=True),
                 "<h3>Near misses: ineligible by exactly one criterion</h3>", report.near_miss_ineligible.to_html(index=False, escape=True),
                 "<h3>Near misses: undetermined, one item missing (everything else passes)</h3>",
                 report.near_miss_undetermined.to_html(index=False, escape=True)]
    html_path, md_path = folder / "report.html", folder / "report.md"
    style = "body{font-family:sans-serif;max-width:960px;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;font-size:90%}"
    html_path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>Cohort screening report</title><style>{style}</style></head><body>{''.join(body)}</body></html>", encoding="utf-8")
    md_path.write_text("".join(md), encoding="utf-8")
    return html_path, md_path
