"""The watcher: current profile per patient, re-screened on each event, changes reported.

State per patient is the profile and the last result per trial; it is dropped on ``discharge``,
and the number of patients kept is bounded (the least recently updated is evicted, with a
notice, past ``max_patients``). Observations, assessments and imaging are capped at
``max_entries`` per patient (the oldest go first); coded histories are never capped. A malformed event yields an error record and never stops the stream.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .. import screen
from ..errors import PatientDataError, ScreeningError, UnitError
from ..logic import Verdict
from ..patient.io import parse_patient
from ..patient.model import PatientProfile
from ..results import TrialResult
from ..rules.loader import RuleSet
from .events import (
    AddImaging,
    Discharge,
    ProfileEvent,
    SetFields,
    UpsertAssessment,
    UpsertCondition,
    UpsertMedication,
    UpsertObservation,
    UpsertProcedure,
    parse_event,
)

_LISTS = {
    UpsertObservation: ("observations", lambda o: (o["loinc"], o["date"])),
    UpsertCondition: ("conditions", lambda c: c.get("icd10") or c.get("snomed")),
    UpsertMedication: ("medications", lambda m: m["name"].lower()),
    UpsertProcedure: ("procedures", lambda p: (p.get("kind"), p.get("system"), p.get("code"), p.get("date"))),
    UpsertAssessment: ("assessments", lambda a: (a["name"], a["date"])),
    AddImaging: ("imaging", None),
}


# Lists where an absent entry is only "unknown" (the latest result in a window is used): these may
# be capped. Conditions, medications and procedures are never capped: there a missing entry
# would read as "none found".
_OPEN_WORLD = frozenset({"observations", "assessments", "imaging"})


@dataclass
class _PatientState:
    profile: PatientProfile
    results: dict[str, TrialResult]


def _entry_date(entry: dict[str, Any]) -> str:
    return str(entry.get("date") or entry.get("onset") or entry.get("start") or "")


class Watcher:
    """Re-screens patients as events arrive. ``handle`` returns the records to emit: one per
    trial whose verdict changed (including the first verdict), or one error record."""

    def __init__(self, rules: RuleSet, as_of: dt.date, engine: str = "durable", max_patients: int = 100_000, max_entries: int = 500):
        self.rules = rules
        self.as_of = as_of
        self.engine = engine
        self.max_patients = max_patients
        self.max_entries = max_entries
        self._patients: OrderedDict[str, _PatientState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._patients)

    def run(self, lines: Iterable[str]) -> Iterator[dict[str, Any]]:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                yield from self.handle(line, number)

    def handle(self, line: str | dict[str, Any], number: int | None = None) -> list[dict[str, Any]]:
        try:
            event = parse_event(line)
        except ScreeningError as exc:
            return [self._error(number, None, exc)]
        try:
            return self._apply(event)
        except ScreeningError as exc:
            return [self._error(number, event, exc)]
        except Exception as exc:  # noqa: BLE001 - a stream must outlive any one event; no values in the record
            return [self._error(number, event, ScreeningError(f"internal error ({type(exc).__name__}) while screening this event"))]

    @staticmethod
    def _error(number: int | None, event: Any, exc: ScreeningError) -> dict[str, Any]:
        """An error record naming the line, event and field, never the patient's values."""
        if isinstance(exc, UnitError) and exc.field:
            message = f"unit cannot be used (field {exc.field})"
        elif isinstance(exc, PatientDataError) and exc.field and exc.patient_id:  # resolver messages may quote values
            message = f"invalid value (field {exc.field})"
        else:
            message = str(exc)
        record: dict[str, Any] = {"error": message, "line": number}
        if event is not None:
            record["event"] = event.type
            record["patient_id"] = event.patient_id
        return record

    def _apply(self, event: Any) -> list[dict[str, Any]]:
        if isinstance(event, Discharge):
            self._patients.pop(event.patient_id, None)
            return [{"patient_id": event.patient_id, "discharged": True}]
        state = self._patients.get(event.patient_id)
        if isinstance(event, ProfileEvent):
            profile = event.patient
        elif state is None:
            raise ScreeningError(f"patient {event.patient_id} is not known: send a profile event first")
        else:
            profile = self._updated(state.profile, event)
        as_of = event.as_of or self.as_of
        result = screen(profile, self.rules, as_of=as_of, engine=self.engine)
        previous = state.results if state else {}
        self._patients[event.patient_id] = _PatientState(profile, {t.trial_id: t for t in result.results})
        self._patients.move_to_end(event.patient_id)
        records = [self._change(profile.id, as_of, previous.get(t.trial_id), t) for t in result.results]
        records = [r for r in records if r is not None]
        while len(self._patients) > self.max_patients:
            evicted, _ = self._patients.popitem(last=False)
            records.append({"patient_id": evicted, "evicted": True, "reason": f"more than {self.max_patients} patients watched"})
        return records

    def _updated(self, profile: PatientProfile, event: Any) -> PatientProfile:
        data = profile.model_dump(mode="json", exclude_none=True)
        if isinstance(event, SetFields):
            data.update({k: v for k, v in event.fields.items()})
            data = {k: v for k, v in data.items() if v is not None}
        else:
            name, key = _LISTS[type(event)]
            item = event.item.model_dump(mode="json", exclude_none=True)
            entries = [e for e in data.get(name) or [] if key is None or key(e) != key(item)] + [item]
            if name in _OPEN_WORLD and len(entries) > self.max_entries:
                entries = sorted(entries, key=_entry_date)[-self.max_entries:]
            data[name] = entries
        return parse_patient(data, source=f"event for {profile.id}")

    @staticmethod
    def _change(patient_id: str, as_of: dt.date, old: TrialResult | None, new: TrialResult) -> dict[str, Any] | None:
        if old is not None and old.verdict is new.verdict:
            return None
        before = {c.id: c for c in old.criteria} if old else {}
        changed = [
            {"id": c.id, "old": before[c.id].outcome.value if c.id in before else None, "new": c.outcome.value, "reason": c.reason}
            for c in new.criteria
            if c.id not in before or before[c.id].outcome is not c.outcome
        ]
        return {
            "patient_id": patient_id,
            "trial_id": new.trial_id,
            "as_of": as_of.isoformat(),
            "old_verdict": old.verdict.value if old else None,
            "new_verdict": new.verdict.value,
            "missing": list(new.missing) if new.verdict is Verdict.UNDETERMINED else [],
            "changed": changed,
        }
