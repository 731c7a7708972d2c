"""Screen a cohort chunk by chunk with the vectorized evaluator.

A chunk is a flat table (a pandas frame of :mod:`screening.cohort.flat` columns) or a list of
profile dicts (NDJSON, long tables, FHIR bulk export). A flat table is read column-wise
(:mod:`screening.cohort.cells`, :mod:`screening.cohort.columnar`); its rows that the column-wise
reading does not accept, and every profile dict, go through the profile model and the reference
fact resolver one at a time. Both give the same fact columns, evaluated together.

Every input row gives one output row per trial, in input order (rows out == rows in x trials): a
row that cannot be evaluated (invalid profile, unconvertible unit, impossible date) gets verdict
``error`` and the reason, and the run goes on.
"""

from __future__ import annotations

import ctypes
import datetime as dt
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from ..errors import ScreeningError
from ..evaluators.vectorized import FactColumns, VectorTrial, compile_trial, group_rows, join_marked, missing_masks, row_facts, trial_rows
from ..facts.resolve import PatientFacts
from ..logic import Verdict
from ..patient.io import parse_patient
from ..rules.loader import RuleSet
from ..rules.model import Defaults
from .cells import read_chunk
from .collector import fewer_collections
from .columnar import fact_columns
from .flat import ERROR_MARKER, FlatRow, row_to_profile
from .long import Profiles, Source, located

COLUMNS = ["patient_id", "trial_id", "rules_hash", "as_of", "verdict", "deciding", "unknown", "missing", "criteria", "error", "notice"]
Chunk = pd.DataFrame | list[dict[str, Any]]


@dataclass
class CohortSummary:
    """Counts by trial and verdict (``error`` included), filled in as chunks are screened."""

    rows: int = 0
    errors: int = 0
    notices: int = 0  # rows (patients) with a notice, e.g. recorded as deceased
    verdicts: dict[str, Counter] = field(default_factory=dict)

    def add(self, frame: pd.DataFrame) -> None:
        """Count ``frame``'s rows by ``trial_id`` and ``verdict``: from the codes of categorical
        columns (as screening gives them; other columns are encoded first). A missing one is not counted."""
        trials, verdicts = (frame[name].astype("category").array for name in ("trial_id", "verdict"))
        known = (trials.codes >= 0) & (verdicts.codes >= 0)
        width = len(verdicts.categories)
        pairs = trials.codes[known].astype(np.int64) * width + verdicts.codes[known]
        counts = np.bincount(pairs, minlength=len(trials.categories) * width)
        for at in np.flatnonzero(counts).tolist():  # trial by trial, in category order (as a groupby)
            trial_id, verdict = trials.categories[at // width], verdicts.categories[at % width]
            self.verdicts.setdefault(str(trial_id), Counter())[str(verdict)] += int(counts[at])


def _patient_id(data: Any) -> str:
    return str(data.get("id")) if isinstance(data, dict) and data.get("id") is not None else ""


def screen_cohort(
    chunks: Iterable[Chunk], rules: RuleSet, as_of: dt.date, trials: Iterable[str] | None = None, summary: CohortSummary | None = None,
    workers: int = 1,
) -> Iterator[pd.DataFrame]:
    """Result frames (columns :data:`COLUMNS`), one per input chunk, in input order. With
    ``workers`` > 1, chunks are screened in that many processes (at most two chunks each in
    flight, so memory stays bounded). Chunks are read and screened with the garbage collector
    paced for batch work (:mod:`screening.cohort.collector`)."""
    selected = rules.select(trials)
    summary = summary if summary is not None else CohortSummary()
    if workers > 1:
        screened: Iterable[tuple[pd.DataFrame, int, int, int]] = _in_processes(chunks, rules, as_of, selected, workers)
    else:
        compiled = [compile_trial(rules.trials[trial_id]) for trial_id in selected]
        screened = (_screen_chunk(chunk, rules, as_of, compiled) for chunk in chunks)
    with fewer_collections():
        for frame, rows, errors, notices in screened:
            summary.rows += rows
            summary.errors += errors
            summary.notices += notices
            summary.add(frame)
            yield frame


def _screen_chunk(chunk: Chunk, rules: RuleSet, as_of: dt.date, compiled: list[VectorTrial]) -> tuple[pd.DataFrame, int, int, int]:
    """(results, rows, rows with an error, rows with a notice) of one chunk."""
    batch = _TableBatch(chunk, rules, as_of) if isinstance(chunk, pd.DataFrame) else _ProfileBatch(chunk, rules, as_of)
    frame = _interleave([_trial_frame(trial, batch) for trial in compiled], batch.rows)
    errors = len(set().union(*(batch.errors(trial) for trial in compiled))) if compiled else 0
    return frame, batch.rows, errors, len(batch.notices)


_WORKER: dict[str, Any] = {}  # in a worker process: the rules, screening date and compiled trials


def _start_worker(rules: RuleSet, as_of: dt.date, selected: list[str]) -> None:
    _WORKER.update(rules=rules, as_of=as_of, compiled=[compile_trial(rules.trials[trial_id]) for trial_id in selected])
    _keep_freed_memory()


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>


def _keep_freed_memory() -> None:
    """In a worker process (ours, and short-lived): keep the memory a chunk frees for the next
    chunk instead of returning it to the system and faulting it back in page by page. A chunk
    allocates and frees a few hundred MB of arrays; with glibc's default trimming the page faults
    took about a third of a worker's time. Only glibc has these settings (elsewhere: nothing)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # no C library to open (TypeError: Windows), or no mallopt in it
        return
    mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # arrays up to 32 MB from the heap (the most glibc allows)
    mallopt(_M_TRIM_THRESHOLD, 1 << 30)  # and the heap not trimmed: the peak stays what it was


def _screen_in_worker(chunk: Chunk) -> tuple[pd.DataFrame, int, int, int]:
    with fewer_collections():
        return _screen_chunk(chunk, _WORKER["rules"], _WORKER["as_of"], _WORKER["compiled"])


def _in_processes(chunks: Iterable[Chunk], rules: RuleSet, as_of: dt.date, selected: list[str], workers: int) -> Iterator[tuple[pd.DataFrame, int, int, int]]:
    """Results in input order, each yielded as soon as it and those before it are done."""
    with ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(rules, as_of, selected)) as pool:
        for _ in range(workers):  # start (fork) the workers before reading: a reader may run a thread, and they warm up meanwhile
            pool.submit(int)
        pending: deque[Future] = deque()
        for chunk in chunks:
            pending.append(pool.submit(_screen_in_worker, chunk))
            while pending and (pending[0].done() or len(pending) >= 2 * workers):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class _ProfileBatch:
    """Profile dicts, each validated and resolved on its own."""

    def __init__(self, chunk: list[dict[str, Any]], rules: RuleSet, as_of: dt.date):
        self.rules, self.as_of, self.rows = rules, as_of, len(chunk)
        self.patient_ids = pd.array([_patient_id(data) for data in chunk], dtype="str")
        self.resolved: dict[int, PatientFacts] = {}  # by row, in row order
        self.invalid: dict[int, str] = {}
        self.notices: dict[int, str] = {}  # by row: what to check before contacting the patient (PatientProfile.notices)
        # of the profiles read from long tables or flat rows: where each was, to name a row of a table or a column in an error
        self.sources: dict[int, Source | FlatRow] = {i: source for i, source in enumerate(getattr(chunk, "sources", ())) if source is not None}
        for index, data in enumerate(chunk):
            if isinstance(data, dict) and ERROR_MARKER in data:
                self.invalid[index] = data[ERROR_MARKER]
                continue
            try:
                # the facts of every trial share the normalized records (PatientFacts.with_defaults);
                # a result the resolver refuses is an error whichever trial is screened
                profile = parse_patient(data)
                self.resolved[index] = PatientFacts(profile, as_of, Defaults(), rules.codelists)
            except ScreeningError as exc:
                self.invalid[index] = located(exc, self.sources.get(index))
                continue
            if notices := profile.notices():
                self.notices[index] = "; ".join(notices)
        self._errors: dict[str, dict[int, str]] = {}

    def errors(self, trial: VectorTrial) -> dict[int, str]:
        return self._errors[trial.loaded.trial.id]

    def facts(self, trial: VectorTrial) -> FactColumns:
        self._errors[trial.loaded.trial.id] = self.invalid
        defaults = trial.loaded.trial.defaults
        facts = row_facts(trial, (self.resolved[index].with_defaults(defaults) for index in self.resolved))
        columns = FactColumns(self.rows, {k: np.full(self.rows, np.nan) for k in facts.columns},
                              {k: (np.full(self.rows, -1), []) for k in facts.missing}, facts.imprecise)
        columns.put(np.array(list(self.resolved), dtype=np.int64), facts)
        return columns


class _TableBatch:
    """A flat table chunk: read column-wise; rows that reading refuses take the profile path."""

    def __init__(self, table: pd.DataFrame, rules: RuleSet, as_of: dt.date):
        self.rules, self.as_of, self.rows = rules, as_of, len(table)
        self.chunk = read_chunk(table, as_of)
        self.patient_ids = self.chunk.patient_ids
        self.refused = np.flatnonzero(~self.chunk.ok)
        refused_rows = table.iloc[self.refused].to_dict("records") if len(self.refused) else []
        profiles = [row_to_profile(row) for row in refused_rows]
        self.fallback = _ProfileBatch(Profiles(profiles, map(FlatRow, profiles)), rules, as_of)
        read = self.chunk.ok & (self.chunk.notices != "")
        self.notices: dict[int, str] = {int(i): self.chunk.notices[i] for i in np.flatnonzero(read)}
        self.notices |= {int(self.refused[i]): notice for i, notice in self.fallback.notices.items()}
        self._errors: dict[str, dict[int, str]] = {}

    def errors(self, trial: VectorTrial) -> dict[int, str]:
        return self._errors[trial.loaded.trial.id]

    def facts(self, trial: VectorTrial) -> FactColumns:
        columns = fact_columns(trial, self.chunk, self.rules.codelists)
        columns.put(self.refused, self.fallback.facts(trial))
        self._errors[trial.loaded.trial.id] = {int(self.refused[i]): message for i, message in self.fallback.errors(trial).items()}
        return columns


def _grouped_texts(codes: np.ndarray, texts: list[str]) -> pd.Categorical:
    """Per row ``texts[code]`` (``""`` for -1), as :class:`pd.Categorical` of it would be
    (sorted distinct categories) without hashing a string per row."""
    used = np.flatnonzero(np.bincount(codes + 1, minlength=len(texts) + 1)) - 1
    distinct = sorted({"" if code < 0 else texts[code] for code in used.tolist()})
    position = {text: i for i, text in enumerate(distinct)}
    table = np.array([position.get(text, -1) for text in texts] + [position.get("", -1)], dtype=np.int32)
    return pd.Categorical.from_codes(table[codes], categories=distinct)


def _categorical(values: pd.Categorical | np.ndarray, overrides: dict[int, str] | None = None) -> pd.Categorical:
    """``values`` as a categorical of strings, with rows replaced by ``overrides``."""
    categorical = values if isinstance(values, pd.Categorical) else pd.Categorical(values)
    if not overrides:
        return categorical
    new = sorted(set(overrides.values()) - set(categorical.categories))
    categorical = categorical.add_categories(new) if new else categorical.copy()
    codes = categorical.codes.copy()
    lookup = {c: i for i, c in enumerate(categorical.categories)}
    for row, value in overrides.items():
        codes[row] = lookup[value]
    return pd.Categorical.from_codes(codes, dtype=categorical.dtype)


def _trial_frame(trial: VectorTrial, batch: _TableBatch | _ProfileBatch) -> pd.DataFrame:
    facts = batch.facts(trial)
    errors = batch.errors(trial)
    codes = trial.outcome_codes(facts)
    rows = trial_rows(trial.loaded, codes)
    missing = np.full(batch.rows, -1, dtype=np.int64)  # per row a code into ``missing_texts`` (-1: "")
    missing_texts: list[str] = []
    undetermined = np.asarray(rows["verdict"] == Verdict.UNDETERMINED.value)
    undetermined[list(errors)] = False
    at = np.flatnonzero(undetermined)
    if len(at):
        masks, vocabulary = missing_masks(trial, facts.take(at), codes[at])
        missing[at], first = group_rows(masks.T)
        missing_texts = join_marked(vocabulary.items, vocabulary.marks(masks[first])).tolist()
    blank = {row: "" for row in errors}
    return pd.DataFrame({
        "patient_id": batch.patient_ids,
        "trial_id": _grouped_texts(np.zeros(batch.rows, dtype=np.int64), [trial.loaded.trial.id]),
        "rules_hash": _grouped_texts(np.zeros(batch.rows, dtype=np.int64), [trial.loaded.rules_hash]),  # what made the row
        "as_of": _grouped_texts(np.zeros(batch.rows, dtype=np.int64), [batch.as_of.isoformat()]),  # and on which screening date
        "verdict": _categorical(rows["verdict"], {row: "error" for row in errors}),
        "deciding": _categorical(rows["deciding"], blank),
        "unknown": _categorical(rows["unknown"], blank),
        "missing": _categorical(_grouped_texts(missing, missing_texts), blank),
        "criteria": _categorical(rows["criteria"], blank),
        "error": _categorical(_grouped_texts(np.full(batch.rows, -1, dtype=np.int64), []), errors),
        "notice": _categorical(_grouped_texts(np.full(batch.rows, -1, dtype=np.int64), []), batch.notices),
    })


def _interleave(frames: list[pd.DataFrame], rows: int) -> pd.DataFrame:
    """One frame, row by row and trial by trial within a row (input order kept)."""
    if len(frames) == 1:
        return frames[0]
    if not frames:
        return pd.DataFrame({c: pd.Categorical([]) for c in COLUMNS})
    order = (np.arange(rows)[:, None] + rows * np.arange(len(frames))[None, :]).reshape(-1)
    columns = {}
    for column in COLUMNS:
        parts = [f[column].array for f in frames]
        if all(isinstance(part, pd.Categorical) for part in parts):
            columns[column] = union_categoricals(parts, ignore_order=True).take(order)
        else:
            columns[column] = pd.array(np.concatenate([np.asarray(part, dtype=object) for part in parts])[order], dtype="str")
    return pd.DataFrame(columns)
