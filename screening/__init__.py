"""Clinical-trial eligibility screening: declarative trial rules, explained three-valued verdicts.

    >>> import datetime as dt
    >>> from screening import load_rules, load_patient, screen
    >>> rules = load_rules("rules")
    >>> patient = load_patient("patients/examples/P01-jakarta-cpb-si-eligible.json")
    >>> screen(patient, rules, as_of=dt.date(2026, 11, 22)).results[1].verdict
    <Verdict.ELIGIBLE: 'eligible'>

One patient: :func:`load_patient` (a native profile or a FHIR R4 Bundle; with the mapping
warnings: :func:`load_patient_with_warnings`) and :func:`screen`. A cohort: :func:`read_cohort`
(flat table, long tables or NDJSON, in chunks) and :func:`screen_cohort` (one result row per
patient and trial). Rules: :func:`load_rules`, once, then reuse the :class:`RuleSet`.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal, get_args

from ._version import __version__
from .errors import EvaluatorGap, PatientDataError, RulesError, ScreeningError, UnitError, UnknownTrialError
from .evaluators.explain import screen_patient
from .logic import CriterionKind, Outcome, Verdict
from .patient.io import load_patient, load_patient_with_warnings, parse_patient
from .patient.model import PatientProfile
from .results import CriterionResult, Evidence, ScreeningResult, TrialResult
from .rules.loader import RuleSet, load_rules

if TYPE_CHECKING:
    from .cohort import CohortSummary, read_cohort, screen_cohort
    from .evaluators.durable import DurableEngine, durable_engine

# Imported on first use (PEP 562), so screening one patient does not load pandas or durable_rules.
# A function annotated with a lazy name is lazy too, defined beside it (its annotations then resolve).
_LAZY = {
    "CohortSummary": ".cohort", "read_cohort": ".cohort", "screen_cohort": ".cohort",
    "DurableEngine": ".evaluators.durable", "durable_engine": ".evaluators.durable",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


Engine = Literal["explain", "durable", "vectorized"]
ENGINES: tuple[str, ...] = get_args(Engine)


def screen(
    patient: PatientProfile,
    rules: RuleSet,
    as_of: dt.date | None = None,
    trials: Iterable[str] | None = None,
    engine: Engine = "explain",
) -> ScreeningResult:
    """Screen one patient against the loaded trials (or only ``trials``).

    ``as_of`` is the screening date every age and look-back window counts from; it defaults to
    today, so pass it explicitly for reproducible results. ``engine`` chooses the evaluator:
    ``explain`` (the reference), ``durable`` (the durable_rules Rete network) or ``vectorized``
    (the pandas column evaluator, here on a cohort of one), compiled once per rule set; all give
    identical results. A wrong argument type is a :class:`TypeError` naming the argument; an
    empty ``trials`` a :class:`ValueError` (``None`` screens every trial); an unknown trial id an
    :class:`UnknownTrialError` (:meth:`RuleSet.select` checks the selection for every entry point).
    """
    if not isinstance(patient, PatientProfile):
        raise TypeError(f"patient must be a PatientProfile, not {type(patient).__name__} (read one with load_patient or parse_patient)")
    if not isinstance(rules, RuleSet):
        raise TypeError(f"rules must be a RuleSet, not {type(rules).__name__} (load one with load_rules)")
    if as_of is not None and (not isinstance(as_of, dt.date) or isinstance(as_of, dt.datetime)):
        raise TypeError(f"as_of must be a datetime.date, not {type(as_of).__name__}")
    trials = rules.select(trials)  # checked once here, for every engine
    as_of = as_of or dt.date.today()
    if engine == "explain":
        return screen_patient(patient, rules, as_of, trials)
    if engine == "durable":
        from .evaluators.durable import durable_engine

        return durable_engine(rules).screen(patient, as_of, trials)
    if engine == "vectorized":
        if "vectorized" not in rules.compiled:
            from .evaluators.vectorized import VectorizedEngine

            rules.compiled["vectorized"] = VectorizedEngine(rules)
        return rules.compiled["vectorized"].screen(patient, as_of, trials)
    raise ValueError(f"unknown engine {engine!r}: one of {', '.join(ENGINES)}")


__all__ = [
    "CriterionKind",
    "DurableEngine",
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
    "UnknownTrialError",
    "Verdict",
    "CohortSummary",
    "__version__",
    "durable_engine",
    "load_patient_with_warnings",
    "read_cohort",
    "screen_cohort",
    "load_patient",
    "load_rules",
    "parse_patient",
    "screen",
]
