"""Patient profile model: the single source of truth for a profile's shape (JSON files, API).

Missing data is explicit. A scalar field left out (``birth_date``, ``consent``...) is unknown.
For the coded histories (``conditions``, ``medications``, ``procedures``) the field left out
(``null``) means the history was not reviewed, so every criterion on it is unknown; an empty
list means it was reviewed and holds nothing. Labs, assessments and imaging are always open
world: no result in the window is unknown, never "normal".
"""

from __future__ import annotations

import re
import datetime as dt
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidatorFunctionWrapHandler, field_validator, model_validator

Code = Annotated[str, Field(min_length=1, max_length=64)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, str_strip_whitespace=True)


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"


class ConsentStatus(StrEnum):
    NOT_ASKED = "not_asked"
    CONSENTED = "consented"
    REFUSED = "refused"


class ConditionStatus(StrEnum):
    """FHIR Condition.clinicalStatus values."""

    ACTIVE = "active"
    RECURRENCE = "recurrence"
    RELAPSE = "relapse"
    INACTIVE = "inactive"
    REMISSION = "remission"
    RESOLVED = "resolved"


ACTIVE_CONDITION_STATUSES = frozenset({ConditionStatus.ACTIVE, ConditionStatus.RECURRENCE, ConditionStatus.RELAPSE})

_ICD10 = re.compile(r"^[A-TV-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$")


class Condition(_Model):
    """A diagnosis on the problem list, coded in ICD-10 (WHO or -CM) and/or SNOMED CT."""

    icd10: Code | None = None
    snomed: Code | None = Field(default=None, pattern=r"^[0-9]{6,18}$")
    display: str | None = None
    onset: dt.date | None = None
    resolved: dt.date | None = Field(default=None, description="Abatement date; the condition is not active from this date.")
    status: ConditionStatus = ConditionStatus.ACTIVE

    @field_validator("icd10")
    @classmethod
    def _icd10_shape(cls, value: str | None) -> str | None:
        if value is not None and not _ICD10.match(value.upper()):
            raise ValueError(f"not an ICD-10 code: {value!r} (expected a letter, two characters, optional .suffix)")
        return value.upper() if value else value

    @model_validator(mode="after")
    def _coded(self) -> Condition:
        if self.icd10 is None and self.snomed is None:
            raise ValueError("a condition needs an icd10 or a snomed code")
        if self.onset and self.resolved and self.resolved < self.onset:
            raise ValueError("resolved date is before onset")
        return self


class Comparator(StrEnum):
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="


class QualitativeResult(StrEnum):
    POSITIVE = "positive"
    NEGATIVE = "negative"
    DETECTED = "detected"
    NOT_DETECTED = "not_detected"
    REACTIVE = "reactive"
    NONREACTIVE = "nonreactive"
    INDETERMINATE = "indeterminate"


POSITIVE_RESULTS = frozenset({QualitativeResult.POSITIVE, QualitativeResult.DETECTED, QualitativeResult.REACTIVE})
NEGATIVE_RESULTS = frozenset({QualitativeResult.NEGATIVE, QualitativeResult.NOT_DETECTED, QualitativeResult.NONREACTIVE})


class Observation(_Model):
    """A lab result: a number with its UCUM unit (optionally censored, e.g. ``< 20 [IU]/mL``),
    or a qualitative result."""

    loinc: str = Field(pattern=r"^[0-9]{1,7}-[0-9]$")
    display: str | None = None
    value: float | None = None
    unit: str | None = Field(default=None, description="UCUM unit, e.g. mg/dL, umol/L, g/L, [IU]/mL; '1' for a ratio such as INR")
    comparator: Comparator | None = None
    control: float | None = Field(
        default=None, description="The laboratory's control (mean normal) value in the same unit, e.g. a prothrombin time's control seconds"
    )
    result: QualitativeResult | None = None
    date: dt.date

    @model_validator(mode="after")
    def _one_value(self) -> Observation:
        if (self.value is None) == (self.result is None):
            raise ValueError("an observation needs exactly one of value (numeric) or result (qualitative)")
        if self.value is not None and self.unit is None:
            raise ValueError("a numeric observation needs a unit (UCUM; '1' for a unitless ratio)")
        if self.comparator is not None and self.value is None:
            raise ValueError("comparator applies only to a numeric value")
        if self.control is not None and self.value is None:
            raise ValueError("control applies only to a numeric value")
        return self


class MedicationStatus(StrEnum):
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    STOPPED = "stopped"
    INTENDED = "intended"


class Medication(_Model):
    """A drug the patient takes or took. ``name`` may be a brand or a combination product."""

    name: str = Field(min_length=1)
    ingredients: list[str] = Field(default_factory=list, description="Generic names of the ingredients, if known")
    atc: str | None = Field(default=None, pattern=r"^[A-Z][0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?$")
    rxnorm: str | None = Field(default=None, pattern=r"^[0-9]+$")
    start: dt.date | None = None
    end: dt.date | None = None
    status: MedicationStatus = MedicationStatus.ACTIVE

    @model_validator(mode="after")
    def _dates(self) -> Medication:
        if self.start and self.end and self.end < self.start:
            raise ValueError("end date is before start date")
        return self


class Procedure(_Model):
    """A procedure: a kind (``liver_transplant``, ``stem_cell_therapy``, ``tips``, ``haemodialysis``...)
    and/or a code."""

    kind: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    code: str | None = None
    system: Literal["snomed", "icd10pcs", "cpt", "icd10"] | None = None
    display: str | None = None
    date: dt.date | None = None

    @model_validator(mode="after")
    def _identified(self) -> Procedure:
        if self.kind is None and self.code is None:
            raise ValueError("a procedure needs a kind or a code")
        if (self.code is None) != (self.system is None):
            raise ValueError("code and system go together")
        return self


class AssessmentName(StrEnum):
    ASCITES_GRADE = "ascites_grade"
    ENCEPHALOPATHY_GRADE = "encephalopathy_grade"


_ASSESSMENT_MAX = {AssessmentName.ASCITES_GRADE: 3, AssessmentName.ENCEPHALOPATHY_GRADE: 4}


class Assessment(_Model):
    """A graded clinical finding a coordinator records: ascites (International Ascites Club grade
    0-3) or hepatic encephalopathy (West Haven grade 0-4)."""

    name: AssessmentName
    grade: int = Field(ge=0)
    date: dt.date

    @model_validator(mode="after")
    def _range(self) -> Assessment:
        if self.grade > _ASSESSMENT_MAX[self.name]:
            raise ValueError(f"{self.name} grade must be 0-{_ASSESSMENT_MAX[self.name]}")
        return self


class Modality(StrEnum):
    ULTRASOUND = "ultrasound"
    CT = "ct"
    MRI = "mri"
    ELASTOGRAPHY = "elastography"
    ENDOSCOPY = "endoscopy"
    BIOPSY = "biopsy"


class ImagingFinding(StrEnum):
    """The structured findings imaging criteria can ask about (one vocabulary for profiles and rules)."""

    CIRRHOSIS = "cirrhosis"
    ASCITES = "ascites"
    SPLENOMEGALY = "splenomegaly"
    VARICES = "varices"
    STEATOSIS = "steatosis"
    LIVER_MASS = "liver_mass"
    HEPATOCELLULAR_CARCINOMA = "hepatocellular_carcinoma"
    PORTAL_VEIN_THROMBOSIS = "portal_vein_thrombosis"


class ImagingStudy(_Model):
    """An imaging (or endoscopy/biopsy) result. ``findings`` lists what the study showed; a finding
    not listed was not seen. Left out (``null``), the findings were not coded: any question about
    them is unknown (the report text is shown, never parsed)."""

    modality: Modality
    date: dt.date
    findings: list[ImagingFinding] | None = None
    report: str | None = None


class PatientProfile(_Model):
    """Everything the engine may know about one patient. See the module docstring for what a
    missing field means."""

    id: str = Field(min_length=1, max_length=128)
    birth_date: dt.date | None = None
    sex: Sex | None = None
    conditions: list[Condition] | None = None
    observations: list[Observation] = Field(default_factory=list)
    medications: list[Medication] | None = None
    procedures: list[Procedure] | None = None
    assessments: list[Assessment] = Field(default_factory=list)
    imaging: list[ImagingStudy] = Field(default_factory=list)
    pregnant: bool | None = None
    lactating: bool | None = None
    childbearing_potential: bool | None = None
    consent: ConsentStatus | None = None
    deceased: dt.date | bool | None = Field(default=None, description=(
        "Recorded as deceased: the date of death, or true without one (false: recorded as alive). Screening still runs "
        "(no criterion reads it); every result then carries a notice to read before any contact"))

    @field_validator("deceased", mode="wrap")
    @classmethod
    def _deceased(cls, value: object, handler: ValidatorFunctionWrapHandler) -> dt.date | bool | None:
        """One error for a value that is neither (pydantic would report each member of the union)."""
        try:
            return handler(value)
        except ValidationError:
            raise ValueError("deceased is the date of death (YYYY-MM-DD), or true/false") from None

    def notices(self) -> tuple[str, ...]:
        """What to check before acting on any verdict for this patient (:func:`deceased_notice`)."""
        notice = deceased_notice(self.deceased)
        return (notice,) if notice else ()


def deceased_notice(deceased: dt.date | bool | None) -> str:
    """The notice a ``deceased`` value gives (as a FHIR mapping warning words it); "" for none."""
    if deceased is None or deceased is False:
        return ""
    return "the patient is recorded as deceased" + (f" on {deceased.isoformat()}" if isinstance(deceased, dt.date) else "")
