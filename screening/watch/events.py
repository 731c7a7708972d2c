"""Patient events for watch mode, one JSON object per line (the ``type`` field selects the kind).

=====================  ==========================================================================
``profile``            the full profile (``patient``), replacing what was known
``upsert_observation`` add an observation, replacing one with the same LOINC code and date
``upsert_condition``   add a condition, replacing one with the same ICD-10 (else SNOMED) code
``upsert_medication``  add a medication, replacing one with the same name (case-insensitive)
``upsert_procedure``   add a procedure, replacing one with the same kind/code and date
``upsert_assessment``  add an assessment, replacing one with the same name and date
``add_imaging``        add an imaging study
``set``                set top-level fields (``birth_date``, ``sex``, ``consent``, ``pregnant``...)
``discharge``          forget the patient (its state is dropped)
=====================  ==========================================================================

Every event but ``profile`` names its ``patient_id``; any event may carry ``as_of`` (the
screening date for the re-screen it causes; the watcher's date otherwise).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ..errors import PatientDataError
from ..jsontext import JsonProblem, decode_json
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
    patient_id: str = Field(min_length=1)


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


SETTABLE = ("birth_date", "sex", "consent", "pregnant", "lactating", "childbearing_potential")


class SetFields(_PatientEvent):
    type: Literal["set"]
    fields: dict[Literal["birth_date", "sex", "consent", "pregnant", "lactating", "childbearing_potential"], Any] = Field(min_length=1)


class Discharge(_PatientEvent):
    type: Literal["discharge"]


Event = Annotated[
    Union[ProfileEvent, UpsertObservation, UpsertCondition, UpsertMedication, UpsertProcedure, UpsertAssessment, AddImaging, SetFields, Discharge],
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event)


def _describe(exc: ValidationError) -> tuple[str, str]:
    """(field path, problem) of the first error, without the input value (no patient data)."""
    error = exc.errors(include_url=False)[0]
    path = ".".join(str(p) for p in error["loc"])
    value = error.get("input")
    if isinstance(value, (str, int, float)) and (repr(value) if isinstance(value, str) else str(value)) in error["msg"]:
        return path, "invalid value"  # a validator's message quoting the value it refused
    return path, error["msg"]


def parse_event(line: str | bytes | dict[str, Any]) -> Any:
    """One event from a JSON line (or a decoded object); :class:`PatientDataError` naming the field."""
    try:
        data = decode_json(line) if isinstance(line, (str, bytes)) else line
    except JsonProblem as exc:
        raise PatientDataError(str(exc)) from None
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        path, problem = _describe(exc)
        raise PatientDataError(problem, field=path or None) from None
