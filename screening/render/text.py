"""Human-readable rendering of a screening result (rich tables)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console, Group
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
    if isinstance(value, bool):
        return str(value).lower()
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


def trial_table(result: TrialResult) -> Group:
    heading = Text.assemble(
        (f"{result.trial_id}", "bold"), f"  {result.title}\n",
        ("Verdict: ", "bold"), (result.verdict.value.upper(), _VERDICT_STYLE[result.verdict]),
        f"   rules {result.rules_version} ({result.rules_hash})",
    )
    table = Table(show_lines=True, expand=True)
    table.add_column("Criterion", no_wrap=True)
    table.add_column("Outcome", no_wrap=True)
    table.add_column("Why (registry text / reason / evidence)", ratio=1)
    for c in _order(result):
        body = Text()
        body.append(f"\"{c.text}\"\n", style="italic")
        body.append(c.reason)
        for line in (l for ev in c.evidence for l in format_evidence(ev)):
            body.append(f"\n  {line}", style="dim")
        if c.missing:
            body.append("\n  missing: " + "; ".join(c.missing), style="yellow")
        table.add_row(f"{c.id} {c.kind.value}", Text(c.outcome.value, style=_OUTCOME_STYLE[c.outcome]), body)
    parts: list = [heading, table]
    if result.missing:
        parts.append(Text("Missing data that would decide it: " + "; ".join(result.missing), style="yellow"))
    for caveat in result.caveats:
        parts.append(Text(f"Caveat: {caveat}", style="magenta"))
    return Group(*parts)


def render_text(result: ScreeningResult, console: Console) -> None:
    console.print(Text.assemble(("Patient ", "bold"), result.patient_id, f"   screened as of {result.as_of.isoformat()}   engine {result.engine_version}"))
    for trial in result.results:
        console.print()
        console.print(trial_table(trial))


_ROUTINE_WARNINGS = frozenset({"unsupported_resource", "not_fhir", "no_patient"})  # resources of types the mapping does not read


def _warning_rank(warning: FhirWarning) -> int:
    """0: a resource kept with a stated reading (it changes what the profile says); 1: a resource of
    a type the mapping reads, left out; 2: a resource of a type it does not read (Claim, Encounter...)."""
    if warning.code.value in _ROUTINE_WARNINGS:
        return 2
    return 1 if warning.skipped else 0


def render_warnings(warnings: Sequence[FhirWarning], console: Console, limit: int = 20) -> None:
    """The FHIR mapping warnings after the result: a count by code, then the first ``limit``, those
    about resources kept with a stated reading first, then those about resources left out of a type
    the mapping reads, then the others (each group in the data's order)."""
    if not warnings:
        return
    counts = ", ".join(f"{code.value} {n}" for code, n in Counter(w.code for w in warnings).most_common())
    console.print()
    console.print(Text(f"FHIR mapping warnings: {len(warnings)} ({counts})", style="bold magenta"))
    for warning in sorted(warnings, key=_warning_rank)[:limit]:
        console.print(Text(f"  {'skipped' if warning.skipped else 'kept'}: {warning}"))
    if len(warnings) > limit:
        console.print(Text(f"  ... and {len(warnings) - limit} more (--format json lists them all)"))
