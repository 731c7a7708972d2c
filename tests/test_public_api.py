"""The public API is small and explicit; this pins it."""

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
