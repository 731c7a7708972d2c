"""Clinical-trial eligibility screening: declarative trial rules, explained three-valued verdicts.

    >>> from screening import load_rules, load_patient, screen
    >>> rules = load_rules("rules")
    >>> patient = load_patient("patients/examples/P01-eligible-si-units.json")
    >>> result = screen(patient, rules, as_of=datetime.date(2026, 11, 22))
    >>> result.results[0].verdict
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from ._version import __version__
from .errors import EvaluatorGap, PatientDataError, RulesError, ScreeningError, UnitError
from .evaluators.explain import screen_patient
from .logic import CriterionKind, Outcome, Verdict
from .patient.io import load_patient, parse_patient
from .patient.model import PatientProfile
from .results import CriterionResult, Evidence, ScreeningResult, TrialResult
from .rules.loader import RuleSet, load_rules


def screen(
    patient: PatientProfile, rules: RuleSet, as_of: dt.date | None = None, trials: Iterable[str] | None = None
) -> ScreeningResult:
    """Screen one patient against the loaded trials (or only ``trials``).

    ``as_of`` is the screening date every age and look-back window counts from; it defaults to
    today, so pass it explicitly for reproducible results.
    """
    unknown = set(trials or ()) - set(rules.trials)
    if unknown:
        raise KeyError(f"unknown trial(s): {', '.join(sorted(unknown))}")
    return screen_patient(patient, rules, as_of or dt.date.today(), trials)


__all__ = [
    "CriterionKind",
    "CriterionResult",
    "EvaluatorGap",
    "Evidence",
    "Outcome",
    "PatientDataError",
    "PatientProfile",
    "RuleSet",
    "RulesError",
    "ScreeningError",
    "ScreeningResult",
    "TrialResult",
    "UnitError",
    "Verdict",
    "__version__",
    "load_patient",
    "load_rules",
    "parse_patient",
    "screen",
]
