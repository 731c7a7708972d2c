"""The public API is small and explicit; this pins it."""

import datetime
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


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"as_of": "2026-11-22"}, "as_of must be a datetime.date, not str"),
        ({"as_of": 20261122}, "as_of must be a datetime.date, not int"),
        ({"as_of": datetime.datetime(2026, 11, 22, 9, 30)}, "as_of must be a datetime.date, not datetime"),
        ({"trials": "NCT04357600"}, "trials must be a collection of trial ids, not one str"),
        ({"patient": {"id": "P"}}, "patient must be a PatientProfile, not dict"),
        ({"rules": "rules"}, "rules must be a RuleSet, not str"),
    ],
)
@pytest.mark.parametrize("engine", ["explain", "durable"])
def test_wrong_argument_types_are_a_type_error_naming_the_argument(rules, arguments, message, engine):
    arguments = {"patient": screening.parse_patient({"id": "P"}), "rules": rules, "as_of": datetime.date(2026, 11, 22), **arguments}
    with pytest.raises(TypeError) as raised:
        screening.screen(**arguments, engine=engine)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize("engine", ["explain", "durable", "vectorized"])
def test_trials_may_be_any_iterable_of_ids(rules, engine):
    patient = screening.parse_patient({"id": "P"})
    for trials in (["NCT04357600"], ("NCT04357600",), iter(["NCT04357600"]), (t for t in ["NCT04357600"])):
        result = screening.screen(patient, rules, as_of=datetime.date(2026, 11, 22), trials=trials, engine=engine)
        assert [t.trial_id for t in result.results] == ["NCT04357600"], trials


def _screen_one(engine):
    def run(rules, trials):
        return screening.screen(screening.parse_patient({"id": "P"}), rules, as_of=datetime.date(2026, 11, 22), trials=trials, engine=engine)

    return run


def _screen_cohort(rules, trials):
    return list(screening.screen_cohort(screening.read_cohort("patients/cohorts/flat-sample.csv"), rules, datetime.date(2026, 11, 22), trials))


def _screen_dask(rules, trials):
    import dask.dataframe as dd
    import pandas as pd

    from screening.cohort.distributed import screen_dask

    return screen_dask(dd.from_pandas(pd.DataFrame({"id": ["P"]}), npartitions=1), rules, datetime.date(2026, 11, 22), trials).compute()


SELECTING = {"screen, explain": _screen_one("explain"), "screen, durable": _screen_one("durable"), "screen, vectorized": _screen_one("vectorized"),
             "screen_cohort": _screen_cohort, "screen_dask": _screen_dask}


@pytest.mark.parametrize(
    ("trials", "error", "message"),
    [
        ([], ValueError, "trials is empty: pass None to screen every loaded trial"),
        ((), ValueError, "trials is empty"),
        ("NCT04357600", TypeError, "trials must be a collection of trial ids, not one str"),
        ([1], TypeError, "a trial id must be a str, not int"),
        (["NCT00000000", "NCT04357600"], screening.UnknownTrialError, "unknown trial(s): NCT00000000"),
    ],
)
@pytest.mark.parametrize("caller", SELECTING)
def test_every_entry_point_checks_the_trial_selection_alike(rules, caller, trials, error, message):
    """The same selection is refused the same way by every entry point (an empty one used to give
    no results from screen and screen_cohort, and every trial from screen_dask)."""
    with pytest.raises(error) as raised:
        SELECTING[caller](rules, trials)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize("caller", SELECTING)
def test_every_entry_point_screens_the_selected_trials_only(rules, caller):
    result = SELECTING[caller](rules, iter(["NCT04357600", "NCT04357600"]))
    if caller.startswith("screen,"):
        assert [t.trial_id for t in result.results] == ["NCT04357600"]
    else:
        frames = result if isinstance(result, list) else [result]
        assert {str(t) for frame in frames for t in frame["trial_id"]} == {"NCT04357600"}
