"""The public API is small and explicit; this pins it."""

import inspect
import typing

import pytest

import screening


def test_public_names():
    assert sorted(screening.__all__) == [
        "CohortSummary", "CriterionKind", "CriterionResult", "DurableEngine", "EvaluatorGap", "Evidence", "Outcome", "PatientDataError", "PatientProfile",
        "RuleSet", "RulesError", "ScreeningError", "ScreeningResult", "TrialResult", "UnitError", "UnknownTrialError", "Verdict", "__version__",
        "durable_engine", "load_patient", "load_patient_with_warnings", "load_rules", "parse_patient", "read_cohort", "screen",
        "screen_cohort",
    ]
    for name in screening.__all__:
        assert hasattr(screening, name)


def test_every_expression_type_has_a_handler():
    from screening.evaluators.explain import HANDLERS
    from screening.rules.model import EXPRESSION_TYPES

    assert set(HANDLERS) == set(EXPRESSION_TYPES)


def _annotated(obj):
    """``obj`` and, for a class, the public functions it defines (methods, properties, ``__init__``)."""
    yield obj
    if inspect.isclass(obj):
        for name, member in vars(obj).items():
            member = getattr(member, "fget", getattr(member, "__func__", member))  # property, classmethod, staticmethod
            if (name == "__init__" or not name.startswith("_")) and inspect.isfunction(member):
                yield member


@pytest.mark.parametrize("name", [name for name in screening.__all__ if callable(getattr(screening, name))])
def test_public_annotations_resolve(name, monkeypatch):
    """typing.get_type_hints works on the public API as first imported: no lazy name is resolved
    yet (resolving one caches it in the package, where annotations of the package's own could
    then find it), so none is taken for granted."""
    for lazy in screening._LAZY:
        monkeypatch.delitem(vars(screening), lazy, raising=False)
    failures = {}
    for target in _annotated(getattr(screening, name)):
        try:
            typing.get_type_hints(target)
        except Exception as exc:  # noqa: BLE001 - reported below, per target
            failures[target.__qualname__] = repr(exc)
    assert failures == {}
