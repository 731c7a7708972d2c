"""Map a FHIR R4 Bundle about one patient to a profile."""

from __future__ import annotations

from typing import Any

from ..errors import PatientDataError
from .mapping import ProfileBuilder
from .parse import MAPPED_RESOURCE_TYPES, validate_resource
from .result import FhirWarning, MappedProfile, WarningCode


def _text(resource: dict[str, Any], name: str) -> str | None:
    """``resource[name]`` when it is a string: an unvalidated resource may hold anything there."""
    value = resource.get(name)
    return value if isinstance(value, str) else None


def bundle_to_profile(bundle_json: dict[str, Any], source: str | None = None) -> MappedProfile:
    """Map a FHIR R4 ``Bundle`` (decoded JSON) holding exactly one Patient to a :class:`MappedProfile`.

    Every resource is validated with ``fhir.resources.R4B`` before it is read; the resource types
    the mapping does not read are reported as warnings without being parsed. Raises
    :class:`PatientDataError` when the Bundle is not one, holds no Patient or more than one, or a
    resource is not valid FHIR R4 (the message names the resource, the field its path).
    """
    if not isinstance(bundle_json, dict) or bundle_json.get("resourceType") != "Bundle":
        found = bundle_json.get("resourceType") if isinstance(bundle_json, dict) else type(bundle_json).__name__
        raise PatientDataError(f"expected a FHIR Bundle, got {found!r}", field="resourceType", source=source)
    entries = bundle_json.get("entry") or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise PatientDataError("Bundle.entry must be a list of objects", field="entry", source=source)
    shell = {**bundle_json, "entry": [{k: v for k, v in e.items() if k != "resource"} for e in entries] or None}
    validate_resource({k: v for k, v in shell.items() if v is not None}, where="Bundle", source=source)

    patients: dict[str, tuple[int, dict[str, Any]]] = {}
    for i, entry in enumerate(entries):
        resource = entry.get("resource")
        if isinstance(resource, dict) and resource.get("resourceType") == "Patient":
            key = _text(resource, "id") or entry.get("fullUrl") or f"entry[{i}]"
            patients.setdefault(key, (i, resource))
    if not patients:
        raise PatientDataError("the Bundle holds no Patient resource: it must describe exactly one patient",
                               field="entry", source=source)
    if len(patients) > 1:
        raise PatientDataError(f"the Bundle holds {len(patients)} Patient resources ({', '.join(sorted(patients))}): "
                               "it must describe exactly one patient", field="entry", source=source)
    (index, patient_json), = patients.values()
    full_url = entries[index].get("fullUrl")
    patient_id = _text(patient_json, "id") or (full_url.rstrip("/").rsplit("/", 1)[-1].removeprefix("urn:uuid:") if full_url else None)
    patient = validate_resource(patient_json, where=f"entry[{index}]", field_prefix=f"entry[{index}].resource.",
                                source=source, patient_id=patient_id)
    if not patient_id:
        raise PatientDataError("the Patient has neither an id nor a fullUrl", field=f"entry[{index}].resource.id", source=source)
    builder = ProfileBuilder(patient, patient_id=patient_id, where=f"entry[{index}]",
                             patient_keys=[full_url] if full_url else [])

    for i, entry in enumerate(entries):
        if i == index:
            continue
        where = f"entry[{i}]"
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            builder.warnings.append(FhirWarning(code=WarningCode.NO_VALUE, where=where, message="a Bundle entry with no resource"))
            continue
        resource_type = _text(resource, "resourceType")
        if resource_type is None:
            builder.warnings.append(FhirWarning(code=WarningCode.NOT_FHIR, where=where, field="resource.resourceType",
                                                message="a Bundle entry whose resource has no valid resourceType: not read"))
            continue
        if resource_type == "Patient":
            builder.warnings.append(FhirWarning(code=WarningCode.ASSUMPTION, resource_type="Patient", resource_id=_text(resource, "id"),
                                                where=where, message=f"another copy of the Patient: the one at entry[{index}] is used"))
            continue
        if resource_type not in MAPPED_RESOURCE_TYPES:
            builder.unsupported(resource_type, _text(resource, "id"), where)
            continue
        model = validate_resource(resource, where=where, field_prefix=f"entry[{i}].resource.", source=source, patient_id=patient_id)
        builder.add(model, where, keys=[entry["fullUrl"]] if entry.get("fullUrl") else [])
    return builder.build()
