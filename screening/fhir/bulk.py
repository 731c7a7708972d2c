"""Read a FHIR Bulk Data export: a folder of NDJSON files, one resource per line.

The export is scanned once: each line's resource type, id and patient reference are recorded with
its byte offset, nothing more. Iterating then builds one patient at a time, re-reading (and
validating) only that patient's lines, so memory grows with the number of lines, not their size.
A Medication names no patient: it is read with the patients whose MedicationRequest or
MedicationStatement refers to it (``medicationReference``), as it would be in their Bundles.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl

from ..errors import PatientDataError
from ..jsontext import JsonProblem, decode_json
from .mapping import ProfileBuilder, reference_type_id
from .parse import MAPPED_RESOURCE_TYPES, validate_resource
from .result import FhirWarning, MappedProfile, WarningCode

_PATIENT_FIELDS = ("subject", "patient")  # where a resource names its patient (Condition.subject, Consent.patient...)


@dataclass(frozen=True)
class _Line:
    file: int
    offset: int
    number: int  # 1-based
    resource_type: str
    resource_id: str | None
    medication: str | None = None  # a MedicationRequest's or MedicationStatement's medicationReference


class BulkExport:
    """A scanned bulk export. Iterate it for one :class:`MappedProfile` per Patient, in file order.

    ``warnings`` holds what belongs to no patient: lines that are not JSON (one warning each, naming
    the line), lines that are not FHIR resources (the export log), resources that name no patient
    (Organization, Practitioner, Location..., a Medication no patient's record refers to), and
    resources that name a patient the export does not hold. A resource that is not valid FHIR R4
    raises :class:`PatientDataError` when its patient is built.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise PatientDataError("not a folder", source=str(self.folder))
        self.files: tuple[Path, ...] = tuple(sorted(self.folder.glob("*.ndjson")))
        if not self.files:
            raise PatientDataError("no .ndjson files: not a bulk export", source=str(self.folder))
        self._patients: dict[str, _Line] = {}
        self._groups: dict[str, list[_Line]] = defaultdict(list)
        self._medications: dict[str, _Line] = {}  # Medication lines by id: they name no patient
        self._referenced: dict[str, list[_Line]] = {}  # per patient, the Medication lines its records refer to
        self._warnings: list[FhirWarning] = []
        self._scan()
        self.warnings: tuple[FhirWarning, ...] = tuple(self._warnings)

    @property
    def patient_ids(self) -> tuple[str, ...]:
        return tuple(self._patients)

    def __len__(self) -> int:
        return len(self._patients)

    def __iter__(self) -> Iterator[MappedProfile]:
        for result in self.results():
            if isinstance(result, PatientDataError):
                raise result
            yield result

    def results(self) -> Iterator[MappedProfile | PatientDataError]:
        """One :class:`MappedProfile` per Patient, in file order, as iterating gives them; a patient
        with a resource that is not valid FHIR R4 gives its :class:`PatientDataError` in its place,
        and the next patients are still read (a cohort screens them all)."""
        handles: dict[int, IO[bytes]] = {}
        try:
            for patient_id, patient_line in self._patients.items():
                try:
                    result: MappedProfile | PatientDataError = self._build(handles, patient_id, patient_line)
                except PatientDataError as exc:
                    result = exc
                yield result
        finally:
            for handle in handles.values():
                handle.close()

    def _build(self, handles: dict[int, IO[bytes]], patient_id: str, patient_line: _Line) -> MappedProfile:
        patient = self._validate(handles, patient_line, patient_id)
        builder = ProfileBuilder(patient, patient_id=patient_id, where=self._where(patient_line))
        for line in self._groups.get(patient_id, ()):
            if line.resource_type in MAPPED_RESOURCE_TYPES:
                builder.add(self._validate(handles, line, patient_id), self._where(line))
            else:
                builder.unsupported(line.resource_type, line.resource_id, self._where(line))
        for line in self._referenced.get(patient_id, ()):
            builder.add(self._validate(handles, line, patient_id), self._where(line))
        return builder.build()

    # -- scanning --------------------------------------------------------------------------------

    def _scan(self) -> None:
        identifiers: dict[str, str] = {}
        conditional: list[tuple[str, _Line]] = []
        for index, path in enumerate(self.files):
            not_fhir = 0
            with path.open("rb") as handle:
                number = 0
                while True:
                    offset = handle.tell()
                    raw = handle.readline()
                    if not raw:
                        break
                    number += 1
                    if not raw.strip():
                        continue
                    try:
                        data = decode_json(raw.rstrip(b"\r\n"))
                    except JsonProblem as exc:
                        self._warnings.append(FhirWarning(code=WarningCode.NOT_FHIR, where=f"{path.name} line {number}",
                                                          message=f"{exc}: not read"))
                        continue
                    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
                        not_fhir += 1
                        continue
                    resource_id = data.get("id") if isinstance(data.get("id"), str) else None
                    line = _Line(index, offset, number, data["resourceType"], resource_id, self._medication_reference(data))
                    if line.resource_type == "Patient":
                        self._add_patient(line, data, identifiers)
                        continue
                    if line.resource_type == "Medication" and resource_id:
                        if resource_id in self._medications:
                            self._warn(line, WarningCode.ASSUMPTION, f"another copy of Medication/{resource_id}: "
                                       f"the one at {self._where(self._medications[resource_id])} is used")
                        else:
                            self._medications[resource_id] = line
                        continue
                    reference = self._patient_reference(data)
                    if reference is None:
                        self._warn(line, WarningCode.NO_PATIENT,
                                   f"{line.resource_type} names no patient (no subject or patient reference): not used")
                    elif reference.startswith("Patient?"):
                        conditional.append((reference, line))
                    elif (target := reference_type_id(reference)) and target[0] == "Patient":
                        self._groups[target[1]].append(line)
                    else:
                        self._warn(line, WarningCode.NO_PATIENT, f"its subject {reference!r} is not a Patient: not used")
            if not_fhir:
                self._warnings.append(FhirWarning(code=WarningCode.NOT_FHIR, where=path.name,
                                                  message=f"{not_fhir} lines of {path.name} are not FHIR resources: not read"))
        for reference, line in conditional:
            tokens = [value for key, value in parse_qsl(reference.split("?", 1)[1]) if key == "identifier"]
            target_id = next((identifiers[t] for t in tokens if t in identifiers), None)
            if target_id is None:
                self._warn(line, WarningCode.NO_PATIENT, f"{reference!r} matches no Patient in the export: not used")
            else:
                self._groups[target_id].append(line)
        for patient_id in [p for p in self._groups if p not in self._patients]:
            for line in self._groups.pop(patient_id):
                self._warn(line, WarningCode.NO_PATIENT, f"refers to Patient/{patient_id}, which the export does not hold: not used")
        self._link_medications()

    def _link_medications(self) -> None:
        """Give each patient the Medication lines its medication records refer to; warn about the others."""
        used: set[str] = set()
        for patient_id, lines in self._groups.items():
            found: dict[str, _Line] = {}
            for line in lines:
                target = reference_type_id(line.medication) if line.medication else None
                if target and target[0] == "Medication" and target[1] in self._medications:
                    found.setdefault(target[1], self._medications[target[1]])
            if found:
                self._referenced[patient_id] = list(found.values())
                used.update(found)
        for medication_id, line in self._medications.items():
            if medication_id not in used:
                self._warn(line, WarningCode.NO_PATIENT,
                           "a Medication no MedicationRequest or MedicationStatement of a Patient in the export refers to: not used")

    def _add_patient(self, line: _Line, data: dict[str, Any], identifiers: dict[str, str]) -> None:
        if not line.resource_id:
            self._warn(line, WarningCode.NO_PATIENT, f"a Patient without {'a string' if 'id' in data else 'an'} id: not used")
            return
        if line.resource_id in self._patients:
            self._warn(line, WarningCode.ASSUMPTION, f"a second Patient/{line.resource_id}: the first one is used")
            return
        self._patients[line.resource_id] = line
        for ident in data.get("identifier") or []:
            if isinstance(ident, dict) and ident.get("value"):
                identifiers.setdefault(f"{ident.get('system', '')}|{ident['value']}", line.resource_id)
                identifiers.setdefault(str(ident["value"]), line.resource_id)

    @staticmethod
    def _medication_reference(data: dict[str, Any]) -> str | None:
        if data.get("resourceType") not in ("MedicationRequest", "MedicationStatement"):
            return None
        value = data.get("medicationReference")
        return value["reference"] if isinstance(value, dict) and isinstance(value.get("reference"), str) else None

    @staticmethod
    def _patient_reference(data: dict[str, Any]) -> str | None:
        for name in _PATIENT_FIELDS:
            value = data.get(name)
            if isinstance(value, dict) and isinstance(value.get("reference"), str):
                return value["reference"]
        return None

    def _warn(self, line: _Line, code: WarningCode, message: str) -> None:
        self._warnings.append(FhirWarning(code=code, message=message, resource_type=line.resource_type,
                                          resource_id=line.resource_id, where=self._where(line)))

    # -- reading ---------------------------------------------------------------------------------

    def _where(self, line: _Line) -> str:
        return f"{self.files[line.file].name} line {line.number}"

    def _validate(self, handles: dict[int, IO[bytes]], line: _Line, patient_id: str) -> Any:
        handle = handles.get(line.file)
        if handle is None:
            handle = handles[line.file] = self.files[line.file].open("rb")
        handle.seek(line.offset)
        data = json.loads(handle.readline())
        return validate_resource(data, where=self._where(line), source=str(self.files[line.file]), patient_id=patient_id)


def read_bulk_export(folder: str | Path) -> BulkExport:
    """Scan a FHIR Bulk Data export folder (``*.ndjson``); iterate the result for one
    :class:`MappedProfile` per Patient, grouped by each resource's subject/patient reference."""
    return BulkExport(folder)
