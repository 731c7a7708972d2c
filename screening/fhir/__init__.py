"""FHIR R4 input: a patient's Bundle, or a Bulk Data export, mapped to :class:`PatientProfile`.

    >>> from screening.fhir import bundle_to_profile, read_bulk_export
    >>> mapped = bundle_to_profile(json.load(open("patients/fhir/P01-jakarta-cpb-si-eligible.bundle.json")))
    >>> mapped.profile, mapped.warnings
    >>> for mapped in read_bulk_export("export/"): ...

Resources are parsed and validated with ``fhir.resources.R4B`` (the R4-compatible models); a
resource that is not valid FHIR R4 is a :class:`~screening.errors.PatientDataError` naming the
resource and the field. A Bundle must hold exactly one Patient. Anything that is valid but not
used as given is a :class:`FhirWarning` returned beside the profile (which resource, where, why,
and whether it was ``skipped`` or kept with a stated reading): nothing is dropped silently.

Open world (the reading a referral system expects)
--------------------------------------------------
A native profile's ``conditions`` / ``medications`` / ``procedures`` left out means *not
reviewed* (every criterion on it is unknown) and ``[]`` means *reviewed, none found*. A FHIR sender
that exports Conditions exports its problem list, so:

- a history is **reviewed** when the data holds at least one resource of that kind that is not
  ``entered-in-error`` (a *refuted* Condition counts: someone reviewed it) — Condition for
  conditions, MedicationStatement or MedicationRequest for medications, Procedure for procedures —
  and then a code absent from it reads as absent, exactly as in a native list;
- a history with no such resource is **not reviewed** (``None``), **unless** the sender says it is
  empty: a ``List`` with status ``current``, coded as that history (LOINC 11450-4 problem list,
  10160-0 history of medication use, 47519-4 history of procedures; or list-example-use-codes
  ``problems`` / ``medications``) and ``emptyReason`` ``nilknown``; or an International Patient
  Summary record coded ``no-known-problems`` / ``no-known-medications`` / ``no-known-procedures``
  (CodeSystem absent-unknown-uv-ips). Those give ``[]``. A List with entries counts when every
  entry is in the data; ``no-*-info`` and other empty reasons leave the history not reviewed.
- Labs, assessments and imaging stay open world, as in native profiles.

Mapping (R4)
------------
- **Patient**: ``id`` (else the fullUrl's uuid), ``birthDate`` (a partial date leaves age unknown),
  ``gender`` male/female/other -> ``sex`` (unknown -> not recorded); ``deceased[x]`` -> ``deceased`` (a date, or true for a partial one), also stated as a warning.
- **Condition**: ICD-10 (``http://hl7.org/fhir/sid/icd-10``) or ICD-10-CM -> ``icd10``, SNOMED CT
  -> ``snomed``; ``onsetDateTime`` / ``onsetPeriod``; ``abatementDateTime`` / ``abatementPeriod``
  (its end) -> ``resolved``; ``clinicalStatus`` -> ``status`` (missing: resolved when abated, else
  active, with a warning; active, recurrence or relapse with an abatement date breaks invariant
  con-4: kept, not active from that date, with a warning). ``verificationStatus`` refuted or entered-in-error: skipped with a
  warning; unconfirmed/provisional/differential: kept, with a warning.
- **Observation** (status entered-in-error/cancelled skipped): the first LOINC coding that is an
  analyte of :mod:`screening.clinical.analytes`. Numeric analytes need ``valueQuantity`` with a
  UCUM ``code`` (``system`` http://unitsofmeasure.org; a code without a system is read as UCUM
  with a warning; an INR may come without a unit) that converts for the analyte; its
  ``comparator`` (<, <=, >, >=) makes a censored value. Qualitative analytes read
  ``valueCodeableConcept`` (SNOMED CT qualifier values 10828004 positive, 260385009 negative,
  260373001 detected, 260415000 not detected, 11214006 reactive, 131194007 non-reactive,
  82334004/419984006 indeterminate; LOINC answers LA6576-8, LA6577-6, LA11882-0, LA11883-8,
  LA11884-6, LA9663-1), its text, ``valueString`` (English, Indonesian, Chinese words), or a v3
  ``interpretation`` (POS/NEG/DET/ND/IND) of a numeric value. Date: ``effectiveDateTime``,
  ``effectiveInstant`` or ``effectivePeriod`` (start), as the calendar date of its own offset.
  Other LOINC codes (vital signs, lipids...) are warnings.
- **Statuses**: LOINC 82810-3 pregnancy status (LA15173-0 pregnant, LA26683-5 not pregnant,
  LA4489-6 unknown; SNOMED 77386006/60001007) -> ``pregnant``; LOINC 63895-7 breastfeeding status
  (LA29252-6 / LA29253-4) -> ``lactating``; project code ``childbearing_potential`` ->
  ``childbearing_potential``; each also takes ``valueBoolean`` or v2-0136 Y/N. The latest wins.
- **Assessments**: no LOINC or SNOMED CT code for an ascites grade or a West Haven grade could be
  verified, so they use this project's code system ``https://github.com/trial-screening/codes``,
  codes ``ascites_grade`` (0-3) and ``encephalopathy_grade`` (0-4), with ``valueInteger``. The
  same system gives ``prothrombin_time_control`` (an Observation.component holding a prothrombin
  time's control seconds) and procedure kinds / imaging findings / modalities by the engine's names.
- **MedicationStatement / MedicationRequest**: ``medicationCodeableConcept`` (or the referenced
  Medication's code and ingredients) text, else a coding display -> ``name``; ATC
  (``http://www.whocc.no/atc``) and RxNorm codings; MedicationStatement ``effective[x]`` ->
  start/end, MedicationRequest ``authoredOn`` -> start. Status: active/completed/stopped/on-hold
  as such, intended and draft -> intended (also a request whose intent is proposal/plan/option),
  unknown -> active with a warning; not-taken, cancelled and entered-in-error are skipped.
- **Procedure** (not-done, preparation, entered-in-error skipped): SNOMED CT, then ICD-10-PCS, then
  CPT -> ``code``/``system`` (a code in the SNOMED CT system that is no concept id, such as a LOINC
  code, is an ``invalid_code`` warning and not used); ``kind`` from a project coding, else from the SNOMED CT table in
  :data:`screening.fhir.codes.PROCEDURE_KINDS` (18027006 -> liver_transplant, 302497006 ->
  haemodialysis, ...); ``performedDateTime`` / ``performedPeriod`` (start); undated: kept, warned.
- **DiagnosticReport** for imaging: the modality from a referenced ImagingStudy (DICOM US/CT/MR), a
  DICOM or v2-0074 (RUS, CT, NMR...) coding in ``category``/``code``, or a project code
  (elastography, endoscopy, biopsy); findings from ``conclusionCode`` (SNOMED CT 19943007 ->
  cirrhosis, 389026000 -> ascites, 16294009 -> splenomegaly, 28670008 -> varices, 109841003 ->
  hepatocellular_carcinoma, 281900007 -> no finding; project codes by the engine's finding names);
  ``conclusion`` -> ``report``. A report without ``conclusionCode``, or with a conclusion code the
  engine cannot read (it might be a synonym of the finding a rule asks about), is kept with its
  findings *not coded* (``findings: null``: questions about findings are unknown, never "not
  seen"), with a warning; the conclusion text is shown, never parsed. An ImagingStudy no report
  refers to is a warning (no clinical read at all). A laboratory report is a warning: its
  Observations are read one by one.
- **Consent** with scope ``research``: active -> consented (a ``deny`` provision -> refused),
  rejected -> refused, proposed/draft -> not_asked, inactive -> skipped; the latest wins.
- Every other resource type (Encounter, Claim, Immunization, Organization...) is a warning, not
  parsed. A resource whose subject is another patient is skipped with a warning.
- A second copy of a resource (same type and id, in a Bundle or a bulk export) is skipped with a
  warning naming where the copy that is used stands (the first).

Bulk Data export: :func:`read_bulk_export` scans a folder of NDJSON files once (type, id, patient
reference and byte offset per line) and yields one :class:`MappedProfile` per Patient, re-reading
only that patient's lines; a Medication (which names no patient) is read with each patient whose
MedicationRequest or MedicationStatement refers to it; resources that name no patient are in
``BulkExport.warnings``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .codes import PROJECT as PROJECT_CODE_SYSTEM
from .result import FhirWarning, MappedProfile, WarningCode

if TYPE_CHECKING:
    from .bulk import BulkExport, read_bulk_export
    from .bundle import bundle_to_profile

# Imported on first use (PEP 562): the mapping loads fhir.resources, the result types do not (so
# screening.patient.io can name FhirWarning in its annotations without loading it).
_LAZY = {"BulkExport": ".bulk", "read_bulk_export": ".bulk", "bundle_to_profile": ".bundle"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

__all__ = [
    "PROJECT_CODE_SYSTEM",
    "BulkExport",
    "FhirWarning",
    "MappedProfile",
    "WarningCode",
    "bundle_to_profile",
    "read_bulk_export",
]
