"""Human-readable rendering of a screening result (rich tables)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ..logic import Outcome, Verdict, fails
from ..results import CriterionResult, Evidence, ScreeningResult, TrialResult

if TYPE_CHECKING:
    from ..fhir.result import FhirWarning

_VERDICT_STYLE = {Verdict.ELIGIBLE: "bold green", Verdict.INELIGIBLE: "bold red", Verdict.UNDETERMINED: "bold yellow"}
_OUTCOME_STYLE = {Outcome.MET: "green", Outcome.NOT_MET: "red", Outcome.UNKNOWN: "yellow", Outcome.NOT_APPLICABLE: "dim"}


def _number(value: float | int | str | bool | None) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 1e4 else f"{value:.4g}"  # 23456789, never 2.346e+07
    if isinstance(value, bool):  # a recorded flag ("Lactating: no"), as the reasons word it
        return "yes" if value else "no"
    return str(value)


_CODES = frozenset({"condition", "medication", "procedure"})  # facts whose value is a code, shown as recorded
_DATE_WORD = {"condition": ", onset", "medication": ", started"}  # what a record's date is; "on" for results


def _recorded(ev: Evidence) -> str | None:
    """A lab result as recorded ("<17 umol/L", "16 s, control 11.5 s"), from its source."""
    if ev.source and ev.fact.startswith("lab.") and ": " in ev.source:
        return ev.source.split(": ", 1)[1]
    return None


def _shown(ev: Evidence, recorded: str | None) -> str:
    """The value, or the range of a censored result or an incompletely known score: "below" and
    "above" for a strict bound ("<17 umol/L"), "at most" and "at least" otherwise."""
    if ev.value is not None:
        return _number(ev.value) if ev.fact in _CODES or not isinstance(ev.value, str) else ev.value.replace("_", " ")
    if ev.low is not None and ev.high is not None:
        return f"{_number(ev.low)}-{_number(ev.high)}"
    strict = recorded is not None and recorded[:1] in "<>" and recorded[1:2] != "="
    if ev.high is not None:
        return f"{'below' if strict else 'at most'} {_number(ev.high)}"
    if ev.low is not None:
        return f"{'above' if strict else 'at least'} {_number(ev.low)}"
    return "?"


def format_evidence(ev: Evidence, indent: str = "") -> list[str]:
    """The lines of one piece of evidence: label, value with unit, date, score points, the value
    as recorded when it reads otherwise, and the parts of a derived score indented below it."""
    recorded = _recorded(ev)
    shown = _shown(ev, recorded)
    unit = "" if ev.unit in (None, "1") else (" years" if ev.unit == "a" else f" {ev.unit}")
    line = f"{indent}{ev.label}" if shown == ev.label else f"{indent}{ev.label}: {shown}{unit}"
    if ev.date:
        line += f"{_DATE_WORD.get(ev.fact, ' on')} {ev.date.isoformat()}"
    if ev.points is not None:
        line += f" -> {ev.points} point{'s' if ev.points != 1 else ''}"
    if recorded is not None and recorded != f"{shown}{unit}":
        line += f" (recorded {recorded})"
    elif ev.source and ev.fact in ("condition", "medication") and " " in ev.source:
        line += f" ({ev.source.split(' ', 1)[1].replace('_', ' ')})"
    elif ev.fact == "age" and ev.source and ev.source.startswith("birth_date: "):
        line += f" (born {ev.source.removeprefix('birth_date: ')})"
    lines = [line]
    if ev.fact == "imaging" and ev.value == "findings not coded" and ev.source and ev.source.startswith("imaging report: "):
        lines.append(f'{indent}  report: "{ev.source.removeprefix("imaging report: ")}"')
    for part in ev.parts:
        lines.extend(format_evidence(part, indent + "  "))
    return lines


def _order(result: TrialResult) -> list[CriterionResult]:
    """Deciding criteria first, then unknown ones, then the rest, each in file order."""
    def rank(c: CriterionResult) -> int:
        return 0 if fails(c.kind, c.outcome) else 1 if c.outcome is Outcome.UNKNOWN else 2
    return sorted(result.criteria, key=rank)


_NARROW = 100  # below this width the outcome goes under the criterion id, leaving the reasons room to read


def _lines(lines: Sequence[str], style: str, indent: int) -> list[Padding]:
    """Each line indented by its leading spaces plus ``indent``, wrapping under itself (a long
    evidence line stays visibly inside its score or criterion)."""
    return [Padding(Text(line.lstrip(" "), style=style), (0, 0, 0, indent + len(line) - len(line.lstrip(" "))), expand=False)
            for line in lines]


def _why(c: CriterionResult) -> Group:
    evidence = [line for ev in c.evidence for line in format_evidence(ev)]
    parts: list = [Text(f"\"{c.text}\"", style="italic"), Text(c.reason), *_lines(evidence, "dim", 2)]
    if c.missing:
        parts.extend(_lines(["missing: " + "; ".join(c.missing)], "yellow", 2))
    return Group(*parts)


def _verdict(result: TrialResult) -> str:
    """The verdict, with the criteria that decided it (ineligible) or leave it open (undetermined)."""
    if result.verdict is Verdict.INELIGIBLE:
        return f" (decided by {', '.join(result.deciding)})"
    if result.verdict is Verdict.UNDETERMINED:
        return f" (unknown: {', '.join(c.id for c in result.criteria if c.outcome is Outcome.UNKNOWN)})"
    return ""


def _missing(result: TrialResult) -> list:
    """The data that would decide an undetermined verdict, each item once, with the criteria that
    need it (one review of the problem list may settle five exclusions), in the table's order."""
    shown = _order(result)
    position = {c.id: i for i, c in enumerate(shown)}
    needed_by = {item: [c.id for c in shown if item in c.missing] for item in result.missing}
    items = [f"{item} (for {', '.join(ids)})" if ids else item
             for item, ids in sorted(needed_by.items(), key=lambda pair: position[pair[1][0]] if pair[1] else len(shown))]
    title = "Missing data that would decide it:"
    if len(items) == 1:
        return [Text(f"{title} {items[0]}", style="yellow")]
    return [Text(title, style="yellow"), *_lines([f"- {item}" for item in items], "yellow", 2)]


class _TrialView:
    """A trial's result as a table: three columns, or two on a narrow terminal."""

    def __init__(self, result: TrialResult) -> None:
        self.result = result

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        result = self.result
        yield Text.assemble(
            (f"{result.trial_id}", "bold"), f"  {result.title}\n",
            ("Verdict: ", "bold"), (result.verdict.value.upper(), _VERDICT_STYLE[result.verdict]), _verdict(result),
            f"   rules {result.rules_version} ({result.rules_hash})",
        )
        narrow = options.max_width < _NARROW
        table = Table(show_lines=True, expand=True)
        table.add_column("Criterion", no_wrap=True)
        if not narrow:
            table.add_column("Outcome", no_wrap=True)
        table.add_column("Why (registry text / reason / evidence)", ratio=1)
        for c in _order(result):
            outcome = Text(c.outcome.value, style=_OUTCOME_STYLE[c.outcome])
            if narrow:
                table.add_row(Text.assemble(f"{c.id} {c.kind.value}\n", outcome), _why(c))
            else:
                table.add_row(f"{c.id} {c.kind.value}", outcome, _why(c))
        yield table
        if result.missing:
            yield from _missing(result)
        for caveat in result.caveats:
            yield Text(f"Caveat: {caveat}", style="magenta")


def trial_table(result: TrialResult) -> _TrialView:
    return _TrialView(result)


def render_text(result: ScreeningResult, console: Console) -> None:
    """The result, trial by trial; its notices (e.g. that the patient is recorded as deceased) are
    printed under the patient line, before any verdict."""
    console.print(Text.assemble(("Patient ", "bold"), result.patient_id, f"   screened as of {result.as_of.isoformat()}   engine {result.engine_version}"))
    for notice in result.notices:
        console.print(Text(f"Check before contacting: {notice}", style="bold red"))
    for trial in result.results:
        console.print()
        console.print(trial_table(trial))


_ROUTINE_WARNINGS = frozenset({"unsupported_resource", "not_fhir", "no_patient"})  # resources of types the mapping does not read


def _warning_rank(warning: FhirWarning) -> int:
    """0: a resource kept with a stated reading (it changes what the profile says); 1: a resource of
    a type the mapping reads, left out for a problem with it (a malformed code, a unit that does not
    convert, no date...), which may hide what a criterion asks about; 2: one left out for a code the
    rules do not use (mostly observations no criterion reads: vital signs, other labs); 3: a
    resource of a type the mapping does not read (Claim, Encounter...)."""
    if warning.code.value in _ROUTINE_WARNINGS:
        return 3
    if not warning.skipped:
        return 0
    return 2 if warning.code.value == "unknown_code" else 1


def render_warnings(warnings: Sequence[FhirWarning], console: Console, limit: int = 20) -> None:
    """The FHIR mapping warnings after the result: a count by code, then the first ``limit`` in the
    order of :func:`_warning_rank` (each group in the data's order)."""
    if not warnings:
        return
    counts = ", ".join(f"{code.value} {n}" for code, n in Counter(w.code for w in warnings).most_common())
    console.print()
    console.print(Text(f"FHIR mapping warnings: {len(warnings)} ({counts})", style="bold magenta"))
    for warning in sorted(warnings, key=_warning_rank)[:limit]:
        console.print(Text(f"  {'skipped' if warning.skipped else 'kept'}: {warning}"))
    if len(warnings) > limit:
        console.print(Text(f"  ... and {len(warnings) - limit} more (--format json lists them all)"))
