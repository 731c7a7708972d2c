"""Request and response shapes of the HTTP service (they are also the OpenAPI components).

``POST /screen`` answers with :class:`ScreenResponse`: exactly the :class:`~screening.ScreeningResult`
JSON contract (what ``screening screen --format json`` prints) and, only when the input was a FHIR
Bundle, a top-level ``warnings`` list of :class:`~screening.fhir.FhirWarning` (present, possibly
empty, for every Bundle; absent for a native profile, so a native profile's JSON is byte for byte
the CLI's).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .. import Engine
from ..fhir.result import FhirWarning
from ..logic import CriterionKind
from ..results import ScreeningResult

ServiceEngine = Engine  # every engine of screening.screen
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScreenResponse(ScreeningResult):
    """The screening result; ``warnings`` only for a FHIR Bundle input (the mapping's warnings)."""

    warnings: tuple[FhirWarning, ...] | None = Field(
        default=None, description="FHIR mapping warnings; present only when the input was a Bundle")


class ScreenRequest(_Model):
    """An envelope for passing the options in the body instead of the query string."""

    patient: dict = Field(description="A native patient profile or a FHIR R4 Bundle (detected by resourceType)")
    as_of: str | None = Field(default=None, pattern=DATE_PATTERN, description="Screening date, YYYY-MM-DD")
    trial: tuple[str, ...] | None = Field(default=None, min_length=1, description="Only these trials (at least one)")
    engine: ServiceEngine | None = None


class BatchError(_Model):
    """A batch input that could not be screened; the other inputs go on."""

    index: int = Field(description="0-based position of the input (array item or NDJSON line with content)")
    error: str
    field: str | None = None
    patient_id: str | None = Field(default=None, description="The input's patient id, when it could be read (as POST /screen's 422 gives it)")


class ErrorBody(_Model):
    """Every error response: the problem, and where it is (a field path, a rules file, trial ids)."""

    error: str
    field: str | None = None
    patient_id: str | None = None
    file: str | None = None
    criterion: str | None = None
    trial_ids: tuple[str, ...] | None = None
    request_id: str | None = None


class CriterionInfo(_Model):
    id: str
    kind: CriterionKind
    text: str
    reading: str | None = None


class TrialInfo(_Model):
    trial_id: str
    title: str
    phase: str | None = None
    sites: tuple[str, ...] = ()
    version: str
    rules_hash: str
    basis: str
    source_url: str
    caveats: tuple[str, ...] = ()
    criteria: tuple[CriterionInfo, ...]


class Health(_Model):
    status: Literal["ok"] = "ok"
    engine_version: str
    trials: int = Field(description="Number of loaded trials")
    rules_hashes: dict[str, str] = Field(description="rules_hash by trial id")
    rules_generation: int = Field(description=(
        "Rules loads in the worker process that answered: 1 at start, +1 on every successful reload in that process. "
        "With several workers a reload replaces them and each new one starts at 1: compare rules_hashes to tell which rules are served"))
