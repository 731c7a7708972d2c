"""What a FHIR mapping returns: the profile and the warnings about what was not (fully) used."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from ..patient.model import PatientProfile


class WarningCode(StrEnum):
    """Why a resource, or part of one, was not used as given."""

    UNSUPPORTED_RESOURCE = "unsupported_resource"  # a resource type the mapping does not read
    NOT_FHIR = "not_fhir"  # a bulk-export line or Bundle entry that is not a FHIR resource (e.g. the export log)
    NO_PATIENT = "no_patient"  # a bulk-export resource about no patient, or one not in the export
    OTHER_PATIENT = "other_patient"  # subject/patient refers to someone else
    STATUS_EXCLUDED = "status_excluded"  # entered-in-error, cancelled, refuted, not-done, not-taken...
    UNKNOWN_CODE = "unknown_code"  # no coding this engine uses (e.g. a LOINC code that is no analyte)
    INVALID_CODE = "invalid_code"  # a code in a known system that is malformed (e.g. ICD-10 'XYZ')
    NO_VALUE = "no_value"  # no value, or a dataAbsentReason
    UNMAPPABLE_VALUE = "unmappable_value"  # a value of a kind or range the profile cannot hold
    NO_UCUM_UNIT = "no_ucum_unit"  # a quantity without a UCUM unit code
    UNIT_NOT_CONVERTIBLE = "unit_not_convertible"  # a UCUM unit that does not convert for the analyte
    NO_DATE = "no_date"  # no usable date (dropped where a date is required, kept undated otherwise)
    PARTIAL_DATE = "partial_date"  # a year or year-month date
    FINDINGS_UNKNOWN = "findings_unknown"  # an imaging record without coded findings
    SUPERSEDED = "superseded"  # an older status (pregnancy, consent...) replaced by a later one
    ASSUMPTION = "assumption"  # kept, with the reading stated in the message
    DECEASED = "deceased"  # the Patient is recorded as deceased


class FhirWarning(BaseModel):
    """One thing the mapping did not use as given: which resource, where, and why.

    ``skipped`` is true when the resource (or line) was left out of the profile, false when it was
    kept with the reading the message states.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: WarningCode
    message: str
    resource_type: str | None = None
    resource_id: str | None = None
    where: str | None = None  # "entry[3]" in a Bundle, "Condition.000.ndjson line 12" in a bulk export
    field: str | None = None  # the FHIR element, e.g. "valueQuantity.code"
    skipped: bool = True

    def __str__(self) -> str:
        what = "/".join(p for p in (self.resource_type, self.resource_id) if p) or "export"
        where = f" ({self.where})" if self.where else ""
        field = f" {self.field}:" if self.field else ""
        return f"{what}{where}:{field} {self.message}"


class MappedProfile(BaseModel):
    """A patient profile mapped from FHIR, with every warning about what was not used."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: PatientProfile
    warnings: tuple[FhirWarning, ...] = ()

    @property
    def skipped(self) -> tuple[FhirWarning, ...]:
        """The warnings about resources left out of the profile."""
        return tuple(w for w in self.warnings if w.skipped)
