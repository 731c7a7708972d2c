"""Validate one FHIR R4 resource with fhir.resources' R4B models.

``fhir.resources.R4B`` is the R4-compatible package: the top-level ``fhir.resources`` modules are R5,
and R5 rejects R4 MedicationRequests (shared/notes/dependencies.md). The models check structure and
datatypes, not code bindings or invariants.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from ..errors import PatientDataError

# The resource types the mapping reads; only these are validated (the others are reported as
# unsupported, unparsed, so a large DocumentReference or Claim costs nothing).
MAPPED_RESOURCE_TYPES = frozenset({
    "Patient", "Condition", "Observation", "MedicationStatement", "MedicationRequest", "Medication", "Procedure",
    "DiagnosticReport", "ImagingStudy", "Consent", "List",
})


def field_path(loc: tuple) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def validate_resource(data: dict[str, Any], *, where: str, field_prefix: str = "", source: str | None = None,
                      patient_id: str | None = None) -> Any:
    """The R4B model of ``data``; a :class:`PatientDataError` naming the resource and field if invalid."""
    resource_type = data.get("resourceType")
    rid = data.get("id")
    label = f"{resource_type}/{rid}" if rid and isinstance(rid, str) else str(resource_type)
    try:
        model = get_fhir_model_class(resource_type)
    except (KeyError, ValueError, TypeError):
        raise PatientDataError(f"{where}: {resource_type!r} is not a FHIR R4 resource type", field=field_prefix + "resourceType",
                               patient_id=patient_id, source=source) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        loc = field_path(tuple(error["loc"]))
        raise PatientDataError(f"{label} ({where}) is not valid FHIR R4: {error['msg']}{more}",
                               field=(field_prefix + loc) if loc else (field_prefix.rstrip(".") or None),
                               patient_id=patient_id, source=source) from None
    except RecursionError:
        raise PatientDataError(f"{label} ({where}) is nested too deeply to be read", field=field_prefix.rstrip(".") or None,
                               patient_id=patient_id, source=source) from None


def as_date(value: Any) -> tuple[dt.date | None, str | None]:
    """A FHIR date/dateTime/instant as a calendar date, and the original text when it was partial.

    A dateTime keeps the calendar date of its own UTC offset (the date the clinician wrote). A partial
    date (``2024`` or ``2024-05``) is read as its first day; the caller reports it.
    """
    if value is None:
        return None, None
    if isinstance(value, dt.datetime):
        return value.date(), None
    if isinstance(value, dt.date):
        return value, None
    text = str(value)
    parts = text.split("-")
    try:
        if len(parts) == 1:
            return dt.date(int(parts[0]), 1, 1), text
        if len(parts) == 2:
            return dt.date(int(parts[0]), int(parts[1]), 1), text
        return dt.date.fromisoformat(text[:10]), None
    except ValueError:
        return None, text
