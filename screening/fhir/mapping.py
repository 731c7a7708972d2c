"""Map the validated FHIR R4B resources about one patient to a :class:`PatientProfile`.

:class:`ProfileBuilder` takes the Patient, then every other resource of that patient (from a Bundle
or from a bulk export), and builds the profile and its warnings. One handler per resource type,
dispatched through :data:`HANDLERS`; the readings are documented in :mod:`screening.fhir`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from pydantic import ValidationError

from ..clinical.analytes import ANALYTE_BY_LOINC, Analyte
from ..clinical.units import check_unit
from ..errors import UnitError
from ..patient.model import (
    ACTIVE_CONDITION_STATUSES,
    Assessment,
    AssessmentName,
    Comparator,
    Condition,
    ConditionStatus,
    ConsentStatus,
    ImagingStudy,
    Medication,
    MedicationStatus,
    Modality,
    Observation,
    PatientProfile,
    Procedure,
    QualitativeResult,
    Sex,
)
from . import codes as C
from .parse import as_date
from .result import FhirWarning, MappedProfile, WarningCode

_KIND = re.compile(r"^[a-z][a-z0-9_]*$")
_LOINC = re.compile(r"^[0-9]{1,7}-[0-9]$")
_SCTID = re.compile(r"^[0-9]{6,18}$")  # a SNOMED CT concept id (the shape Condition.snomed accepts)
_HISTORY_LABEL = {C.HISTORY_CONDITIONS: "problem list", C.HISTORY_MEDICATIONS: "medication list",
                  C.HISTORY_PROCEDURES: "procedure history"}


@dataclass
class _Item:
    resource: Any
    where: str

    @property
    def type(self) -> str:
        return self.resource.get_resource_type()


@dataclass
class _Candidate:
    """One recording of a scalar status (pregnant, lactating, child-bearing potential, consent)."""

    date: dt.date | None
    value: Any
    item: _Item


def _codings(concept: Any) -> list[Any]:
    return list(concept.coding or []) if concept is not None else []


def _code(concept: Any, system: str | None = None) -> str | None:
    return next((c.code for c in _codings(concept) if c.code and (system is None or c.system == system)), None)


def _text(concept: Any, prefer: tuple[str, str] | None = None) -> str | None:
    """CodeableConcept.text, else the display of the preferred coding, else of any coding."""
    if concept is None:
        return None
    if concept.text and concept.text.strip():
        return concept.text.strip()
    codings = _codings(concept)
    if prefer:
        codings.sort(key=lambda c: (c.system, c.code) != prefer)
    return next((c.display.strip() for c in codings if c.display and c.display.strip()), None)


def _normal_text(text: str | None) -> str:
    return re.sub(r"[\s\-_]+", "", (text or "").lower())


def reference_type_id(reference: str) -> tuple[str, str] | None:
    """('Patient', '123') from 'Patient/123', 'https://x/fhir/Patient/123/_history/2'."""
    parts = [p for p in reference.split("?")[0].split("/") if p]
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    return (parts[-2], parts[-1]) if len(parts) >= 2 else None


def _valid(model: type, **values: Any) -> Any | None:
    try:
        return model(**values)
    except ValidationError:
        return None


class ProfileBuilder:
    """Collects one patient's resources, then :meth:`build` maps them."""

    def __init__(self, patient: Any, *, patient_id: str, where: str, patient_keys: Iterable[str] = ()):
        self.patient = patient
        self.patient_id = patient_id
        self.patient_where = where
        self._patient_keys = {f"Patient/{patient_id}", *patient_keys}
        self._identifiers = {(i.system or "", i.value) for i in (patient.identifier or []) if i.value}
        self._items: list[_Item] = []
        self._by_key: dict[str, _Item] = {}
        self._used: set[int] = set()  # ids of ImagingStudy / Medication items a report or order used
        self.warnings: list[FhirWarning] = []
        self._reviewed = {C.HISTORY_CONDITIONS: False, C.HISTORY_MEDICATIONS: False, C.HISTORY_PROCEDURES: False}
        self._conditions: list[Condition] = []
        self._observations: list[Observation] = []
        self._medications: list[Medication] = []
        self._procedures: list[Procedure] = []
        self._assessments: list[Assessment] = []
        self._imaging: list[ImagingStudy] = []
        self._scalars: dict[str, list[_Candidate]] = {"pregnant": [], "lactating": [], "childbearing_potential": [], "consent": []}

    # -- input -----------------------------------------------------------------------------------

    def add(self, resource: Any, where: str, keys: Iterable[str] = ()) -> None:
        """Add a validated resource; ``keys`` are the references that name it (e.g. its fullUrl).
        A second copy of a resource (same type and id) is warned about and not used."""
        item = _Item(resource, where)
        own_key = f"{item.type}/{resource.id}" if resource.id else None
        first = self._by_key.get(own_key) if own_key else None
        if first is not None and first.type == item.type:
            self.warn(item, WarningCode.ASSUMPTION, f"another copy of {own_key}: the one at {first.where} is used")
            return
        self._items.append(item)
        for key in (*keys, own_key):
            if key:
                self._by_key.setdefault(key, item)

    def unsupported(self, resource_type: str, resource_id: str | None, where: str) -> None:
        """Report a resource of a type the mapping does not read (it is not parsed)."""
        self.warnings.append(FhirWarning(code=WarningCode.UNSUPPORTED_RESOURCE, resource_type=resource_type,
                                         resource_id=resource_id, where=where,
                                         message=f"{resource_type} is not a resource type this engine reads"))

    def warn(self, item: _Item, code: WarningCode, message: str, field: str | None = None, skipped: bool = True) -> None:
        self.warnings.append(FhirWarning(code=code, message=message, resource_type=item.type, resource_id=item.resource.id,
                                         where=item.where, field=field, skipped=skipped))

    # -- output ----------------------------------------------------------------------------------

    def build(self) -> MappedProfile:
        """Map everything added (call once)."""
        patient_item = _Item(self.patient, self.patient_where)
        birth_date, partial = as_date(self.patient.birthDate)
        if partial:
            self.warn(patient_item, WarningCode.PARTIAL_DATE, f"birth date {partial!r} is partial: age left unknown",
                      field="birthDate", skipped=False)
            birth_date = None
        sex = {"male": Sex.MALE, "female": Sex.FEMALE, "other": Sex.OTHER}.get(self.patient.gender or "")
        deceased: dt.date | bool | None = None if self.patient.deceasedBoolean is None else self.patient.deceasedBoolean
        if self.patient.deceasedDateTime:
            died, partial = as_date(self.patient.deceasedDateTime)
            deceased = True if partial else died  # a partial date (a year, a month): deceased on a day unknown
        if deceased:
            when = f" on {deceased.isoformat()}" if isinstance(deceased, dt.date) else ""
            self.warn(patient_item, WarningCode.DECEASED, f"the patient is recorded as deceased{when}", skipped=False)

        for item in self._items:
            if item.type not in REFERENCED_ONLY:
                HANDLERS[item.type](self, item)
        for item in self._items:
            if id(item) in self._used:
                continue
            if item.type == "ImagingStudy":
                self.warn(item, WarningCode.FINDINGS_UNKNOWN,
                          "an imaging study with no DiagnosticReport: its findings are unknown, so it is not used")
            elif item.type == "Medication":
                self.warn(item, WarningCode.UNSUPPORTED_RESOURCE,
                          "a Medication no MedicationStatement or MedicationRequest refers to: not used")

        profile = PatientProfile(
            id=self.patient_id,
            birth_date=birth_date,
            sex=sex,
            conditions=self._conditions if self._reviewed[C.HISTORY_CONDITIONS] else None,
            observations=self._observations,
            medications=self._medications if self._reviewed[C.HISTORY_MEDICATIONS] else None,
            procedures=self._procedures if self._reviewed[C.HISTORY_PROCEDURES] else None,
            assessments=self._assessments,
            imaging=self._imaging,
            deceased=deceased,
            pregnant=self._latest("pregnant", "pregnancy status"),
            lactating=self._latest("lactating", "breastfeeding status"),
            childbearing_potential=self._latest("childbearing_potential", "child-bearing potential"),
            consent=self._latest("consent", "research consent"),
        )
        return MappedProfile(profile=profile, warnings=tuple(self.warnings))

    def _latest(self, name: str, label: str) -> Any:
        candidates = sorted(self._scalars[name], key=lambda c: c.date or dt.date.min)
        if not candidates:
            return None
        last = candidates[-1].date
        latest = [c for c in candidates if c.date == last]
        for c in candidates:
            if c.date != last:
                self.warn(c.item, WarningCode.SUPERSEDED, f"an older {label} ({c.value}), replaced by the one of {last}")
        values = {c.value for c in latest}
        if len(values) > 1:
            for c in latest:
                self.warn(c.item, WarningCode.UNMAPPABLE_VALUE,
                          f"{label} recorded as {sorted(map(str, values))} on the same date: left unknown")
            return None
        return values.pop()

    # -- helpers ---------------------------------------------------------------------------------

    def _about_patient(self, item: _Item, reference: Any, field: str) -> bool:
        """True when the reference names this patient (or is absent); otherwise warns."""
        if reference is None:
            return True
        ref = reference.reference
        if ref:
            if ref in self._patient_keys:
                return True
            if ref.startswith("Patient?"):
                tokens = [v for k, v in parse_qsl(ref.split("?", 1)[1]) if k == "identifier"]
                if any(self._has_identifier(t) for t in tokens):
                    return True
            elif reference_type_id(ref) == ("Patient", self.patient_id):
                return True
            self.warn(item, WarningCode.OTHER_PATIENT, f"{field} is {ref!r}, not this patient ({self.patient_id})", field=field)
            return False
        ident = reference.identifier
        if ident is not None and ident.value and not self._has_identifier(f"{ident.system}|{ident.value}" if ident.system else ident.value):
            self.warn(item, WarningCode.OTHER_PATIENT, f"{field} identifies {ident.value!r}, not this patient", field=field)
            return False
        return True

    def _has_identifier(self, token: str) -> bool:
        if "|" in token:
            system, value = token.split("|", 1)
            return (system, value) in self._identifiers
        return any(value == token for _, value in self._identifiers)

    def _resolve(self, item: _Item, reference: Any) -> _Item | None:
        ref = reference.reference if reference is not None else None
        if not ref:
            return None
        if ref.startswith("#"):
            contained = next((r for r in (item.resource.contained or []) if r.id == ref[1:]), None)
            return _Item(contained, f"{item.where} contained {ref}") if contained is not None else None
        found = self._by_key.get(ref)
        if found is None and (tid := reference_type_id(ref)):
            found = self._by_key.get(f"{tid[0]}/{tid[1]}")
        return found

    def _date(self, item: _Item, value: Any, field: str) -> dt.date | None:
        date, partial = as_date(value)
        if partial is not None:
            if date is None:
                self.warn(item, WarningCode.NO_DATE, f"{field} {partial!r} is not a date", field=field, skipped=False)
            else:
                self.warn(item, WarningCode.PARTIAL_DATE, f"{field} {partial!r} is partial: read as {date}", field=field, skipped=False)
        return date

    def _effective(self, item: _Item, prefix: str = "effective") -> dt.date | None:
        res = item.resource
        for suffix in ("DateTime", "Instant"):
            value = getattr(res, prefix + suffix, None)
            if value is not None:
                return self._date(item, value, prefix + suffix)
        period = getattr(res, prefix + "Period", None)
        if period is not None and (period.start or period.end):
            return self._date(item, period.start or period.end, f"{prefix}Period.{'start' if period.start else 'end'}")
        return None

    def _checked_code(self, item: _Item, model: type, name: str, code: str, what: str, field: str) -> str | None:
        """``code`` when the profile model accepts it as ``name``; otherwise a warning and None."""
        base = {"name": "x"} if model is Medication else {}
        if _valid(model, **base, **{name: code}):
            return code
        self.warn(item, WarningCode.INVALID_CODE, f"{code!r} is not {what}: ignored", field=field, skipped=False)
        return None

    def _mark_reviewed(self, history: str) -> None:
        self._reviewed[history] = True

    def _absent_marker(self, item: _Item, concept: Any) -> bool:
        """An IPS 'no known ...' / 'no ... info' record: True when it was one (and is consumed)."""
        code = _code(concept, C.IPS_ABSENT)
        if code in C.IPS_NONE_KNOWN:
            self._mark_reviewed(C.IPS_NONE_KNOWN[code])
            return True
        if code in C.IPS_NO_INFO:
            self.warn(item, WarningCode.ASSUMPTION, f"records {code!r}: the {_HISTORY_LABEL[C.IPS_NO_INFO[code]]} "
                      "is not reviewed unless other records show it", skipped=False)
            return True
        return False

    # -- handlers --------------------------------------------------------------------------------

    def _condition(self, item: _Item) -> None:
        c = item.resource
        if not self._about_patient(item, c.subject, "subject"):
            return
        verification = _code(c.verificationStatus)
        if verification == "entered-in-error":
            self.warn(item, WarningCode.STATUS_EXCLUDED, "verificationStatus is entered-in-error", field="verificationStatus")
            return
        if self._absent_marker(item, c.code):
            return
        self._mark_reviewed(C.HISTORY_CONDITIONS)  # a refuted diagnosis still shows the list was reviewed
        if verification == "refuted":
            self.warn(item, WarningCode.STATUS_EXCLUDED, "verificationStatus is refuted: not a diagnosis", field="verificationStatus")
            return
        icd10 = snomed = None
        for coding in _codings(c.code):
            if coding.system in C.ICD10_SYSTEMS and coding.code and icd10 is None:
                icd10 = self._checked_code(item, Condition, "icd10", coding.code, "an ICD-10 code", "code.coding")
            elif coding.system == C.SNOMED and coding.code and snomed is None:
                snomed = self._checked_code(item, Condition, "snomed", coding.code, "a SNOMED CT code", "code.coding")
        if icd10 is None and snomed is None:
            systems = ", ".join(sorted({cd.system or "no system" for cd in _codings(c.code)})) or "none"
            self.warn(item, WarningCode.UNKNOWN_CODE, f"no ICD-10, ICD-10-CM or SNOMED CT coding (has: {systems})", field="code")
            return
        if verification in ("unconfirmed", "provisional", "differential"):
            self.warn(item, WarningCode.ASSUMPTION, f"verificationStatus is {verification}: kept as a diagnosis",
                      field="verificationStatus", skipped=False)

        onset = self._effective(item, "onset")
        for name in ("onsetAge", "onsetRange", "onsetString"):
            if getattr(c, name, None) is not None:
                self.warn(item, WarningCode.NO_DATE, f"{name} is not a date: onset left unknown", field=name, skipped=False)
        resolved = None
        if c.abatementDateTime is not None:
            resolved = self._date(item, c.abatementDateTime, "abatementDateTime")
        elif c.abatementPeriod is not None and (c.abatementPeriod.end or c.abatementPeriod.start):
            end = c.abatementPeriod.end or c.abatementPeriod.start
            resolved = self._date(item, end, "abatementPeriod")
        for name in ("abatementAge", "abatementRange", "abatementString"):
            if getattr(c, name, None) is not None:
                self.warn(item, WarningCode.NO_DATE, f"{name} is not a date: resolution date left unknown", field=name, skipped=False)

        clinical = _code(c.clinicalStatus)
        if clinical in ConditionStatus._value2member_map_:
            status = ConditionStatus(clinical)
        elif resolved is not None or any(getattr(c, n, None) is not None for n in ("abatementAge", "abatementRange", "abatementString")):
            status = ConditionStatus.RESOLVED
        else:
            status = ConditionStatus.ACTIVE
            self.warn(item, WarningCode.ASSUMPTION, f"clinicalStatus {'missing' if clinical is None else repr(clinical)}: read as active",
                      field="clinicalStatus", skipped=False)
        prefer = (C.ICD10, icd10) if icd10 else (C.SNOMED, snomed)
        kept = self._append(item, self._conditions, Condition, icd10=icd10, snomed=snomed, display=_text(c.code, prefer),
                            onset=onset, resolved=resolved, status=status)
        if kept and resolved is not None and status in ACTIVE_CONDITION_STATUSES:  # FHIR invariant con-4: an abated condition is not active
            self.warn(item, WarningCode.ASSUMPTION, f"clinicalStatus {clinical} but abated on {resolved.isoformat()} (FHIR invariant con-4): "
                      "not active from that date", field="clinicalStatus", skipped=False)

    def _observation(self, item: _Item) -> None:
        obs = item.resource
        if not self._about_patient(item, obs.subject, "subject"):
            return
        if obs.status in ("entered-in-error", "cancelled"):
            self.warn(item, WarningCode.STATUS_EXCLUDED, f"status is {obs.status}", field="status")
            return
        codings = _codings(obs.code)
        for coding in codings:
            if coding.system == C.PROJECT and coding.code in C.PROJECT_ASSESSMENTS:
                return self._assessment(item, C.PROJECT_ASSESSMENTS[coding.code])
            if coding.system == C.PROJECT and coding.code == C.PROJECT_CHILDBEARING_POTENTIAL:
                return self._status(item, "childbearing_potential", {}, "child-bearing potential")
        loincs = [cd.code for cd in codings if cd.system == C.LOINC and cd.code]
        if C.LOINC_PREGNANCY_STATUS in loincs:
            return self._status(item, "pregnant", C.PREGNANCY_ANSWERS, "pregnancy status")
        if C.LOINC_BREASTFEEDING_STATUS in loincs:
            return self._status(item, "lactating", C.BREASTFEEDING_ANSWERS, "breastfeeding status")
        for code in loincs:
            if code in ANALYTE_BY_LOINC:
                return self._lab(item, code, ANALYTE_BY_LOINC[code])
        if loincs:
            self.warn(item, WarningCode.UNKNOWN_CODE, f"LOINC {', '.join(loincs)} is not an analyte or status this engine reads", field="code")
        else:
            systems = sorted({cd.system or "no system" for cd in codings})
            self.warn(item, WarningCode.UNKNOWN_CODE, f"no LOINC coding (has: {', '.join(systems) or 'none'})", field="code")

    def _lab(self, item: _Item, loinc: str, analyte: Analyte) -> None:
        obs = item.resource
        date = self._effective(item)
        if date is None:
            self.warn(item, WarningCode.NO_DATE, "no effective date: a lab result needs one", field="effective[x]")
            return
        display = _text(obs.code, (C.LOINC, loinc))
        if analyte.unit is None:
            result = self._qualitative(obs)
            if result is None:
                if not self._no_value(item):
                    self.warn(item, WarningCode.UNMAPPABLE_VALUE,
                              f"{self._value_kind(obs)} is not a result this engine reads for {analyte.display} "
                              f"(positive/negative, detected/not detected, reactive/nonreactive, indeterminate)", field="value[x]")
                return
            self._append(item, self._observations, Observation, loinc=loinc, display=display, result=result, date=date)
            return
        quantity = obs.valueQuantity
        if quantity is None or quantity.value is None:
            if obs.dataAbsentReason is not None:
                self.warn(item, WarningCode.NO_VALUE, f"no value: {_text(obs.dataAbsentReason) or _code(obs.dataAbsentReason)}", field="dataAbsentReason")
            elif quantity is None and self._value_kind(obs) != "no value":
                self.warn(item, WarningCode.UNMAPPABLE_VALUE,
                          f"{self._value_kind(obs)} for {analyte.display}, which needs a number with a UCUM unit", field="value[x]")
            else:
                self.warn(item, WarningCode.NO_VALUE, "no value", field="valueQuantity.value" if quantity is not None else "value[x]")
            return
        unit = self._ucum(item, quantity, analyte, "valueQuantity")
        if unit is None:
            return
        comparator = None
        if quantity.comparator:
            if quantity.comparator not in C.QUANTITY_COMPARATORS:
                self.warn(item, WarningCode.UNMAPPABLE_VALUE, f"comparator {quantity.comparator!r} is not <, <=, > or >=",
                          field="valueQuantity.comparator")
                return
            comparator = Comparator(quantity.comparator)
        try:
            check_unit(analyte.name, unit)
        except UnitError as exc:
            self.warn(item, WarningCode.UNIT_NOT_CONVERTIBLE, exc.problem, field="valueQuantity.code")
            return
        control = self._control(item, unit, analyte)
        self._append(item, self._observations, Observation, loinc=loinc, display=display, value=float(quantity.value),
                     unit=unit, comparator=comparator, control=control, date=date)

    def _ucum(self, item: _Item, quantity: Any, analyte: Analyte, field: str) -> str | None:
        if quantity.code:
            if quantity.system == C.UCUM:
                return quantity.code
            if quantity.system is None:
                self.warn(item, WarningCode.ASSUMPTION, f"unit code {quantity.code!r} has no system: read as UCUM",
                          field=f"{field}.system", skipped=False)
                return quantity.code
            self.warn(item, WarningCode.NO_UCUM_UNIT, f"unit {quantity.code!r} is coded in {quantity.system}, not UCUM", field=f"{field}.system")
            return None
        if analyte.unit == "1" and _normal_text(quantity.unit) in ("", "1", "inr", "{inr}", "ratio"):
            return "1"  # a ratio such as the INR is commonly sent without a unit
        self.warn(item, WarningCode.NO_UCUM_UNIT,
                  f"no UCUM unit code (unit text {quantity.unit!r})" if quantity.unit else "no unit", field=f"{field}.code")
        return None

    def _control(self, item: _Item, unit: str, analyte: Analyte) -> float | None:
        for component in item.resource.component or []:
            if _code(component.code, C.PROJECT) != C.PROJECT_PT_CONTROL:
                continue
            q = component.valueQuantity
            if q is None or q.value is None:
                self.warn(item, WarningCode.NO_VALUE, "the control component has no value", field="component", skipped=False)
                return None
            if (q.code or unit) != unit:
                self.warn(item, WarningCode.UNMAPPABLE_VALUE, f"control in {q.code!r}, result in {unit!r}: control not used",
                          field="component", skipped=False)
                return None
            return float(q.value)
        return None

    def _no_value(self, item: _Item) -> bool:
        """True, with a no_value warning, when the Observation holds no value[x] (none, or a dataAbsentReason)."""
        obs = item.resource
        if self._value_kind(obs) != "no value":
            return False
        reason = obs.dataAbsentReason
        if reason is not None:
            self.warn(item, WarningCode.NO_VALUE, f"no value: {_text(reason) or _code(reason)}", field="dataAbsentReason")
        else:
            self.warn(item, WarningCode.NO_VALUE, "no value", field="value[x]")
        return True

    @staticmethod
    def _value_kind(obs: Any) -> str:
        for name in ("valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger", "valueRange",
                     "valueRatio", "valueSampledData", "valueTime", "valueDateTime", "valuePeriod"):
            if getattr(obs, name, None) is not None:
                return f"a {name[5:]} value"
        return "no value"

    @staticmethod
    def _qualitative(obs: Any) -> QualitativeResult | None:
        concept = obs.valueCodeableConcept
        if concept is not None:
            for coding in _codings(concept):
                if (coding.system, coding.code) in C.QUALITATIVE_CODES:
                    return C.QUALITATIVE_CODES[(coding.system, coding.code)]
            for text in [concept.text, *(cd.display for cd in _codings(concept))]:
                if _normal_text(text) in C.QUALITATIVE_TEXT:
                    return C.QUALITATIVE_TEXT[_normal_text(text)]
        if obs.valueString is not None and _normal_text(obs.valueString) in C.QUALITATIVE_TEXT:
            return C.QUALITATIVE_TEXT[_normal_text(obs.valueString)]
        for interpretation in obs.interpretation or []:
            for coding in _codings(interpretation):
                if (coding.system, coding.code) in C.INTERPRETATION_CODES:
                    return C.INTERPRETATION_CODES[(coding.system, coding.code)]
        return None

    def _assessment(self, item: _Item, name: AssessmentName) -> None:
        obs = item.resource
        date = self._effective(item)
        if date is None:
            self.warn(item, WarningCode.NO_DATE, "no effective date: an assessment needs one", field="effective[x]")
            return
        grade = obs.valueInteger
        if grade is None and obs.valueQuantity is not None and obs.valueQuantity.value is not None:
            value = obs.valueQuantity.value
            grade = int(value) if value == int(value) else None
        if grade is None:
            if not self._no_value(item):
                self.warn(item, WarningCode.UNMAPPABLE_VALUE, f"{self._value_kind(obs)}: a {name.value} needs a whole-number grade",
                          field="value[x]")
            return
        self._append(item, self._assessments, Assessment, name=name, grade=grade, date=date)

    def _status(self, item: _Item, name: str, answers: dict[tuple[str, str], bool | None], label: str) -> None:
        obs = item.resource
        value: bool | None
        if obs.valueBoolean is not None:
            value = obs.valueBoolean
        else:
            table = {**answers, **C.YES_NO}
            matches = [table[(cd.system, cd.code)] for cd in _codings(obs.valueCodeableConcept) if (cd.system, cd.code) in table]
            if not matches:
                if not self._no_value(item):
                    self.warn(item, WarningCode.UNMAPPABLE_VALUE, f"{self._value_kind(obs)} is not a {label} this engine reads",
                              field="value[x]")
                return
            value = matches[0]
            if value is None:
                self.warn(item, WarningCode.NO_VALUE, f"{label} recorded as unknown", field="valueCodeableConcept")
                return
        self._scalars[name].append(_Candidate(self._effective(item), value, item))

    def _medication(self, item: _Item) -> None:
        m = item.resource
        request = item.type == "MedicationRequest"
        if not self._about_patient(item, m.subject, "subject"):
            return
        if m.status == "entered-in-error":
            self.warn(item, WarningCode.STATUS_EXCLUDED, "status is entered-in-error", field="status")
            return
        concept, ingredients, unresolved = m.medicationCodeableConcept, [], None
        if concept is None and m.medicationReference is not None:
            found = self._resolve(item, m.medicationReference)
            if found is not None and found.type == "Medication":
                self._used.add(id(found))
                concept = found.resource.code
                ingredients = [t for t in (_text(i.itemCodeableConcept) for i in found.resource.ingredient or []
                                           if i.itemCodeableConcept is not None) if t]
            elif m.medicationReference.reference:
                unresolved = f"medicationReference {m.medicationReference.reference!r} names no Medication in the data"
        if self._absent_marker(item, concept):
            return
        self._mark_reviewed(C.HISTORY_MEDICATIONS)
        table = C.MEDICATION_REQUEST_STATUS if request else C.MEDICATION_STATEMENT_STATUS
        if m.status in table and table[m.status] is None:
            self.warn(item, WarningCode.STATUS_EXCLUDED, f"status is {m.status}: not taken", field="status")
            return
        status = table.get(m.status)
        if status is None:
            status = MedicationStatus.ACTIVE
            self.warn(item, WarningCode.ASSUMPTION, f"status {m.status!r}: read as active", field="status", skipped=False)
        if request and m.intent in C.MEDICATION_REQUEST_PLANNED_INTENTS:
            status = MedicationStatus.INTENDED

        atc = rxnorm = None
        for coding in _codings(concept):
            if coding.system == C.ATC and coding.code and atc is None:
                atc = self._checked_code(item, Medication, "atc", coding.code, "an ATC code", "medication[x]")
            elif coding.system == C.RXNORM and coding.code and rxnorm is None:
                rxnorm = self._checked_code(item, Medication, "rxnorm", coding.code, "an RxNorm code", "medication[x]")
        name = _text(concept, (C.RXNORM, rxnorm) if rxnorm else None)
        if name is None and m.medicationReference is not None and m.medicationReference.display:
            name = m.medicationReference.display.strip()
        if name is None:
            name = f"RxNorm {rxnorm}" if rxnorm else (f"ATC {atc}" if atc else None)
        if unresolved:
            self.warn(item, WarningCode.NO_VALUE, f"{unresolved}: " + ("read by its display only" if name else "no name or code"),
                      field="medicationReference", skipped=name is None)
        if name is None:
            if not unresolved:
                self.warn(item, WarningCode.UNKNOWN_CODE, "no medication name, ATC or RxNorm code", field="medication[x]")
            return
        start = end = None
        if request:
            start = self._date(item, m.authoredOn, "authoredOn") if m.authoredOn is not None else None
        elif m.effectiveDateTime is not None:
            start = self._date(item, m.effectiveDateTime, "effectiveDateTime")
        elif m.effectivePeriod is not None:
            start = self._date(item, m.effectivePeriod.start, "effectivePeriod.start") if m.effectivePeriod.start else None
            end = self._date(item, m.effectivePeriod.end, "effectivePeriod.end") if m.effectivePeriod.end else None
        self._append(item, self._medications, Medication, name=name, ingredients=ingredients, atc=atc, rxnorm=rxnorm,
                     start=start, end=end, status=status)

    def _procedure(self, item: _Item) -> None:
        p = item.resource
        if not self._about_patient(item, p.subject, "subject"):
            return
        if p.status == "entered-in-error":
            self.warn(item, WarningCode.STATUS_EXCLUDED, "status is entered-in-error", field="status")
            return
        if self._absent_marker(item, p.code):
            return
        self._mark_reviewed(C.HISTORY_PROCEDURES)
        if p.status in ("not-done", "preparation"):
            self.warn(item, WarningCode.STATUS_EXCLUDED, f"status is {p.status}: not performed", field="status")
            return
        codings = _codings(p.code)
        kind = next((cd.code for cd in codings if cd.system == C.PROJECT and cd.code and _KIND.match(cd.code)), None)
        code = system = None
        invalid: list[str] = []  # codes in the SNOMED CT system that are no SNOMED CT concept id
        for uri, short in C.PROCEDURE_SYSTEMS.items():
            for cd in codings:
                if cd.system != uri or not cd.code:
                    continue
                if short == "snomed" and not _SCTID.match(cd.code):
                    invalid.append(cd.code)
                    continue
                code, system = cd.code, short
                break
            if code:
                break
        if kind is None and system == "snomed":
            kind = C.PROCEDURE_KINDS.get(code)
        if kind is None and code is None and invalid:
            self.warn(item, WarningCode.INVALID_CODE, f"{invalid[0]!r} is not a SNOMED CT code (a concept id is 6-18 digits), "
                      "and there is no other usable coding", field="code")
            return
        for bad in invalid:
            self.warn(item, WarningCode.INVALID_CODE, f"{bad!r} is not a SNOMED CT code (a concept id is 6-18 digits): ignored",
                      field="code", skipped=False)
        if kind is None and code is None:
            systems = sorted({cd.system or "no system" for cd in codings})
            self.warn(item, WarningCode.UNKNOWN_CODE, f"no SNOMED CT, ICD-10-PCS, CPT or project coding (has: {', '.join(systems) or 'none'})",
                      field="code")
            return
        date = self._effective(item, "performed")
        if date is None:
            self.warn(item, WarningCode.NO_DATE, "no performed date: kept undated (counts for rules without a window)",
                      field="performed[x]", skipped=False)
        prefer = (C.SNOMED, code) if system == "snomed" else None
        self._append(item, self._procedures, Procedure, kind=kind, code=code, system=system, display=_text(p.code, prefer), date=date)

    def _diagnostic_report(self, item: _Item) -> None:
        dr = item.resource
        if not self._about_patient(item, dr.subject, "subject"):
            return
        if dr.status in ("entered-in-error", "cancelled", "registered"):
            self.warn(item, WarningCode.STATUS_EXCLUDED, f"status is {dr.status}", field="status")
            return
        studies = [s for s in (self._resolve(item, ref) for ref in dr.imagingStudy or []) if s is not None and s.type == "ImagingStudy"]
        for study in studies:
            self._used.add(id(study))
        modality = self._modality(dr, studies)
        if modality is None:
            sections = {cd.code for concept in dr.category or [] for cd in _codings(concept) if cd.system == C.V2_0074}
            if sections & C.V2_LAB_SECTIONS:
                self.warn(item, WarningCode.UNSUPPORTED_RESOURCE,
                          "a laboratory report: its results are read from the Observations themselves")
            else:
                self.warn(item, WarningCode.UNKNOWN_CODE,
                          "no imaging modality (ImagingStudy, DICOM modality, v2-0074 section or project code)", field="category")
            return
        coded: list[str] = []
        unreadable = False
        if not dr.conclusionCode:
            self.warn(item, WarningCode.FINDINGS_UNKNOWN, "no conclusionCode: kept with its findings not coded "
                      "(questions about findings are unknown; the conclusion text is shown, not parsed)",
                      field="conclusionCode", skipped=False)
        for concept in dr.conclusionCode or []:
            for coding in _codings(concept):
                if coding.system == C.SNOMED and coding.code in C.IMAGING_FINDINGS:
                    coded.append(C.IMAGING_FINDINGS[coding.code])
                elif coding.system == C.PROJECT and _valid(ImagingStudy, modality=modality, date=dt.date.min, findings=[coding.code]):
                    coded.append(coding.code)
                elif not (coding.system == C.SNOMED and coding.code == C.NO_ABNORMALITY):
                    # a finding this engine cannot read might be the one a rule asks about (a synonym of
                    # cirrhosis, a liver mass...): the study's findings are then unknown, never "not seen"
                    unreadable = True
                    self.warn(item, WarningCode.UNKNOWN_CODE, f"conclusion code {coding.system} {coding.code} is not a finding "
                              "this engine reads: the study is kept with its findings not coded", field="conclusionCode", skipped=False)
        findings = list(dict.fromkeys(coded)) if dr.conclusionCode and not unreadable else None
        date = self._effective(item)
        if date is None:
            started = next((s.resource.started for s in studies if s.resource.started), None)
            date = self._date(item, started or dr.issued, "imagingStudy.started" if started else "issued") if (started or dr.issued) else None
        if date is None:
            self.warn(item, WarningCode.NO_DATE, "no date: an imaging study needs one", field="effective[x]")
            return
        self._append(item, self._imaging, ImagingStudy, modality=modality, date=date, findings=findings,
                     report=dr.conclusion)

    @staticmethod
    def _modality(dr: Any, studies: list[_Item]) -> Modality | None:
        codings = [cd for s in studies for cd in [*(s.resource.modality or []), *(se.modality for se in s.resource.series or [])]]
        codings += [cd for concept in [*(dr.category or []), dr.code] for cd in _codings(concept)]
        for coding in codings:
            if coding.system == C.DICOM and coding.code in C.DICOM_MODALITIES:
                return C.DICOM_MODALITIES[coding.code]
            if coding.system == C.V2_0074 and coding.code in C.V2_SECTION_MODALITIES:
                return C.V2_SECTION_MODALITIES[coding.code]
            if coding.system == C.PROJECT and coding.code in Modality._value2member_map_:
                return Modality(coding.code)
        return None

    def _consent(self, item: _Item) -> None:
        consent = item.resource
        if not self._about_patient(item, consent.patient, "patient"):
            return
        if consent.status == "entered-in-error":
            self.warn(item, WarningCode.STATUS_EXCLUDED, "status is entered-in-error", field="status")
            return
        scope = _code(consent.scope, C.CONSENT_SCOPE)
        if scope != "research":
            self.warn(item, WarningCode.UNKNOWN_CODE, f"scope is {scope or _text(consent.scope)!r}, not research", field="scope")
            return
        value = C.CONSENT_STATUS.get(consent.status)
        if value is ConsentStatus.CONSENTED and consent.provision is not None and consent.provision.type == "deny":
            value = ConsentStatus.REFUSED
        if value is None:
            self.warn(item, WarningCode.STATUS_EXCLUDED, f"status is {consent.status}: not in force", field="status")
            return
        date = self._date(item, consent.dateTime, "dateTime") if consent.dateTime is not None else None
        self._scalars["consent"].append(_Candidate(date, value, item))

    def _list(self, item: _Item) -> None:
        lst = item.resource
        if not self._about_patient(item, lst.subject, "subject"):
            return
        history = next((C.LIST_HISTORY[(cd.system, cd.code)] for cd in _codings(lst.code) if (cd.system, cd.code) in C.LIST_HISTORY), None)
        if history is None:
            self.warn(item, WarningCode.UNKNOWN_CODE, "not a problem, medication or procedure list", field="code")
            return
        if lst.status != "current":
            self.warn(item, WarningCode.STATUS_EXCLUDED, f"status is {lst.status}", field="status")
            return
        label = _HISTORY_LABEL[history]
        if lst.entry:
            missing = [e.item.reference or e.item.display for e in lst.entry if self._resolve(item, e.item) is None]
            if missing:
                self.warn(item, WarningCode.NO_VALUE, f"{len(missing)} entries are not in the data ({missing[0]}...): "
                          f"the {label} is not taken as complete", field="entry", skipped=False)
            else:
                self._mark_reviewed(history)
            return
        reason = _code(lst.emptyReason, C.LIST_EMPTY_REASON)
        if reason == "nilknown":
            self._mark_reviewed(history)
        else:
            self.warn(item, WarningCode.ASSUMPTION, f"an empty {label} (emptyReason {reason or 'missing'}): not reviewed",
                      field="emptyReason", skipped=False)

    def _append(self, item: _Item, target: list, model: type, **values: Any) -> bool:
        """Append ``model(**values)`` to ``target``; False, with a warning, when the values do not validate."""
        try:
            target.append(model(**values))
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            self.warn(item, WarningCode.UNMAPPABLE_VALUE, f"cannot be used: {error['msg']}",
                      field=".".join(str(p) for p in error["loc"]) or None)
            return False
        return True


HANDLERS: dict[str, Callable[[ProfileBuilder, _Item], None]] = {
    "Condition": ProfileBuilder._condition,
    "Observation": ProfileBuilder._observation,
    "MedicationStatement": ProfileBuilder._medication,
    "MedicationRequest": ProfileBuilder._medication,
    "Procedure": ProfileBuilder._procedure,
    "DiagnosticReport": ProfileBuilder._diagnostic_report,
    "Consent": ProfileBuilder._consent,
    "List": ProfileBuilder._list,
}
# Read only through the handlers that refer to them (DiagnosticReport.imagingStudy, medicationReference);
# the Patient starts the builder.
REFERENCED_ONLY = frozenset({"ImagingStudy", "Medication"})
