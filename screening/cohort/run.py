"""Screen a cohort chunk by chunk with the vectorized evaluator.

Every input row gives one output row per trial, in input order (rows out == rows in x trials): a
row that cannot be evaluated (invalid profile, unconvertible unit, impossible date) gets verdict
``error`` and the reason, and the run goes on. The missing data of undetermined rows comes from
the reference evaluator, run only on their unknown criteria.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..errors import ScreeningError
from ..evaluators.explain import evaluate_criterion
from ..evaluators.flat import flatten
from ..evaluators.vectorized import compile_trial, frame_of, verdicts
from ..facts.resolve import PatientFacts
from ..logic import Outcome, Verdict
from ..patient.io import parse_patient
from ..rules.loader import RuleSet

COLUMNS = ["patient_id", "trial_id", "verdict", "deciding", "unknown", "missing", "criteria", "error"]


@dataclass
class CohortSummary:
    """Counts by trial and verdict (``error`` included), filled in as chunks are screened."""

    rows: int = 0
    errors: int = 0
    verdicts: dict[str, Counter] = field(default_factory=dict)

    def add(self, frame: pd.DataFrame) -> None:
        for trial_id, counts in frame.groupby("trial_id", sort=True)["verdict"].value_counts().groupby(level=0):
            self.verdicts.setdefault(str(trial_id), Counter()).update({v: int(n) for (_, v), n in counts.items()})


def _patient_id(data: Any) -> str:
    return str(data.get("id")) if isinstance(data, dict) and data.get("id") is not None else ""


def screen_cohort(
    chunks: Iterable[list[dict[str, Any]]], rules: RuleSet, as_of: dt.date, trials: Iterable[str] | None = None,
    summary: CohortSummary | None = None,
) -> Iterator[pd.DataFrame]:
    """Result frames (columns :data:`COLUMNS`), one per input chunk."""
    selected = sorted(set(trials)) if trials is not None else list(rules.trials)
    compiled = {trial_id: compile_trial(rules.trials[trial_id]) for trial_id in selected}
    summary = summary if summary is not None else CohortSummary()
    for chunk in chunks:
        profiles, invalid = {}, {}
        for index, data in enumerate(chunk):
            if isinstance(data, dict) and "__error__" in data:
                invalid[index] = data["__error__"]
                continue
            try:
                profiles[index] = parse_patient(data)
            except ScreeningError as exc:
                invalid[index] = str(exc)
        rows: list[dict[str, Any]] = []
        for trial_id in selected:
            rows.extend(_screen_trial(compiled[trial_id], rules, as_of, chunk, profiles, invalid))
        frame = pd.DataFrame(rows, columns=COLUMNS)
        frame["_order"] = [r["_order"] for r in rows]
        frame = frame.sort_values(["_order", "trial_id"], kind="stable").drop(columns="_order").reset_index(drop=True)
        summary.rows += len(chunk)
        summary.errors += len({r["_order"] for r in rows if r["verdict"] == "error"})
        summary.add(frame)
        yield frame


def _screen_trial(compiled, rules: RuleSet, as_of: dt.date, chunk, profiles, invalid) -> list[dict[str, Any]]:
    loaded = compiled.loaded
    trial_id = loaded.trial.id
    errors = dict(invalid)
    records, facts_by_row = {}, {}
    for index, profile in profiles.items():
        try:
            facts = PatientFacts(profile, as_of, loaded.trial.defaults, rules.codelists)
            records[index] = flatten(compiled.leaves, facts)
            facts_by_row[index] = facts
        except ScreeningError as exc:
            errors[index] = str(exc)
    order = sorted(records)
    outcomes = compiled.outcomes(frame_of(records))
    decided = verdicts(loaded, outcomes)
    criteria = {c.id: c for c in loaded.trial.criteria}
    ids = list(outcomes.columns)
    position = {index: i for i, index in enumerate(order)}
    matrix = outcomes.astype(object).to_numpy()
    verdict_values, deciding_values, unknown_values = (decided[c].astype(object).to_numpy() for c in ("verdict", "deciding", "unknown"))
    rows = []
    for index in range(len(chunk)):
        row: dict[str, Any] = {"_order": index, "patient_id": _patient_id(chunk[index]), "trial_id": trial_id}
        if index in errors:
            row.update(verdict="error", deciding="", unknown="", missing="", criteria="", error=errors[index])
        else:
            at = position[index]
            verdict = verdict_values[at]
            missing = ""
            if verdict == Verdict.UNDETERMINED.value:
                unknown = [cid for cid, value in zip(ids, matrix[at]) if value == Outcome.UNKNOWN.value]
                items = {m for cid in unknown for m in evaluate_criterion(criteria[cid], facts_by_row[index]).missing}
                missing = ";".join(sorted(items))
            row.update(
                verdict=verdict, deciding=deciding_values[at], unknown=unknown_values[at], missing=missing,
                criteria=";".join(f"{cid}={value}" for cid, value in zip(ids, matrix[at])), error="",
            )
        rows.append(row)
    return rows
