"""Three-valued (Kleene) logic, criterion outcomes and the trial verdict.

A truth value is ``True``, ``False`` or ``None`` (unknown). ``all_of``/``any_of``/``not_``/
``at_least`` are Kleene's strong connectives: an unknown operand matters only when the known ones
do not already decide. Unknown is collapsed in exactly one place, :func:`verdict`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

Truth = bool | None


class Outcome(StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    UNKNOWN = "unknown"
    NOT_APPLICABLE = "not_applicable"


class CriterionKind(StrEnum):
    INCLUSION = "inclusion"
    EXCLUSION = "exclusion"


class Verdict(StrEnum):
    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    UNDETERMINED = "undetermined"


def not_(value: Truth) -> Truth:
    return None if value is None else not value


def all_of(values: Iterable[Truth]) -> Truth:
    result: Truth = True
    for value in values:
        if value is False:
            return False
        if value is None:
            result = None
    return result


def any_of(values: Iterable[Truth]) -> Truth:
    result: Truth = False
    for value in values:
        if value is True:
            return True
        if value is None:
            result = None
    return result


def at_least(n: int, values: Iterable[Truth]) -> Truth:
    """True when at least ``n`` operands are true, False when even all unknowns could not get there."""
    values = list(values)
    true = sum(1 for v in values if v is True)
    unknown = sum(1 for v in values if v is None)
    if true >= n:
        return True
    if true + unknown < n:
        return False
    return None


_OUTCOMES: dict[Truth, Outcome] = {True: Outcome.MET, False: Outcome.NOT_MET, None: Outcome.UNKNOWN}


def outcome_of(value: Truth) -> Outcome:
    return _OUTCOMES[value]


def applicable(applies: Truth, value: Truth, kind: CriterionKind) -> Outcome:
    """Outcome of a criterion that applies only when ``applies`` holds.

    Not applicable satisfies the criterion. When applicability is unknown the outcome is decided
    only if the criterion passes either way (its rule gives the passing answer, which is then
    reported); otherwise it is unknown, so learning the applicability can never flip a decided
    verdict (a passing ``met``/``not_met`` may become ``not_applicable``, which also passes).
    """
    if applies is False:
        return Outcome.NOT_APPLICABLE
    if applies is True:
        return outcome_of(value)
    passing = value is (kind is CriterionKind.INCLUSION)
    return outcome_of(value) if passing else Outcome.UNKNOWN


FAILING_OUTCOME: dict[CriterionKind, Outcome] = {CriterionKind.INCLUSION: Outcome.NOT_MET, CriterionKind.EXCLUSION: Outcome.MET}
"""The outcome of each kind of criterion that makes the patient ineligible."""


def fails(kind: CriterionKind, outcome: Outcome) -> bool:
    """A criterion outcome that makes the patient ineligible: an inclusion not met, an exclusion met."""
    return outcome is FAILING_OUTCOME[kind]


def verdict(outcomes: Iterable[tuple[CriterionKind, Outcome]]) -> Verdict:
    """Ineligible if any criterion fails; otherwise undetermined if any is unknown; else eligible."""
    unknown = False
    for kind, outcome in outcomes:
        if outcome is FAILING_OUTCOME[kind]:
            return Verdict.INELIGIBLE
        unknown = unknown or outcome is Outcome.UNKNOWN
    return Verdict.UNDETERMINED if unknown else Verdict.ELIGIBLE
