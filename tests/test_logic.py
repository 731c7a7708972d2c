"""Kleene three-valued logic: full truth tables, at-least-N, applicability, the verdict."""

from __future__ import annotations

import pytest

from screening.logic import CriterionKind, Outcome, Verdict, all_of, any_of, applicable, at_least, fails, not_, verdict

T, F, U = True, False, None

AND = [  # a, b, a and b
    (T, T, T), (T, F, F), (T, U, U),
    (F, T, F), (F, F, F), (F, U, F),
    (U, T, U), (U, F, F), (U, U, U),
]
OR = [
    (T, T, T), (T, F, T), (T, U, T),
    (F, T, T), (F, F, F), (F, U, U),
    (U, T, T), (U, F, U), (U, U, U),
]
NOT = [(T, F), (F, T), (U, U)]


@pytest.mark.parametrize(("a", "b", "expected"), AND)
def test_and(a, b, expected):
    assert all_of([a, b]) is expected


@pytest.mark.parametrize(("a", "b", "expected"), OR)
def test_or(a, b, expected):
    assert any_of([a, b]) is expected


@pytest.mark.parametrize(("a", "expected"), NOT)
def test_not(a, expected):
    assert not_(a) is expected


def test_empty_connectives_are_identities():
    assert all_of([]) is True
    assert any_of([]) is False


@pytest.mark.parametrize(
    ("n", "values", "expected"),
    [
        (2, [T, T, F], T),
        (2, [T, U, F], U),
        (2, [T, F, F], F),
        (2, [U, U, F], U),
        (3, [T, T, U], U),
        (1, [F, F, F], F),
        (1, [U, F, F], U),
        (3, [T, T, T], T),
        (1, [T, T, U], T),  # more true than needed
        (2, [T, U, U], U),  # more unknowns than needed: still undecided, not false
        (3, [T, U, F], F),  # even with the unknown true, one short
        (1, [U, U], U),
        (0, [], T),
        (0, [F, U], T),
    ],
)
def test_at_least(n, values, expected):
    assert at_least(n, values) is expected


K = CriterionKind
O = Outcome


@pytest.mark.parametrize(
    ("applies", "value", "kind", "expected"),
    [
        (F, T, K.EXCLUSION, O.NOT_APPLICABLE),
        (F, U, K.INCLUSION, O.NOT_APPLICABLE),
        (T, T, K.EXCLUSION, O.MET),
        (T, U, K.EXCLUSION, O.UNKNOWN),
        (U, F, K.EXCLUSION, O.NOT_MET),  # passes either way
        (U, T, K.EXCLUSION, O.UNKNOWN),  # fails only if it applies
        (U, T, K.INCLUSION, O.MET),  # passes either way
        (U, F, K.INCLUSION, O.UNKNOWN),
        (U, U, K.INCLUSION, O.UNKNOWN),
    ],
)
def test_applicability(applies, value, kind, expected):
    assert applicable(applies, value, kind) is expected


FAILS = [  # kind, outcome, makes the patient ineligible
    (K.INCLUSION, O.MET, F), (K.INCLUSION, O.NOT_MET, T), (K.INCLUSION, O.UNKNOWN, F), (K.INCLUSION, O.NOT_APPLICABLE, F),
    (K.EXCLUSION, O.MET, T), (K.EXCLUSION, O.NOT_MET, F), (K.EXCLUSION, O.UNKNOWN, F), (K.EXCLUSION, O.NOT_APPLICABLE, F),
]


@pytest.mark.parametrize(("kind", "outcome", "expected"), FAILS)
def test_fails(kind, outcome, expected):
    assert fails(kind, outcome) is expected


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([(K.INCLUSION, O.MET), (K.EXCLUSION, O.NOT_MET)], Verdict.ELIGIBLE),
        ([(K.INCLUSION, O.MET), (K.EXCLUSION, O.NOT_APPLICABLE)], Verdict.ELIGIBLE),
        ([(K.INCLUSION, O.NOT_MET), (K.EXCLUSION, O.UNKNOWN)], Verdict.INELIGIBLE),
        ([(K.INCLUSION, O.UNKNOWN), (K.EXCLUSION, O.MET)], Verdict.INELIGIBLE),
        ([(K.INCLUSION, O.UNKNOWN), (K.EXCLUSION, O.NOT_MET)], Verdict.UNDETERMINED),
        ([(K.INCLUSION, O.MET), (K.EXCLUSION, O.UNKNOWN)], Verdict.UNDETERMINED),
        ([(K.INCLUSION, O.NOT_APPLICABLE)], Verdict.ELIGIBLE),
    ],
)
def test_verdict(outcomes, expected):
    assert verdict(outcomes) is expected
