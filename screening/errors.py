"""Errors, split by who must act.

    ScreeningError
    ├── RulesError            the rule author: a rules or code-list file is wrong
    │                         (names the file, the criterion id and the problem, with a suggestion)
    ├── PatientDataError      the data owner: a patient record is wrong (names the patient and field)
    │   └── UnitError         a lab unit that cannot be converted for its analyte
    ├── UnknownTrialError     the caller: asked for a trial no rules file defines
    └── EvaluatorGap          the developer: an evaluator has no handler for a rule node

Missing data is never an exception: it is an ``unknown`` outcome with a ``missing`` entry.
"""

from __future__ import annotations


class ScreeningError(Exception):
    """Root of every error this package raises on purpose."""


class RulesError(ScreeningError):
    """A rules file or code list is malformed. Raised at load time, never while screening."""

    def __init__(self, file: str, problem: str, criterion: str | None = None, suggestion: str | None = None):
        self.file = file
        self.criterion = criterion
        self.problem = problem
        self.suggestion = suggestion
        where = f"{file}: criterion {criterion}" if criterion else file
        hint = f" (did you mean {suggestion!r}?)" if suggestion else ""
        super().__init__(f"{where}: {problem}{hint}")


class PatientDataError(ScreeningError):
    """A patient record cannot be used as given. Names the patient (when known) and the field."""

    def __init__(self, problem: str, field: str | None = None, patient_id: str | None = None, source: str | None = None):
        self.problem = problem
        self.field = field
        self.patient_id = patient_id
        self.source = source
        parts = [p for p in (source, f"patient {patient_id}" if patient_id else None, f"field {field}" if field else None) if p]
        super().__init__(": ".join(parts + [problem]))


class UnitError(PatientDataError):
    """A unit that is not valid UCUM, or not convertible for the analyte it is recorded on."""


class UnknownTrialError(ScreeningError):
    """A trial id that no loaded rules file defines."""

    def __init__(self, trial_ids: list[str]):
        self.trial_ids = trial_ids
        super().__init__(f"unknown trial(s): {', '.join(trial_ids)}")


class EvaluatorGap(ScreeningError):
    """An evaluator met a rule node it has no handler for: a bug, not a data problem."""
