"""Read patient profiles from JSON, turning validation failures into errors that name the field.

A file may hold a native profile or a FHIR R4 ``Bundle`` about one patient (``resourceType``
``"Bundle"``), which is mapped by :mod:`screening.fhir`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..errors import PatientDataError
from ..jsontext import JsonProblem, decode_json
from ..fhir.result import FhirWarning
from .model import PatientProfile

_ADAPTER = TypeAdapter(PatientProfile)


RECORD_FIELD = re.compile(r"(?P<table>[a-z]+)\[(?P<index>[0-9]+)\](?:\.(?P<field>.+))?")
"""A path :func:`_field_path` writes for a field of a record: ``observations[2].unit`` is the
field ``unit`` of the third record of ``observations``."""


def _field_path(loc: tuple) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def parse_patient(data: Any, source: str | None = None) -> PatientProfile:
    """Validate a decoded JSON object as a profile; raises :class:`PatientDataError`."""
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        patient_id = data.get("id") if isinstance(data, dict) and isinstance(data.get("id"), str) else None
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise PatientDataError(error["msg"] + more, field=_field_path(tuple(error["loc"])) or None, patient_id=patient_id, source=source) from None


def load_patient(path: str | Path) -> PatientProfile:
    """Read one profile from a JSON file: a native profile or a FHIR R4 Bundle (its mapping
    warnings are dropped here; :func:`load_patient_with_warnings` returns them)."""
    return load_patient_with_warnings(path)[0]


def load_patient_with_warnings(path: str | Path) -> tuple[PatientProfile, tuple[FhirWarning, ...]]:
    """Read one profile from a JSON file, with the FHIR mapping warnings (none for a native profile)."""
    path = Path(path)
    try:
        data = decode_json(path.read_bytes())
    except OSError as exc:
        raise PatientDataError(f"cannot read: {exc.strerror}", source=str(path)) from None
    except JsonProblem as exc:
        raise PatientDataError(str(exc), source=str(path)) from None
    if isinstance(data, dict) and "resourceType" in data:
        from ..fhir.bundle import bundle_to_profile  # imported on first use: fhir.resources loads its models lazily too

        mapped = bundle_to_profile(data, source=str(path))
        return mapped.profile, mapped.warnings
    return parse_patient(data, source=str(path)), ()
