"""Command line: ``screening screen | screen-cohort | report | watch | serve | trials | validate | schema``.

Exit codes: 0 done, 2 bad input (rules file, patient file, option), with a message naming the
file and the field.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import sys
from collections import Counter
from contextlib import ExitStack
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from . import screen as screen_api
from .errors import PatientDataError, ScreeningError
from .patient.io import load_patient_with_warnings
from .render.text import render_text, render_warnings
from .rules.loader import RuleSet, load_rules

if TYPE_CHECKING:
    import pandas as pd

    from .cohort import CohortSummary
    from .fhir.result import WarningCode

# A command imports what only it needs (pandas, the cohort path, the service, durable_rules) when
# it runs, so `screening screen` for one patient starts without them.

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Clinical-trial eligibility screening with explained verdicts.")

BAD_INPUT = 2
DEFAULT_RULES = "rules"


class EngineChoice(StrEnum):
    EXPLAIN = "explain"
    DURABLE = "durable"
    VECTORIZED = "vectorized"


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"


def _console() -> Console:
    """Piped output is 120 columns wide, unless COLUMNS says otherwise (a terminal's own width)."""
    return Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit() else 120, highlight=False)


def _fail(message: str) -> typer.Exit:
    Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {escape(message)}", markup=True, soft_wrap=True)
    return typer.Exit(BAD_INPUT)


def _rules(directory: Path | None) -> RuleSet:
    return load_rules(directory or Path(os.environ.get("SCREENING_RULES", DEFAULT_RULES)))


RulesOption = Annotated[Optional[Path], typer.Option("--rules", help="Rules directory (default: $SCREENING_RULES or ./rules)")]


_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _date(value: str | None) -> dt.date:
    if value is None:
        return dt.date.today()
    try:
        if not _ISO_DAY.fullmatch(value):  # fromisoformat also takes 20261122 and 2026-W47-1
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _fail(f"--as-of: not a date in YYYY-MM-DD form: {value!r}") from None


@app.command()
def screen(
    patient: Annotated[Path, typer.Argument(help="Patient profile or FHIR R4 Bundle (JSON)")],
    rules: RulesOption = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Screening date, YYYY-MM-DD (default: today)")] = None,
    format: Annotated[Format, typer.Option("--format", help="text or json")] = Format.TEXT,
    trial: Annotated[Optional[list[str]], typer.Option("--trial", help="Only this trial (repeatable)")] = None,
    engine: Annotated[EngineChoice, typer.Option("--engine", help="explain (reference), durable (durable_rules Rete) or vectorized (pandas)")] = EngineChoice.EXPLAIN,
) -> None:
    """Screen one patient against every loaded trial and explain each verdict."""
    screening_date = _date(as_of)
    try:
        ruleset = _rules(rules)
        profile, warnings = load_patient_with_warnings(patient)
        result = screen_api(profile, ruleset, as_of=screening_date, trials=trial or None, engine=engine.value)  # no --trial: every trial
    except PatientDataError as exc:
        raise _fail(str(exc) if exc.source else f"{patient}: {exc}") from None
    except ScreeningError as exc:
        raise _fail(str(exc)) from None
    if format is Format.JSON and not warnings:  # a Bundle mapped without warnings prints as its native profile
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    elif format is Format.JSON:  # the result and the mapping warnings, as POST /screen answers for a Bundle
        body = {**result.model_dump(mode="json"), "warnings": [w.model_dump(mode="json") for w in warnings]}
        sys.stdout.write(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
    else:
        console = _console()
        render_text(result, console)
        render_warnings(warnings, console)


@app.command("screen-cohort")
def screen_cohort_command(
    cohort: Annotated[str, typer.Argument(help="Flat table (.csv/.parquet), NDJSON profiles (.ndjson), a folder of long tables or a FHIR R4 Bulk Data export folder; with --dask also a URL")],
    out: Annotated[str, typer.Option("--out", help="Results file: .csv or .parquet; with --dask also a URL")],
    rules: RulesOption = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Screening date, YYYY-MM-DD (default: today)")] = None,
    trial: Annotated[Optional[list[str]], typer.Option("--trial", help="Only this trial (repeatable)")] = None,
    chunk_size: Annotated[Optional[int], typer.Option("--chunk-size", min=1, help="Patients per chunk, bounding memory (default: 100,000 rows of a flat table, 5,000 profiles otherwise)")] = None,
    report: Annotated[Optional[Path], typer.Option("--report", help="Also write report.html and report.md (with charts) into this folder")] = None,
    dask: Annotated[Optional[str], typer.Option("--dask", help="Run on this Dask scheduler (tcp://host:8786), or 'local' for a LocalCluster; a flat .csv/.parquet table or a folder of long tables")] = None,
    workers: Annotated[int, typer.Option("--workers", min=0, help="Processes screening chunks side by side (0: one per core)")] = 1,
) -> None:
    """Screen a cohort with the vectorized evaluator: one result row per patient and trial."""
    from .cohort import CohortSummary

    screening_date = _date(as_of)
    summary = CohortSummary()
    fhir_warnings: Counter[WarningCode] = Counter()  # of a FHIR bulk export, by code
    unmatched: dict[str, int] = {}  # of long tables: per table, rows naming no patient of patients
    if dask is None or "://" not in cohort:  # a URL is for the Dask workers to read
        _check_exists(Path(cohort))
    try:
        ruleset = _rules(rules)
        selected = ruleset.select(trial or None)  # no --trial: every trial
        if dask is not None:  # the workers read and write: a URL is passed on as given
            _screen_on_dask(cohort, out, ruleset, screening_date, selected, dask, summary, unmatched)
        else:
            _screen_locally(Path(cohort), Path(out), ruleset, screening_date, selected, chunk_size, summary, workers or os.cpu_count() or 1,
                            fhir_warnings, unmatched)
    except (ScreeningError, OSError) as exc:  # OSError: a cohort file not found, results not writable
        raise _fail("\n".join([str(exc), *getattr(exc, "__notes__", ())])) from None  # notes: where the rows so far are
    table = Table(title=f"{summary.rows} patients screened as of {screening_date.isoformat()}: {summary.errors} rows with errors")
    columns = ["eligible", "undetermined", "ineligible", "error"]
    table.add_column("trial")
    for column in columns:
        table.add_column(column, justify="right")
    for trial_id, counts in sorted(summary.verdicts.items()):
        table.add_row(trial_id, *(str(counts.get(c, 0)) for c in columns))
    _console().print(table)
    if fhir_warnings:
        counts = ", ".join(f"{code.value} {n}" for code, n in fhir_warnings.most_common())
        where = "screening.fhir.read_bulk_export lists each" if Path(cohort).is_dir() else "screening screen on a patient's Bundle lists its own"
        typer.echo(f"FHIR mapping warnings: {fhir_warnings.total()} ({counts}); {where}")
    if summary.notices:
        typer.echo(f"patients with a notice (e.g. recorded as deceased): {summary.notices}; read the results' notice column before any contact")
    if unmatched:
        counts = ", ".join(f"{table} {n}" for table, n in unmatched.items())
        typer.echo(f"rows naming no patient of the patients table, not screened: {counts}")
    typer.echo(f"results: {out}")
    if report is not None:
        from .cohort.report import write_reports

        html_path, md_path = write_reports(_read_results(out), ruleset, report, screening_date)
        typer.echo(f"report: {html_path} and {md_path}")


def _check_exists(path: Path) -> None:
    """Exit 2 naming a missing input file, as ``screen`` does (pyarrow's error may not name it)."""
    if not path.exists():
        raise _fail(f"{path}: cannot read: No such file or directory")


def _read_results(path: str | Path) -> pd.DataFrame:
    import pandas as pd

    from .cohort.long import reading

    with reading(Path(path)):  # empty, not UTF-8, not CSV, not Parquet: an error naming the file
        return pd.read_csv(path, dtype=str, keep_default_na=False) if str(path).lower().endswith(".csv") else pd.read_parquet(path)


def _screen_locally(cohort: Path, out: Path, ruleset: RuleSet, as_of: dt.date, trials: list[str], chunk_size: int | None, summary: CohortSummary, workers: int,
                    fhir_warnings: Counter[WarningCode] | None = None, unmatched: dict[str, int] | None = None) -> None:
    from .cohort import read_cohort, screen_cohort
    from .cohort.output import ResultWriter

    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), console=Console(stderr=True), disable=not sys.stderr.isatty())
    with ResultWriter(out) as writer, ExitStack() as shown:
        task = None
        counted = None if fhir_warnings is None else (lambda warnings: fhir_warnings.update(w.code for w in warnings))
        noted = None if unmatched is None else unmatched.__setitem__
        for frame in screen_cohort(read_cohort(cohort, chunk_size, counted, noted), ruleset, as_of, trials, summary, workers):
            if task is None:  # the display runs a thread: started once the worker processes are forked (a fork copies held locks)
                shown.enter_context(progress)
                task = progress.add_task("screening", total=None)
            writer.write(frame)
            progress.update(task, description=f"screened {summary.rows} patients ({summary.errors} errors)")


def _screen_on_dask(cohort: str, out: str, ruleset: RuleSet, as_of: dt.date, trials: list[str], address: str, summary: CohortSummary,
                    unmatched: dict[str, int]) -> None:
    from distributed import Client, LocalCluster

    from .cohort.distributed import read_flat, rows_with_errors, screen_dask
    from .cohort.distributed_long import LongTables, align, read_long_dask, screen_long_dask, unmatched_rows

    flat = cohort.rstrip("/").lower().endswith((".csv", ".parquet"))
    if not flat and (cohort.lower().endswith((".ndjson", ".jsonl", ".json")) or Path(cohort).is_file()):  # not a folder of long tables
        raise ScreeningError(f"{cohort}: --dask reads a flat .csv or .parquet table or a folder of long tables")
    if not out.rstrip("/").lower().endswith((".csv", ".parquet")):
        raise ScreeningError(f"{out}: results are written as .csv or .parquet")
    cluster = LocalCluster(processes=True, dashboard_address=None) if address == "local" else None
    with Client(cluster if cluster is not None else address):
        if flat:
            results = screen_dask(read_flat(cohort), ruleset, as_of, trials).persist()
        else:  # history tables joined to their patients' partitions once, for the results and the rows naming no patient
            tables = read_long_dask(cohort)
            aligned = align(tables)
            aligned = LongTables({name: frame.persist() for name, frame in aligned.frames.items()}, aligned.urls, aligned.repeated)
            results = screen_long_dask(aligned, ruleset, as_of, trials).persist()
            unmatched.update(unmatched_rows(tables, aligned))
        if out.lower().endswith(".csv"):
            results.to_csv(out, single_file=True, index=False)
        else:
            results.astype(str).to_parquet(out, write_index=False)  # a folder of part files
        counts = results.groupby(["trial_id", "verdict"]).size().compute()
        errors = rows_with_errors(results, len(trials))  # each partition of results holds its patients' rows of every trial
    if cluster is not None:
        cluster.close()
    for (trial_id, verdict), n in counts.items():
        summary.verdicts.setdefault(str(trial_id), Counter())[str(verdict)] += int(n)
    summary.rows = int(max((sum(c.values()) for c in summary.verdicts.values()), default=0))
    summary.errors = int(errors)


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="Results written by screen-cohort (.csv or .parquet)")],
    out: Annotated[Path, typer.Option("--out", help="Folder for report.html, report.md, the charts and the near-miss lists (CSV)")],
    rules: RulesOption = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="The screening date the results were made for, YYYY-MM-DD: checked against the results' as_of column (results without one: shown as given)")] = None,
) -> None:
    """Attrition funnel, verdict counts and near-miss worklists from cohort results."""
    from .cohort.report import write_reports

    stated = _date(as_of) if as_of is not None else None  # the results' own date otherwise
    _check_exists(results)
    try:
        ruleset = _rules(rules)  # a rules error names its file
        frame = _read_results(results)  # a file that cannot be read names itself
    except (ScreeningError, OSError) as exc:
        raise _fail(str(exc)) from None
    try:
        html_path, md_path = write_reports(frame, ruleset, out, stated)
    except (ScreeningError, OSError) as exc:
        raise _fail(f"{results}: {exc}") from None
    typer.echo(f"report: {html_path} and {md_path}")


@app.command()
def watch(
    events: Annotated[Optional[Path], typer.Argument(help="Events as JSON lines (default: standard input)")] = None,
    rules: RulesOption = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Screening date for events without their own as_of (default: the day each event is read)")] = None,
    engine: Annotated[EngineChoice, typer.Option("--engine", help="durable (durable_rules Rete), explain (reference) or vectorized (pandas)")] = EngineChoice.DURABLE,
    max_patients: Annotated[int, typer.Option("--max-patients", min=1, help="Patients kept; the least recently updated is evicted")] = 100_000,
    max_line_chars: Annotated[int, typer.Option("--max-line-chars", min=1, help="Longest event line read; a longer one is an error line")] = 1_000_000,
) -> None:
    """Re-screen patients as events arrive; print a JSON line whenever a verdict (or what decides it) changes."""
    from .watch import Watcher, bounded_lines

    screening_date = _date(as_of) if as_of is not None else None  # None: the day each event is read
    try:
        ruleset = _rules(rules)
    except ScreeningError as exc:
        raise _fail(str(exc)) from None
    watcher = Watcher(ruleset, screening_date, engine=engine.value, max_patients=max_patients, max_line_chars=max_line_chars)
    try:
        # undecodable bytes become U+FFFD, so that line is an error record and the stream goes on;
        # utf-8-sig: a byte order mark before the first event is dropped (json refuses it)
        stream = (events.open(encoding="utf-8-sig", errors="replace") if events and str(events) != "-"
                  else io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", errors="replace"))
    except OSError as exc:
        raise _fail(f"{events}: cannot read: {exc.strerror}") from None
    with stream:
        for record in watcher.run(bounded_lines(stream, max_line_chars)):
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
            sys.stdout.flush()


@app.command()
def trials(rules: RulesOption = None, format: Annotated[Format, typer.Option("--format", help="text or json")] = Format.TEXT) -> None:
    """List the loaded trials."""
    try:
        ruleset = _rules(rules)
    except ScreeningError as exc:
        raise _fail(str(exc)) from None
    rows = [
        {
            "trial_id": t.trial.id,
            "title": t.trial.title,
            "phase": t.trial.phase,
            "version": t.trial.version,
            "rules_hash": t.rules_hash,
            "basis": t.trial.source.basis.value,
            "criteria": len(t.trial.criteria),
            "file": t.file,
        }
        for t in ruleset.trials.values()
    ]
    if format is Format.JSON:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title=f"Trials in {ruleset.directory}")
    for column in ("trial_id", "phase", "criteria", "version", "rules_hash", "basis", "title"):
        table.add_column(column, no_wrap=column in ("trial_id", "version", "rules_hash", "basis"))  # whole: the title wraps
    for row in rows:
        table.add_row(*(str(row[c]) for c in ("trial_id", "phase", "criteria", "version", "rules_hash", "basis", "title")))
    _console().print(table)


@app.command()
def validate(directory: Annotated[Optional[Path], typer.Argument(help="Rules directory (default: $SCREENING_RULES or ./rules)")] = None) -> None:
    """Check the rules files and code lists; exit 2 naming the file and criterion on a problem."""
    try:
        ruleset = _rules(directory)
    except ScreeningError as exc:
        raise _fail(str(exc)) from None
    n_criteria = sum(len(t.trial.criteria) for t in ruleset.trials.values())
    typer.echo(f"ok: {len(ruleset.trials)} trials, {n_criteria} criteria, {len(ruleset.codelists)} code lists in {ruleset.directory}")


@app.command()
def schema(
    write: Annotated[Optional[Path], typer.Option("--write", help="Write every schema into this directory instead")] = None,
) -> None:
    """Print the patient profile JSON Schema (or write all schemas with --write DIR)."""
    from .patient.model import PatientProfile
    from .schemas import render, write_all

    if write is not None:
        for path in write_all(write):
            typer.echo(f"wrote {path}")
        return
    sys.stdout.write(render(PatientProfile))


@app.command()
def serve(
    rules: RulesOption = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback by default)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes (production: one per core)")] = 1,
    max_body_bytes: Annotated[Optional[int], typer.Option("--max-body-bytes", min=1, help="Largest request body accepted, 413 above (default: $SCREENING_MAX_BODY_BYTES or 16 MiB)")] = None,
) -> None:
    """Serve screening over HTTP (FastAPI under uvicorn). SIGHUP reloads the rules (with --workers
    N, SIGHUP to this process replaces every worker); so does POST /admin/reload. Other settings
    come from the environment (see screening/service/config.py), e.g. $SCREENING_ADMIN_TOKEN."""
    from .service.config import ServiceConfig
    from .service.run import serve as run_service

    given = {"rules_dir": rules, "max_body_bytes": max_body_bytes}
    try:
        config = replace(ServiceConfig.from_env(), reload_on_sighup=True, **{k: v for k, v in given.items() if v is not None})
    except ValueError as exc:  # a malformed $SCREENING_... number
        raise _fail(str(exc)) from None
    try:
        run_service(config, host, port, workers)
    except ScreeningError as exc:
        raise _fail(str(exc)) from None


def main() -> None:
    app()


if __name__ == "__main__":
    main()
