"""Cohort reports a coordinator and a trial manager can read (HTML with charts, and Markdown).

Per trial: counts by verdict; an attrition funnel (criteria in the rules file's order, how many
patients remain after each, like OHDSI ATLAS's inclusion-rule attrition) with, per criterion,
the patients it excludes and the patients for whom it is unknown; and near-miss worklists:
patients ineligible by exactly one criterion (those passing every other criterion first; the
others' unknown criteria are listed, as they would be undetermined, not eligible, if that one
criterion passed), and undetermined ones missing exactly one item ("INR ... missing: everything
else passes"), the patients worth a phone call or a lab order. A worklist shows its first
:data:`SHOWN` patients and a count per criterion (or item); all its patients are in a CSV file beside.
Built from the results ``screening screen-cohort`` writes, so a report can be made later; results
whose criteria are not the rules' (other rules) are refused. HTML and Markdown are rendered from
the same blocks, so they say the same.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: charts are rendered to PNG
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from ..errors import ScreeningError, UnknownTrialError  # noqa: E402
from ..logic import FAILING_OUTCOME, Outcome  # noqa: E402
from ..rules.loader import RuleSet  # noqa: E402
from ..rules.model import Trial  # noqa: E402
from .run import COLUMNS  # noqa: E402

SHOWN = 100  # near-miss patients shown per list; all of them are in the CSV file beside the report
VERDICT_ORDER = ["eligible", "undetermined", "ineligible", "error"]
VERDICT_COLOURS = {"eligible": "#2e7d32", "undetermined": "#f9a825", "ineligible": "#c62828", "error": "#757575"}
OPTIONAL = ("rules_hash", "as_of", "notice")  # read when present: results written before they were recorded have none
READ = [c for c in COLUMNS if c != "error" and c not in OPTIONAL]  # required (the reasons, "error", are not reported)
NOTICE = "check before contacting"  # a worklist's column for the result rows' notices (e.g. recorded as deceased)
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
    not_listed: dict[str, int]  # by criterion marked near_miss: false, the patients it alone excludes (not on the worklist)
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
    for name in READ[1:] + [c for c in OPTIONAL if c in results.columns]:
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
    if "rules_hash" in results.columns:
        _check_rules_hashes(results, rules)
    odd = results["verdict"][~results["verdict"].isin(VERDICT_ORDER)]
    if len(odd):
        value = odd.iloc[0]
        count, first = _first(results["verdict"] == value)
        raise ScreeningError(f"verdict {value!r} (on {count} row{'s' if count > 1 else ''}, the first: row {first}) is not one of "
                             f"{', '.join(VERDICT_ORDER)}")


def _check_rules_hashes(results: pd.DataFrame, rules: RuleSet) -> None:
    """Refuse results a trial's rows say were screened with other rules than those loaded (a
    change that keeps the criterion ids, such as a threshold, is seen only here)."""
    pairs = results[["trial_id", "rules_hash"]].drop_duplicates()
    for trial_id, rules_hash in zip(pairs["trial_id"], pairs["rules_hash"]):
        loaded = rules.trials[trial_id].rules_hash
        if rules_hash and rules_hash != loaded:
            raise ScreeningError(f"{trial_id}: the results were screened with rules {rules_hash}, not the loaded {loaded}: "
                                 "report with the rules that screened them, or screen again")


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
    """Patients failing exactly one criterion, one that may be a near miss (``Criterion.near_miss``):
    those passing every other one first, then those with others unknown."""
    ids = np.array([c.id for c in trial.criteria], dtype=object)
    listed = ((failing.sum(axis=1) == 1) & (failing @ _near_misses(trial) == 1))[rows]
    combination = rows[listed]
    also = _joined(ids, unknown)[combination]
    order = np.argsort(also != "", kind="stable")
    failed = ids[failing.argmax(axis=1)][combination]
    patients = screened["patient_id"].array[listed].take(order)
    frame = pd.DataFrame({"patient_id": patients, "failed criterion": failed[order], "also unknown": also[order]})
    return _with_notices(frame, screened, np.flatnonzero(listed)[order])


def _near_misses(trial: Trial) -> np.ndarray:
    return np.array([c.near_miss for c in trial.criteria], dtype=np.int64)


def _not_listed(failing: np.ndarray, weights: np.ndarray, trial: Trial) -> dict[str, int]:
    """Per criterion marked ``near_miss: false``, the patients it alone excludes."""
    alone = failing.sum(axis=1) == 1
    return {c.id: int(weights[alone & failing[:, i]].sum()) for i, c in enumerate(trial.criteria) if not c.near_miss}


def _near_undetermined(screened: pd.DataFrame, rows: np.ndarray, failing: np.ndarray, unknown: np.ndarray, trial: Trial) -> pd.DataFrame:
    """Undetermined patients missing exactly one item (which may be missing for several criteria)."""
    ids = np.array([c.id for c in trial.criteria], dtype=object)
    undetermined = (~failing.any(axis=1) & unknown.any(axis=1))[rows]
    missing = screened["missing"]
    listed = undetermined & (missing != "").to_numpy() & ~missing.str.contains(";", regex=False).to_numpy(dtype=bool)
    frame = pd.DataFrame({"patient_id": screened["patient_id"].array[listed], "unknown criteria": _joined(ids, unknown)[rows[listed]],
                          "missing item": missing.array[listed]})
    return _with_notices(frame, screened, np.flatnonzero(listed))


def _with_notices(worklist: pd.DataFrame, screened: pd.DataFrame, at: np.ndarray) -> pd.DataFrame:
    """``worklist`` (rows ``at`` of ``screened``) with a :data:`NOTICE` column when any of its
    patients has a notice: a patient recorded as deceased is listed, and said to be."""
    if "notice" not in screened.columns:
        return worklist
    notices = np.asarray(screened["notice"].array, dtype=object)[at]
    return worklist.assign(**{NOTICE: notices}) if (notices != "").any() else worklist


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
                       _near_ineligible(screened, combination, failing, unknown, trial), _not_listed(failing, weights, trial),
                       _near_undetermined(screened, combination, failing, unknown, trial), int(ids[ids.duplicated()].nunique()))


def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _patients_axis(axis: plt.Axes, largest: int) -> None:
    axis.invert_yaxis()
    axis.set_xlabel("patients")
    axis.set_xlim(0, max(largest, 1) * 1.18)  # room for the counts written after the bars
    axis.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))


def verdict_chart(report: TrialReport) -> bytes:
    figure, axis = plt.subplots(figsize=(6, 2.2))
    labels = [v for v in VERDICT_ORDER if report.verdicts[v] or v != "error"]
    values = [report.verdicts[v] for v in labels]
    axis.barh(labels, values, color=[VERDICT_COLOURS[v] for v in labels])
    _patients_axis(axis, max(values))
    axis.set_title(f"{report.trial_id}: verdicts")
    for y, value in enumerate(values):
        axis.text(value, y, f" {value:,} ({_percent(value, sum(report.verdicts.values()))})", va="center", fontsize=8)
    return _png(figure)


def funnel_chart(report: TrialReport) -> bytes:
    """Patients remaining after each criterion, split into those passing every criterion so far
    and those with one unknown so far (at the last step: eligible and undetermined)."""
    figure, axis = plt.subplots(figsize=(7, 0.45 * len(report.funnel) + 1.6))
    labels = ["screened"] + [f"{s.criterion} ({s.kind[:3]})" for s in report.funnel]
    remaining = [report.screened] + [s.remaining for s in report.funnel]
    unknown = [0] + [s.remaining_unknown for s in report.funnel]
    known = [r - u for r, u in zip(remaining, unknown)]
    axis.barh(labels, known, color="#1565c0", label="remaining, passes every criterion so far")
    axis.barh(labels, unknown, left=known, color="#f9a825", label="remaining, a criterion so far unknown")
    _patients_axis(axis, report.screened)
    axis.set_title(f"{report.trial_id}: patients remaining after each criterion, in the rules file's order")
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.5 / (len(labels) ** 0.5)), ncol=2, fontsize=8, frameon=False)
    for y, value in enumerate(remaining):
        axis.text(value, y, f" {value:,}", va="center", fontsize=8)
    return _png(figure)


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


# The document: blocks rendered alike to Markdown and HTML.
@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Link:
    text: str
    href: str


@dataclass(frozen=True)
class Paragraph:
    parts: tuple[str | Link, ...]


@dataclass(frozen=True)
class Image:
    file: str
    alt: str
    png: bytes


@dataclass(frozen=True, eq=False)
class Table:
    frame: pd.DataFrame


Block = Heading | Paragraph | Image | Table


def _cell(value: object) -> str:
    return f"{value:,}" if isinstance(value, (int, np.integer)) else str(value)


def _md_text(text: str) -> str:
    """Text as Markdown shows it literally: markup characters escaped, on one line."""
    return re.sub(r"([\\`*_\[\]<>|&])", r"\\\1", re.sub(r"\s*[\r\n]\s*", " ", text))


def _md_part(part: str | Link) -> str:
    return f"[{_md_text(part.text)}]({part.href})" if isinstance(part, Link) else _md_text(part)


def _md_table(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(_md_text(str(c)) for c in frame.columns) + " |", "| " + " | ".join("---" for _ in frame.columns) + " |"]
    lines += ["| " + " | ".join(_md_text(_cell(v)) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


MARKDOWN = {
    Heading: lambda b: "#" * b.level + " " + _md_text(b.text),
    Paragraph: lambda b: "".join(_md_part(p) for p in b.parts),
    Image: lambda b: f"![{_md_text(b.alt)}]({b.file})",
    Table: lambda b: _md_table(b.frame),
}


def _html_part(part: str | Link) -> str:
    return f'<a href="{html.escape(part.href)}">{html.escape(part.text)}</a>' if isinstance(part, Link) else html.escape(part)


def _html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td{' class=n' if isinstance(v, (int, np.integer)) else ''}>{html.escape(_cell(v))}</td>" for v in row)
                   + "</tr>" for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


HTML = {
    Heading: lambda b: f"<h{b.level}>{html.escape(b.text)}</h{b.level}>",
    Paragraph: lambda b: "<p>" + "".join(_html_part(p) for p in b.parts) + "</p>",
    Image: lambda b: f'<img alt="{html.escape(b.alt)}" src="data:image/png;base64,{base64.b64encode(b.png).decode()}">',
    Table: lambda b: _html_table(b.frame),
}
STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;margin:.5em 0}"
         "td,th{border:1px solid #ccc;padding:4px 8px;font-size:90%;vertical-align:top}td.n{text-align:right}img{max-width:100%}")


def _funnel_frame(report: TrialReport) -> pd.DataFrame:
    return pd.DataFrame([{"criterion": s.criterion, "kind": s.kind, "fails": s.excluded, "unknown": s.unknown, "excluded at this step": s.removed,
                          "remaining": s.remaining, "remaining with an unknown": s.remaining_unknown, "criterion text": s.text}
                         for s in report.funnel])


FUNNEL_LEGEND = ("Criteria in the rules file's order; counts are patients (result rows), error rows left out. "
                 "fails: patients this criterion makes ineligible (an inclusion not met, an exclusion met), whatever the other criteria say; "
                 "unknown: patients for whom it cannot be decided; excluded at this step: patients it is the first to fail; "
                 "remaining: patients no criterion so far fails (unknown ones stay in); remaining with an unknown: of those, patients "
                 "with a criterion so far unknown (after the last criterion: the undetermined ones, the others are eligible).")


def _verdict_frame(report: TrialReport) -> pd.DataFrame:
    total = sum(report.verdicts.values())
    return pd.DataFrame({"verdict": list(report.verdicts), "patients": list(report.verdicts.values()),
                         "% of patients": [_percent(n, total) for n in report.verdicts.values()]})


def _listed(count: int, file: str) -> tuple[str | Link, ...]:
    if not count:
        return ("None.",)
    shown = "all shown; also in " if count <= SHOWN else f"the first {SHOWN:,} shown; all in "
    return (f"{count:,} patient{'s' if count > 1 else ''}, {shown}", Link(file, file), ".")


def _counted(frame: pd.DataFrame, by: str, order: list[str] | None = None) -> pd.DataFrame:
    """Patients per value of ``by``, most first (ties in ``order``, else by value)."""
    counts = frame.groupby(by).size()
    counts = counts.reindex([v for v in order if v in counts.index]) if order else counts
    counts = counts.sort_values(ascending=False, kind="stable")
    return pd.DataFrame({by: counts.index.astype(str), "patients": counts.to_numpy().astype(int)})


def _noticed(worklist: pd.DataFrame) -> tuple[str, ...]:
    if NOTICE not in worklist.columns:
        return ()
    count = int((worklist[NOTICE] != "").sum())
    return (f"{count:,} of them {'has' if count == 1 else 'have'} a notice under '{NOTICE}' (e.g. recorded as deceased): "
            "read it before any contact. ",)


def _unlisted(not_listed: dict[str, int]) -> tuple[str, ...]:
    counted = [f"{criterion} {n:,}" for criterion, n in not_listed.items() if n]
    if not counted:
        return ()
    return (f"Not listed: the patients a criterion no call or order can change (the rules mark it near_miss: false) alone excludes "
            f"({', '.join(counted)}). ",)


def _near_miss_blocks(report: TrialReport, files: dict[str, str]) -> list[Block]:
    ineligible, undetermined = report.near_miss_ineligible, report.near_miss_undetermined
    passing = int((ineligible["also unknown"] == "").sum())
    texts = {s.criterion: s.text for s in report.funnel}
    by_criterion = _counted(ineligible, "failed criterion", list(texts))
    passing_by = ineligible[ineligible["also unknown"] == ""].groupby("failed criterion").size()
    by_criterion["passing every other criterion"] = by_criterion["failed criterion"].map(passing_by).fillna(0).astype(int)
    by_criterion["criterion text"] = by_criterion["failed criterion"].map(texts)
    blocks: list[Block] = [
        Heading(3, "Near misses: ineligible by exactly one criterion"),
        Paragraph((f"Patients whom one criterion alone makes ineligible; those passing every other criterion ({passing:,}) are listed first. "
                   "For the others, 'also unknown' names criteria still unknown, so they would be undetermined, not eligible, "
                   "if the failed criterion passed. ", *_noticed(ineligible), *_unlisted(report.not_listed),
                   *_listed(len(ineligible), files["ineligible"]))),
    ]
    if len(ineligible):
        blocks += [Paragraph(("Patients per failed criterion:",)), Table(by_criterion), Paragraph(("Patients:",)), Table(ineligible.head(SHOWN))]
    blocks += [
        Heading(3, "Near misses: undetermined, one item missing (everything else passes)"),
        Paragraph(("Patients no criterion excludes, for whom one missing item (which may decide several unknown criteria) stands "
                   "between them and a verdict. ", *_noticed(undetermined), *_listed(len(undetermined), files["undetermined"]))),
    ]
    if len(undetermined):
        blocks += [Paragraph(("Patients per missing item:",)), Table(_counted(undetermined, "missing item")), Paragraph(("Patients:",)),
                   Table(undetermined.head(SHOWN))]
    return blocks


def _trial_blocks(report: TrialReport, rules: RuleSet, charts: dict[str, bytes], files: dict[str, str]) -> list[Block]:
    loaded = rules.trials[report.trial_id]
    blocks: list[Block] = [Heading(2, f"{report.trial_id}: {report.title}"),
                           Paragraph((f"Criteria texts and order from rules version {loaded.trial.version} ({loaded.rules_hash}).",))]
    if report.duplicates:
        blocks.append(Paragraph((f"{report.duplicates:,} patient id{' is' if report.duplicates == 1 else 's are'} on more than one row "
                                 "(each row is counted).",)))
    return blocks + [
        Heading(3, "Verdicts"), Image(f"{report.trial_id}-verdicts.png", "verdicts", charts["verdicts"]), Table(_verdict_frame(report)),
        Heading(3, "Attrition"), Paragraph((FUNNEL_LEGEND,)), Image(f"{report.trial_id}-funnel.png", "attrition funnel", charts["funnel"]),
        Table(_funnel_frame(report)),
        *_near_miss_blocks(report, files),
    ]


def screening_dates(results: pd.DataFrame, as_of: dt.date | None = None) -> str:
    """The screening date the report states: the results' own (their ``as_of`` column), which
    ``as_of``, when given, must be; else ``as_of``; else "not stated"."""
    recorded = sorted({str(d) for d in results["as_of"].dropna().unique()} - {""}) if "as_of" in results.columns else []
    if as_of is not None and recorded and recorded != [as_of.isoformat()]:
        raise ScreeningError(f"the results were screened as of {', '.join(recorded)}, not {as_of.isoformat()}")
    return ", ".join(recorded) or (as_of.isoformat() if as_of is not None else "not stated")


def write_reports(results: pd.DataFrame, rules: RuleSet, folder: str | Path, as_of: dt.date | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` (charts embedded) and ``report.md`` (charts as PNG files beside it),
    and per trial the near-miss lists whole as CSV files; the screening date is the results' own
    (:func:`screening_dates`)."""
    stated = screening_dates(results, as_of)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    reports = build(results, rules)
    patients = max((sum(r.verdicts.values()) for r in reports), default=0)  # one row per patient and trial
    counted = f"{patients:,} patient{'s' if patients != 1 else ''} (result rows per trial)"
    blocks: list[Block] = [Heading(1, "Cohort screening report"), Paragraph((f"Screening date {stated}; {counted}.",))]
    absent = sorted(set(rules.trials) - {r.trial_id for r in reports})
    if absent:
        blocks.append(Paragraph((f"Trials of the rules not in these results: {', '.join(absent)}.",)))
    for report in reports:
        files = {name: f"{report.trial_id}-near-miss-{name}.csv" for name in ("ineligible", "undetermined")}
        report.near_miss_ineligible.to_csv(folder / files["ineligible"], index=False)
        report.near_miss_undetermined.to_csv(folder / files["undetermined"], index=False)
        charts = {"verdicts": verdict_chart(report), "funnel": funnel_chart(report)}
        for name, png in charts.items():
            (folder / f"{report.trial_id}-{name}.png").write_bytes(png)
        blocks += _trial_blocks(report, rules, charts, files)
    html_path, md_path = folder / "report.html", folder / "report.md"
    body = "".join(HTML[type(b)](b) for b in blocks)
    html_path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>Cohort screening report</title><style>{STYLE}</style></head>"
                         f"<body>{body}</body></html>", encoding="utf-8")
    md_path.write_text("\n\n".join(MARKDOWN[type(b)](b) for b in blocks) + "\n", encoding="utf-8")
    return html_path, md_path
