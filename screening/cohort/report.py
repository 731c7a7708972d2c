"""Cohort reports a coordinator and a trial manager can read (HTML with charts, and Markdown).

Per trial: counts by verdict; an attrition funnel (criteria in the rules file's order, how many
patients remain after each, like OHDSI ATLAS's inclusion-rule attrition) with, per criterion,
the patients it excludes and the patients for whom it is unknown; and near-miss worklists:
patients ineligible by exactly one criterion (those passing every other criterion first; the
others' unknown criteria are listed, as they would be undetermined, not eligible, if that one
criterion passed), and undetermined ones missing exactly one item ("INR ... missing: everything
else passes"), the patients worth a phone call or a lab order.
Built from the results ``screening screen-cohort`` writes, so a report can be made later; results
whose criteria are not the rules' (other rules) are refused. Each distinct outcome combination
(``criteria`` text) is parsed once, so a million rows take seconds.
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
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..errors import ScreeningError, UnknownTrialError  # noqa: E402
from ..logic import FAILING_OUTCOME, Outcome  # noqa: E402
from ..rules.loader import RuleSet  # noqa: E402
from ..rules.model import Trial  # noqa: E402
from .run import COLUMNS  # noqa: E402

VERDICT_ORDER = ["eligible", "undetermined", "ineligible", "error"]
VERDICT_COLOURS = {"eligible": "#2e7d32", "undetermined": "#f9a825", "ineligible": "#c62828", "error": "#757575"}
READ = [c for c in COLUMNS if c != "error"]  # the reasons ("error") are not reported
OUTCOME_CODES = {outcome.value: code for code, outcome in enumerate(Outcome)}


@dataclass(frozen=True)
class FunnelStep:
    criterion: str
    kind: str
    text: str
    excluded: int  # patients this criterion fails, whatever the others say
    unknown: int  # patients for whom it is unknown
    removed: int  # patients it is the first (in file order) to fail
    remaining: int  # patients not failed by this or any earlier criterion
    remaining_unknown: int  # of those, patients with this or an earlier criterion unknown


@dataclass(frozen=True, eq=False)
class TrialReport:
    trial_id: str
    title: str
    verdicts: dict[str, int]  # rows by verdict, errors included
    screened: int  # rows without an error
    funnel: list[FunnelStep]
    near_miss_ineligible: pd.DataFrame  # patient_id, failed criterion, also unknown
    near_miss_undetermined: pd.DataFrame  # patient_id, unknown criteria, missing item
    duplicates: int  # patient ids on more than one row


def build(results: pd.DataFrame, rules: RuleSet) -> list[TrialReport]:
    """One report per trial present in ``results``, in trial id order."""
    results = _texts(results)
    _check(results, rules)
    return [_trial_report(results[results["trial_id"] == trial_id], rules.trials[trial_id].trial)
            for trial_id in sorted(results["trial_id"].unique())]


def _texts(results: pd.DataFrame) -> pd.DataFrame:
    """The reported columns as text, an empty cell (null in Parquet) as ``""``; all but the
    patient ids categorical (few distinct values, so a million rows stay small)."""
    absent = [c for c in READ if c not in results.columns]
    if absent:
        raise ScreeningError(f"not cohort results: no column {', '.join(absent)}")
    columns = {"patient_id": results["patient_id"].astype(str).fillna("").array}
    for name in READ[1:]:
        column = results[name].astype("category")
        column = column.cat.rename_categories([str(c) for c in column.cat.categories])
        if column.isna().any():
            column = (column if "" in column.cat.categories else column.cat.add_categories([""])).fillna("")
        columns[name] = column.array
    return pd.DataFrame(columns)


def _first(mask: pd.Series | np.ndarray) -> tuple[int, int]:
    """(rows marked, 1-based position of the first)."""
    at = np.flatnonzero(np.asarray(mask))
    return len(at), int(at[0]) + 1


def _check(results: pd.DataFrame, rules: RuleSet) -> None:
    blank = results["trial_id"] == ""
    if blank.any():
        count, first = _first(blank)
        raise ScreeningError(f"no trial_id on {count} row{'s' if count > 1 else ''} (the first: row {first})")
    unknown = sorted(set(results["trial_id"].unique()) - set(rules.trials))
    if unknown:
        raise UnknownTrialError(unknown)
    odd = results["verdict"][~results["verdict"].isin(VERDICT_ORDER)]
    if len(odd):
        value = odd.iloc[0]
        count, first = _first(results["verdict"] == value)
        raise ScreeningError(f"verdict {value!r} (on {count} row{'s' if count > 1 else ''}, the first: row {first}) is not one of "
                             f"{', '.join(VERDICT_ORDER)}")


def _outcomes(text: str, trial: Trial) -> list[int]:
    """Outcome codes of an ``I1=met;I2=unknown;...`` text, in the trial's criteria order."""
    items = [item.partition("=") for item in text.split(";")] if text else []
    ids, expected = [item[0] for item in items], [c.id for c in trial.criteria]
    if ids != expected:
        raise ScreeningError(f"{trial.id}: the results list criteria {', '.join(ids) or '(none)'} but the rules have {', '.join(expected)}: "
                             "were they screened with other rules?")
    for criterion, _, value in items:
        if value not in OUTCOME_CODES:
            raise ScreeningError(f"{trial.id}: criterion {criterion} outcome {value!r} is not one of {', '.join(OUTCOME_CODES)}")
    return [OUTCOME_CODES[value] for _, _, value in items]


def _combinations(criteria: pd.Series, trial: Trial) -> tuple[np.ndarray, np.ndarray]:
    """(per row the index of its outcome combination, combinations x criteria outcome codes):
    each distinct ``criteria`` text is parsed once."""
    rows, texts = pd.factorize(criteria)
    codes = np.array([_outcomes(str(text), trial) for text in texts], dtype=np.int8).reshape(len(texts), len(trial.criteria))
    return rows, codes


def _funnel(trial: Trial, failing: np.ndarray, unknown: np.ndarray, weights: np.ndarray) -> list[FunnelStep]:
    failed_before = np.zeros(len(weights), dtype=bool)
    unknown_before = np.zeros(len(weights), dtype=bool)
    steps = []
    for i, criterion in enumerate(trial.criteria):
        removed = failing[:, i] & ~failed_before
        failed_before |= failing[:, i]
        unknown_before |= unknown[:, i]
        count = lambda mask: int(weights[mask].sum())  # noqa: E731 - patients of the combinations marked
        steps.append(FunnelStep(criterion.id, criterion.kind.value, criterion.text, count(failing[:, i]), count(unknown[:, i]), count(removed),
                                count(~failed_before), count(~failed_before & unknown_before)))
    return steps


def _joined(ids: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """Per combination, its marked criterion ids joined by ``;``."""
    return np.array([";".join(ids[row]) for row in marks], dtype=object)


def _near_ineligible(screened: pd.DataFrame, rows: np.ndarray, failing: np.ndarray, unknown: np.ndarray, trial: Trial) -> pd.DataFrame:
    """Patients failing exactly one criterion: those passing every other one first, then those with others unknown."""
    ids = np.array([c.id for c in trial.criteria], dtype=object)
    listed = (failing.sum(axis=1) == 1)[rows]
    combination = rows[listed]
    also = _joined(ids, unknown)[combination]
    order = np.argsort(also != "", kind="stable")
    failed = ids[failing.argmax(axis=1)][combination]
    patients = screened["patient_id"].array[listed].take(order)
    return pd.DataFrame({"patient_id": patients, "failed criterion": failed[order], "also unknown": also[order]})


def _near_undetermined(screened: pd.DataFrame, rows: np.ndarray, failing: np.ndarray, unknown: np.ndarray, trial: Trial) -> pd.DataFrame:
    """Undetermined patients missing exactly one item (which may be missing for several criteria)."""
    ids = np.array([c.id for c in trial.criteria], dtype=object)
    undetermined = (~failing.any(axis=1) & unknown.any(axis=1))[rows]
    missing = screened["missing"]
    listed = undetermined & (missing != "").to_numpy() & ~missing.str.contains(";", regex=False).to_numpy(dtype=bool)
    return pd.DataFrame({"patient_id": screened["patient_id"].array[listed], "unknown criteria": _joined(ids, unknown)[rows[listed]],
                         "missing item": missing.array[listed]})


def _trial_report(rows: pd.DataFrame, trial: Trial) -> TrialReport:
    counts = rows["verdict"].value_counts()
    verdicts = {v: int(counts.get(v, 0)) for v in VERDICT_ORDER}
    screened = rows[rows["verdict"] != "error"]
    combination, codes = _combinations(screened["criteria"], trial)
    failing = codes == np.array([OUTCOME_CODES[FAILING_OUTCOME[c.kind].value] for c in trial.criteria], dtype=np.int8)
    unknown = codes == OUTCOME_CODES[Outcome.UNKNOWN.value]
    weights = np.bincount(combination, minlength=len(codes))
    ids = rows["patient_id"][rows["patient_id"] != ""]
    return TrialReport(trial.id, trial.title, verdicts, len(screened), _funnel(trial, failing, unknown, weights),
                       _near_ineligible(screened, combination, failing, unknown, trial),
                       _near_undetermined(screened, combination, failing, unknown, trial), int(ids[ids.duplicated()].nunique()))


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
