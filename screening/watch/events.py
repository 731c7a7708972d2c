"""Patient events for watch mode, one JSON object per line (the ``type`` field selects the kind).

=====================  ==========================================================================
``profile``            the full profile (``patient``), replacing what was known
``upsert_observation`` add an observation, replacing one with the same LOINC code and date
``upsert_condition``   add a condition, replacing one with the same ICD-10 code (with or without
                       its dot) or, when either has none, the same SNOMED CT code
``upsert_medication``  add a medication, replacing one with the same name (case and spacing aside)
``upsert_procedure``   add a procedure, replacing one with the same kind, code and date
``upsert_assessment``  add an assessment, replacing one with the same name and date
``add_imaging``        add an imaging study, replacing one with the same modality and date
``set``                set top-level fields (``birth_date``, ``sex``, ``consent``, ``pregnant``...,
                       or a whole history: ``conditions``, ``medications``, ``procedures``);
                       ``null`` makes a field unknown again (a history: not reviewed)
``discharge``          forget the patient (its state is dropped)
=====================  ==========================================================================

Every event but ``profile`` names its ``patient_id``; any event may carry ``as_of`` (the
screening date for the re-screen it causes; the watcher's date otherwise). What the watcher does
with each is in :mod:`screening.watch.watcher`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ..errors import PatientDataError
from ..jsontext import JsonProblem, decode_json
from ..patient.io import _field_path
from ..patient.model import Assessment, Condition, ImagingStudy, Medication, Observation, PatientProfile, Procedure


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    as_of: dt.date | None = None


class ProfileEvent(_Event):
    type: Literal["profile"]
    patient: PatientProfile

    @property
    def patient_id(self) -> str:
        return self.patient.id


class _PatientEvent(_Event):
    patient_id: str = Field(min_length=1, max_length=128)  # as PatientProfile.id


class UpsertObservation(_PatientEvent):
    type: Literal["upsert_observation"]
    item: Observation


class UpsertCondition(_PatientEvent):
    type: Literal["upsert_condition"]
    item: Condition


class UpsertMedication(_PatientEvent):
    type: Literal["upsert_medication"]
    item: Medication


class UpsertProcedure(_PatientEvent):
    type: Literal["upsert_procedure"]
    item: Procedure


class UpsertAssessment(_PatientEvent):
    type: Literal["upsert_assessment"]
    item: Assessment


class AddImaging(_PatientEvent):
    type: Literal["add_imaging"]
    item: ImagingStudy


Settable = Literal["birth_date", "sex", "consent", "pregnant", "lactating", "childbearing_potential", "conditions", "medications", "procedures"]


class SetFields(_PatientEvent):
    type: Literal["set"]
    fields: dict[Settable, Any] = Field(min_length=1)


class Discharge(_PatientEvent):
    type: Literal["discharge"]


Event = Annotated[
    Union[ProfileEvent, UpsertObservation, UpsertCondition, UpsertMedication, UpsertProcedure, UpsertAssessment, AddImaging, SetFields, Discharge],
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event)


# the ``type`` of each member of the union
EVENT_TYPES = frozenset(get_args(member.model_fields["type"].annotation)[0] for member in get_args(get_args(Event)[0]))


class EventError(PatientDataError):
    """An event that is not valid. ``event`` and ``patient_id`` are what it claims to be, when
    they can be read; the message quotes no value."""

    def __init__(self, problem: str, field: str | None = None, event: str | None = None, patient_id: str | None = None):
        super().__init__(problem, field=field, patient_id=patient_id)
        self.event = event


def _claimed(data: Any) -> tuple[str | None, str | None]:
    """The (event type, patient id) a decoded object claims, when they are readable."""
    if not isinstance(data, dict):
        return None, None
    kind = data.get("type") if data.get("type") in EVENT_TYPES else None
    patient = data.get("patient") if kind == "profile" else data
    patient_id = patient.get("id" if kind == "profile" else "patient_id") if isinstance(patient, dict) else None
    return kind, patient_id if isinstance(patient_id, str) and 0 < len(patient_id) <= 128 else None


def _describe(exc: ValidationError, kind: str | None) -> tuple[str, str]:
    """(field path within the event, problem) of the first error, without the input value."""
    error = exc.errors(include_url=False)[0]
    loc = tuple(part for part in error["loc"] if part != "[key]")  # a dict key's error: the key is the field
    path = _field_path(loc[1:] if loc and loc[0] == kind else loc)  # the union's tag is not a field
    value = error.get("input")
    if isinstance(value, (str, int, float)) and (repr(value) if isinstance(value, str) else str(value)) in error["msg"]:
        return path, "invalid value"  # a validator's message quoting the value it refused
    return path, error["msg"]


def parse_event(line: str | bytes | dict[str, Any]) -> Any:
    """One event from a JSON line (or a decoded object); :class:`EventError` naming the field."""
    try:
        data = decode_json(line) if isinstance(line, (str, bytes)) else line
    except JsonProblem as exc:
        raise EventError(str(exc)) from None
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        kind, patient_id = _claimed(data)
        path, problem = _describe(exc, kind)
        raise EventError(problem, field=path or None, event=kind, patient_id=patient_id) from None
