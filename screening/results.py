"""Screening results: the JSON contract every evaluator and interface returns.

Explanations are recorded while evaluating (see :mod:`screening.evaluators.explain`); renderers
only format these models. Lists are kept in a deterministic order so the same input gives
byte-identical JSON.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from .logic import CriterionKind, Outcome, Verdict


R = TypeVar("R", bound="_Result")


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def trusted(cls, **values: Any) -> Self:
        """An instance from values the evaluators computed, already of the declared types (an int
        for a float field must be passed as a float): built without validation, for speed.
        Anything read from outside goes through the validating constructor."""
        return _unvalidated(cls, {**(_DEFAULTS.get(cls) or _all_fields(cls)), **values}, set(values))

    def replaced(self, **changes: Any) -> Self:
        """``model_copy(update=changes)``, for speed: ``changes`` must be of the declared types."""
        return _unvalidated(type(self), {**self.__dict__, **changes}, self.__pydantic_fields_set__ | changes.keys())


_new = object.__new__  # BaseModel defines no __new__: the plain object one
# BaseModel's slots, set through their descriptors (object.__setattr__ would look each one up by name)
_set_dict, _set_fields_set, _set_extra, _set_private = (
    vars(BaseModel)[slot].__set__ for slot in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"))


def _unvalidated(cls: type[R], fields: dict[str, Any], fields_set: set[str]) -> R:
    model = _new(cls)
    _set_dict(model, fields)
    _set_fields_set(model, fields_set)
    _set_extra(model, None)
    _set_private(model, None)
    return model


_DEFAULTS: dict[type, dict[str, Any]] = {}  # by result class: every field in declaration order, at its default


def _all_fields(cls: type[_Result]) -> dict[str, Any]:
    """Every field in declaration order (the order JSON is written in), at its default."""
    defaults = _DEFAULTS[cls] = {name: None if info.is_required() else info.get_default() for name, info in cls.model_fields.items()}
    return defaults


Scalar = float | int | str | bool


class Evidence(_Result):
    """A value the evaluator used: a lab with unit and date, a coded record, or a derived score
    with its parts. A value known only as a range has ``low``/``high`` instead of ``value``."""

    fact: str
    label: str
    value: Scalar | None = None
    low: float | None = None
    high: float | None = None
    unit: str | None = None
    date: dt.date | None = None
    source: str | None = Field(default=None, description="Where in the profile it came from, as recorded")
    points: int | None = Field(default=None, description="Score points this value contributes")
    parts: tuple[Evidence, ...] = ()


class CriterionResult(_Result):
    id: str
    kind: CriterionKind
    text: str
    outcome: Outcome
    reason: str
    evidence: tuple[Evidence, ...] = ()
    missing: tuple[str, ...] = ()


class TrialResult(_Result):
    trial_id: str
    title: str
    rules_version: str
    rules_hash: str
    verdict: Verdict
    deciding: tuple[str, ...] = Field(default=(), description="Ids of the criteria that decided an ineligible verdict")
    missing: tuple[str, ...] = ()
    caveats: tuple[str, ...] = ()
    criteria: tuple[CriterionResult, ...]


class ScreeningResult(_Result):
    patient_id: str
    as_of: dt.date
    engine_version: str
    notices: tuple[str, ...] = Field(default=(), description="What to check before acting on any verdict (the patient is recorded as deceased)")
    results: tuple[TrialResult, ...]
