"""The watcher: current profile per patient, re-screened on each event, changes reported.

State per patient is its profile (as compact JSON), the latest screening date used and, per
trial, the verdict with what decided it. It is dropped on ``discharge``, and the number of
patients kept is bounded (the least recently updated is evicted, with a notice, past
``max_patients``). Observations, assessments and imaging keep the newest ``max_entries`` records
of each code (LOINC, assessment name, modality): the latest result decides, and a frequent lab
cannot push out a rare one. Coded histories are never capped. A malformed or refused event
yields an error record, leaves the patient as it was, and never stops the stream.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from pydantic import TypeAdapter

from .. import screen
from ..errors import PatientDataError, ScreeningError, UnitError
from ..facts.resolve import check_results
from ..logic import Outcome, Verdict
from ..patient.io import parse_patient
from ..patient.model import PatientProfile
from ..results import TrialResult
from ..rules.codelists import normalize_icd10
from ..rules.loader import RuleSet
from .events import (
    AddImaging,
    Discharge,
    EventError,
    ProfileEvent,
    SetFields,
    UpsertAssessment,
    UpsertCondition,
    UpsertMedication,
    UpsertObservation,
    UpsertProcedure,
    parse_event,
)

Entry = dict[str, Any]


def _same_condition(a: Entry, b: Entry) -> bool:
    """The same ICD-10 code (with or without its dot) when both have one, else the same SNOMED CT code."""
    if a.get("icd10") and b.get("icd10"):
        return normalize_icd10(a["icd10"]) == normalize_icd10(b["icd10"])
    return a.get("snomed") is not None and a.get("snomed") == b.get("snomed")


def _drug_name(m: Entry) -> str:
    return " ".join(m["name"].split()).casefold()


def _same(*keys: str) -> Callable[[Entry, Entry], bool]:
    return lambda a, b: all(a.get(k) == b.get(k) for k in keys)


@dataclass(frozen=True)
class _Upsert:
    field: str  # the profile's list
    same: Callable[[Entry, Entry], bool]  # the record an upsert replaces


_UPSERTS: dict[type, _Upsert] = {
    UpsertObservation: _Upsert("observations", _same("loinc", "date")),
    UpsertCondition: _Upsert("conditions", _same_condition),
    UpsertMedication: _Upsert("medications", lambda a, b: _drug_name(a) == _drug_name(b)),
    UpsertProcedure: _Upsert("procedures", _same("kind", "system", "code", "date")),
    UpsertAssessment: _Upsert("assessments", _same("name", "date")),
    AddImaging: _Upsert("imaging", _same("modality", "date")),
}

# Histories: left out (null) means not reviewed, and a list is complete, so one record cannot be
# added to a history that was not reviewed (it would then read as "nothing else found").
_HISTORIES = frozenset({"conditions", "medications", "procedures"})

# Open-world lists (no result is only unknown, and the latest result decides): capped per code.
_CAPPED: dict[str, Callable[[Any], Hashable]] = {
    "observations": lambda o: o.loinc,
    "assessments": lambda a: a.name,
    "imaging": lambda i: i.modality,
}

_PROFILE: TypeAdapter[PatientProfile] = TypeAdapter(PatientProfile)


def _newest(entries: Sequence[Any], group: Callable[[Any], Hashable], limit: int) -> list[Any]:
    """The newest ``limit`` entries of each group, in their order; on a date tie the earlier in
    the list (the later arrival: an upsert puts its record first) is kept."""
    ranked: dict[Hashable, list[tuple[dt.date, int]]] = defaultdict(list)
    for i, entry in enumerate(entries):
        ranked[group(entry)].append((entry.date, -i))
    kept = {-i for ranks in ranked.values() for _, i in sorted(ranks)[-limit:]}
    return [entry for i, entry in enumerate(entries) if i in kept]


@dataclass(frozen=True)
class _Verdict:
    """What a change line compares: a trial's verdict, what it rests on, each criterion's outcome."""

    verdict: Verdict
    deciding: tuple[str, ...]
    missing: tuple[str, ...]
    outcomes: dict[str, Outcome]

    @classmethod
    def of(cls, result: TrialResult) -> _Verdict:
        missing = result.missing if result.verdict is Verdict.UNDETERMINED else ()
        return cls(result.verdict, result.deciding, missing, {c.id: c.outcome for c in result.criteria})

    def same_as(self, other: _Verdict | None) -> bool:
        return other is not None and (self.verdict, self.deciding, self.missing) == (other.verdict, other.deciding, other.missing)


@dataclass
class _PatientState:
    profile: bytes  # compact JSON: a few KB, a fraction of the validated model's size
    as_of: dt.date  # the latest screening date used; never goes back
    verdicts: dict[str, _Verdict]


def _event_field(field: str, event: Any) -> str:
    """A profile field path (``observations[0].unit``) as a path in the event that brought it."""
    if isinstance(event, ProfileEvent):
        return f"patient.{field}"
    if isinstance(event, SetFields) and re.split(r"[.\[]", field, maxsplit=1)[0] in event.fields:
        return f"fields.{field}"
    upsert = _UPSERTS.get(type(event))
    if upsert and field.startswith(f"{upsert.field}[0]"):  # an upsert's record is put first
        return "item" + field.removeprefix(f"{upsert.field}[0]")
    return f"patient.{field}"


def _message(exc: ScreeningError, event: Any = None) -> str:
    """The error as an error line says it: the field it names, never the patient's values."""
    if isinstance(exc, EventError):
        return f"field {exc.field}: {exc.problem}" if exc.field else exc.problem
    if isinstance(exc, PatientDataError) and exc.field:  # resolver and validator messages may quote values
        field = _event_field(exc.field, event)
        return f"unit cannot be used (field {field})" if isinstance(exc, UnitError) else f"invalid value (field {field})"
    return str(exc)


def bounded_lines(stream: TextIO, limit: int) -> Iterator[str]:
    """The stream's lines as they arrive; one longer than ``limit`` characters is cut to
    ``limit + 1`` (its rest is read and dropped), so memory stays bounded whatever a line holds."""
    while line := stream.readline(limit + 1):
        if len(line) > limit and not line.endswith("\n"):  # cut: drop the rest of it
            while (rest := stream.readline(65_536)) and not rest.endswith("\n"):
                pass
        yield line


class Watcher:
    """Re-screens patients as events arrive. ``handle`` returns the records to emit: one per
    trial whose verdict, deciding criteria or missing data changed (including the first
    verdict), or one error record.

    Each event is screened at its ``as_of``, else at ``as_of`` given here, else at ``today()``
    when it is handled; for a patient the date never goes back (a late event is screened at the
    latest date that patient was screened at)."""

    def __init__(
        self,
        rules: RuleSet,
        as_of: dt.date | None,
        engine: str = "durable",
        max_patients: int = 100_000,
        max_entries: int = 50,
        max_line_chars: int = 1_000_000,
        today: Callable[[], dt.date] = dt.date.today,
    ):
        self.rules = rules
        self.as_of = as_of
        self.engine = engine
        self.max_patients = max_patients
        self.max_entries = max_entries
        self.max_line_chars = max_line_chars
        self.today = today
        self._patients: OrderedDict[str, _PatientState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._patients)

    def profile(self, patient_id: str) -> PatientProfile | None:
        """The patient's current profile, or ``None`` when it is not watched."""
        state = self._patients.get(patient_id)
        return _PROFILE.validate_json(state.profile) if state else None

    def run(self, lines: Iterable[str | bytes]) -> Iterator[dict[str, Any]]:
        """The records for each line; a line longer than ``max_line_chars`` is an error record
        (read a stream with :func:`bounded_lines`, so that such a line is never held whole)."""
        for number, line in enumerate(lines, start=1):
            if len(line.rstrip("\r\n" if isinstance(line, str) else b"\r\n")) > self.max_line_chars:
                yield self._error(number, None, None, f"line longer than {self.max_line_chars} characters")
            elif line.strip():
                yield from self.handle(line, number)

    def handle(self, line: str | bytes | dict[str, Any], number: int | None = None) -> list[dict[str, Any]]:
        try:
            event = parse_event(line)
        except EventError as exc:
            return [self._error(number, exc.event, exc.patient_id, _message(exc))]
        try:
            return self._apply(event)
        except ScreeningError as exc:
            return [self._error(number, event.type, event.patient_id, _message(exc, event))]
        except Exception as exc:  # noqa: BLE001 - a stream must outlive any one event; no values in the record
            return [self._error(number, event.type, event.patient_id, f"internal error ({type(exc).__name__}) while screening this event")]

    @staticmethod
    def _error(number: int | None, event: str | None, patient_id: str | None, message: str) -> dict[str, Any]:
        """An error record: always the same keys, ``null`` for what the line did not say."""
        return {"error": message, "line": number, "event": event, "patient_id": patient_id}

    def _apply(self, event: Any) -> list[dict[str, Any]]:
        if isinstance(event, Discharge):
            watched = self._patients.pop(event.patient_id, None) is not None
            return [{"patient_id": event.patient_id, "discharged": True}] if watched else []  # nothing to forget: silent
        state = self._patients.get(event.patient_id)
        if state is None and not isinstance(event, ProfileEvent):
            raise ScreeningError(f"patient {event.patient_id} is not watched (no profile yet, or discharged or evicted): send a profile event first")
        profile = event.patient if isinstance(event, ProfileEvent) else self._updated(state.profile, event)
        check_results(profile)  # also those dated after the screening date, which a later event would read
        profile = self._capped(profile)
        as_of = self._screening_date(event, state)
        result = screen(profile, self.rules, as_of=as_of, engine=self.engine)
        before = state.verdicts if state else {}
        self._patients[event.patient_id] = _PatientState(_PROFILE.dump_json(profile, exclude_none=True), as_of, {t.trial_id: _Verdict.of(t) for t in result.results})
        self._patients.move_to_end(event.patient_id)
        records = [self._change(profile.id, as_of, before.get(t.trial_id), t) for t in result.results]
        records = [r for r in records if r is not None]
        while len(self._patients) > self.max_patients:
            evicted, _ = self._patients.popitem(last=False)
            records.append({"patient_id": evicted, "evicted": True, "reason": f"more than {self.max_patients} patients watched"})
        return records

    def _screening_date(self, event: Any, state: _PatientState | None) -> dt.date:
        date = event.as_of or self.as_of or self.today()
        return max(date, state.as_of) if state else date

    def _updated(self, stored: bytes, event: Any) -> PatientProfile:
        data = json.loads(stored)
        if isinstance(event, SetFields):
            data.update(event.fields)
            data = {k: v for k, v in data.items() if v is not None}
        else:
            upsert = _UPSERTS[type(event)]
            entries = data.get(upsert.field)
            if entries is None and upsert.field in _HISTORIES:
                raise PatientDataError(f"{upsert.field} were not reviewed (left out of the profile): an upsert cannot say the list is "
                                       f"complete; send the reviewed list in a profile or set event ([] when there are none)")
            item = event.item.model_dump(mode="json", exclude_none=True)
            data[upsert.field] = [item] + [e for e in entries or [] if not upsert.same(e, item)]
        return parse_patient(data)

    def _capped(self, profile: PatientProfile) -> PatientProfile:
        """The profile with the newest ``max_entries`` records of each code in the open-world lists."""
        capped = {field: _newest(getattr(profile, field), group, self.max_entries) for field, group in _CAPPED.items()}
        changed = {field: entries for field, entries in capped.items() if len(entries) < len(getattr(profile, field))}
        return profile.model_copy(update=changed) if changed else profile

    @staticmethod
    def _change(patient_id: str, as_of: dt.date, old: _Verdict | None, new: TrialResult) -> dict[str, Any] | None:
        now = _Verdict.of(new)
        if now.same_as(old):
            return None
        before = old.outcomes if old else {}
        changed = [
            {"id": c.id, "old": before[c.id].value if c.id in before else None, "new": c.outcome.value, "reason": c.reason}
            for c in new.criteria
            if before.get(c.id) is not c.outcome
        ]
        return {
            "patient_id": patient_id,
            "trial_id": new.trial_id,
            "as_of": as_of.isoformat(),
            "rules_version": new.rules_version,
            "rules_hash": new.rules_hash,
            "old_verdict": old.verdict.value if old else None,
            "new_verdict": now.verdict.value,
            "deciding": list(now.deciding),
            "missing": list(now.missing),
            "changed": changed,
        }
