"""The rule model: a trial is a list of criteria, each with a rule expression.

Rule expressions are a tagged union (``type:``) of frozen pydantic models with ``extra="forbid"``,
so a typo in a rules file is an error, not a silently ignored key. The same class names are used
by every evaluator: the explaining evaluator has a handler per class, and a test checks that
every class has one.

Expression kinds (``type``):

==============  ===============================================================================
all / any       Kleene and / or over ``of``
not             Kleene negation of ``of``
at_least        at least ``n`` of ``of`` are met
compare         a numeric fact against a value: ``fact op value [unit]``
range           a numeric fact within ``min``/``max`` (each inclusive unless told otherwise)
is              a categorical fact equals ``value`` (or one of ``values``)
lab_result      the latest qualitative result of an analyte is positive / negative
condition       a condition from a code list is active / was ever recorded / within a window
medication      a medication from a code list is active / ever / within a window
procedure       a procedure from a code list was done (ever, or within a window), ``at_least`` times
imaging         an imaging study (of the given modalities) in the window shows a finding
==============  ===============================================================================
"""

from __future__ import annotations

import calendar
import datetime as dt
from enum import StrEnum
from collections.abc import Iterator
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from ..logic import CriterionKind
from ..patient.model import ImagingFinding as Finding
from ..patient.model import Modality


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):  # pydantic would read True as 1
        raise ValueError(f"a number is needed, not {value!r} (YAML reads yes/no/true/false/on/off as booleans)")
    return value


Number = Annotated[float, BeforeValidator(_not_bool)]
Count = Annotated[int, BeforeValidator(_not_bool)]


class Window(_Rule):
    """A look-back period ending at the screening date (inclusive at both ends)."""

    days: Annotated[int, Field(ge=0, le=36_600), BeforeValidator(_not_bool)] | None = None
    weeks: Annotated[int, Field(ge=0, le=5_300), BeforeValidator(_not_bool)] | None = None
    months: Annotated[int, Field(ge=0, le=1_200), BeforeValidator(_not_bool)] | None = None
    years: Annotated[int, Field(ge=0, le=100), BeforeValidator(_not_bool)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Window:
        if sum(v is not None for v in (self.days, self.weeks, self.months, self.years)) != 1:
            raise ValueError("a window takes exactly one of days, weeks, months, years")
        return self

    def start(self, as_of: dt.date) -> dt.date:
        """First day inside the window; calendar months and years clamp to the month's last day.
        A window reaching before year 1 starts on ``date.min``."""
        try:
            if self.days is not None:  # by day number: a timedelta costs three times as much, on every question
                return dt.date.fromordinal(as_of.toordinal() - self.days)
            if self.weeks is not None:
                return dt.date.fromordinal(as_of.toordinal() - 7 * self.weeks)
            months = self.months if self.months is not None else 12 * (self.years or 0)
            year, month = divmod(as_of.year * 12 + as_of.month - 1 - months, 12)
            day = min(as_of.day, calendar.monthrange(year, month + 1)[1])
            return dt.date(year, month + 1, day)
        except (OverflowError, ValueError):
            return dt.date.min

    def describe(self) -> str:
        for unit in ("days", "weeks", "months", "years"):
            n = getattr(self, unit)
            if n is not None:
                return f"{n} {unit[:-1] if n == 1 else unit}"
        raise AssertionError("unreachable")


class Timing(StrEnum):
    ACTIVE = "active"  # active on the screening date
    EVER = "ever"  # recorded at any time up to the screening date
    WITHIN = "within"  # active at some time within the window


class Op(StrEnum):
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "=="
    NE = "!="


class AllOf(_Rule):
    type: Literal["all"]
    of: tuple[Expr, ...] = Field(min_length=1)


class AnyOf(_Rule):
    type: Literal["any"]
    of: tuple[Expr, ...] = Field(min_length=1)


class Not(_Rule):
    type: Literal["not"]
    of: Expr


class AtLeast(_Rule):
    type: Literal["at_least"]
    n: Count = Field(ge=1)
    of: tuple[Expr, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _reachable(self) -> AtLeast:
        if self.n > len(self.of):
            raise ValueError(f"at_least n={self.n} but only {len(self.of)} operands")
        return self


class Compare(_Rule):
    type: Literal["compare"]
    fact: str
    op: Op
    value: Number
    unit: str | None = None
    within: Window | None = None


class Range(_Rule):
    type: Literal["range"]
    fact: str
    min: Number | None = None
    max: Number | None = None
    min_inclusive: bool = True
    max_inclusive: bool = True
    unit: str | None = None
    within: Window | None = None

    @model_validator(mode="after")
    def _bounded(self) -> Range:
        if self.min is None and self.max is None:
            raise ValueError("a range needs min, max or both")
        if self.min is not None and self.max is not None:
            if self.min > self.max:
                raise ValueError(f"range min {self.min} is above max {self.max}")
            if self.min == self.max and not (self.min_inclusive and self.max_inclusive):
                raise ValueError(f"range min and max are both {self.min} with an exclusive bound: it accepts nothing")
        return self


Category = str | bool


class Is(_Rule):
    type: Literal["is"]
    fact: str
    value: Category | None = None
    values: tuple[Category, ...] = ()

    @model_validator(mode="after")
    def _one(self) -> Is:
        if (self.value is None) == (not self.values):
            raise ValueError("'is' takes exactly one of value or values")
        return self

    @property
    def accepted(self) -> frozenset[Category]:
        return frozenset(self.values) if self.values else frozenset({self.value})  # type: ignore[arg-type]


class LabResult(_Rule):
    type: Literal["lab_result"]
    analyte: str
    result: Literal["positive", "negative"]
    within: Window | None = None


class _Timed(_Rule):
    codes: str
    timing: Timing = Timing.ACTIVE
    within: Window | None = None

    @model_validator(mode="after")
    def _window(self) -> _Timed:
        if (self.timing is Timing.WITHIN) != (self.within is not None):
            raise ValueError("timing 'within' needs a window, and a window needs timing 'within'")
        return self


class HasCondition(_Timed):
    type: Literal["condition"]


class HasMedication(_Timed):
    type: Literal["medication"]


class HasProcedure(_Rule):
    type: Literal["procedure"]
    codes: str
    within: Window | None = None  # None: ever, up to the screening date
    at_least: Count = Field(default=1, ge=1)


class ImagingFinding(_Rule):
    type: Literal["imaging"]
    finding: Finding
    modality: tuple[Modality, ...] = ()  # empty: any modality
    within: Window | None = None


Expr = Annotated[
    Union[
        AllOf, AnyOf, Not, AtLeast, Compare, Range, Is, LabResult, HasCondition, HasMedication, HasProcedure, ImagingFinding
    ],
    Field(discriminator="type"),
]

EXPRESSION_TYPES: tuple[type[_Rule], ...] = (
    AllOf, AnyOf, Not, AtLeast, Compare, Range, Is, LabResult, HasCondition, HasMedication, HasProcedure, ImagingFinding,
)

for _model in (AllOf, AnyOf, Not, AtLeast):
    _model.model_rebuild()


def walk(expr: Any) -> Iterator[Any]:
    """Every node of an expression, parents before children."""
    yield expr
    if isinstance(expr, (AllOf, AnyOf, AtLeast)):
        for child in expr.of:
            yield from walk(child)
    elif isinstance(expr, Not):
        yield from walk(expr.of)


def trial_nodes(trial: Trial) -> Iterator[Any]:
    """Every node of every criterion's rule and applicability, in file order."""
    for criterion in trial.criteria:
        for expr in (criterion.applies_when, criterion.rule):
            if expr is not None:
                yield from walk(expr)


class Criterion(_Rule):
    """One inclusion or exclusion criterion, with the registry text it encodes."""

    id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")
    kind: CriterionKind
    text: str = Field(min_length=1, pattern=r"\S", description="Quoted from the registry record")
    reading: str | None = Field(default=None, description="How ambiguous text was read, for reviewers")
    applies_when: Expr | None = None
    rule: Expr
    near_miss: bool = Field(default=True, description=(
        "Whether a patient this criterion alone excludes belongs on the cohort report's near-miss worklist; false where no call "
        "or lab order can change it (a refusal to take part): such patients are counted, not listed"))


class Basis(StrEnum):
    PROTOCOL_CRITERIA = "protocol_criteria"  # the record's eligibility section
    STUDY_DESCRIPTION = "study_description"  # no criteria published: derived from the description


class TrialSource(_Rule):
    registry: str = "ClinicalTrials.gov"
    url: str
    record_file: str | None = None
    last_update: dt.date | None = None
    basis: Basis = Basis.PROTOCOL_CRITERIA


class Defaults(_Rule):
    lab_within: Window = Window(days=90)
    assessment_within: Window = Window(days=90)
    imaging_within: Window = Window(months=6)


class Trial(_Rule):
    """A trial's metadata and its criteria, as written in ``rules/<id>.yaml``."""

    id: str = Field(pattern=r"^NCT[0-9]{8}$")
    title: str
    phase: str | None = None
    sites: tuple[str, ...] = ()
    version: str
    source: TrialSource
    caveats: tuple[str, ...] = ()
    defaults: Defaults = Defaults()
    criteria: tuple[Criterion, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Trial:
        seen: set[str] = set()
        for criterion in self.criteria:
            if criterion.id in seen:
                raise ValueError(f"duplicate criterion id {criterion.id!r}")
            seen.add(criterion.id)
        return self
