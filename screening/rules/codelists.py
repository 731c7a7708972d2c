"""Shared code lists (``rules/codelists/*.yaml``) and code matching.

Matching semantics:
- ICD-10: an entry matches the code and every descendant (``B18.1`` matches ``B18.10``); a range
  ``C00-C97`` matches every three-character category from C00 to C97 and their descendants;
  an entry written ``=I85.0`` matches exactly that code (for a WHO code whose ICD-10-CM
  descendants mean something else). Dots are ignored, so ICD-10-CM codes such as ``K75.81``
  fall under WHO parents.
- ATC: an entry matches itself and every longer code that starts with it (``J05AF`` is a group).
- SNOMED CT and RxNorm: exact concept ids (there is no terminology server here).
- names: case-insensitive whole-word match inside a medication's name or ingredients, so brand
  names and combination products are recognised.
- kinds: procedure kinds, exact.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

_ICD10_ENTRY = re.compile(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$")
_ICD10_RANGE = re.compile(r"^([A-Z][0-9]{2})-([A-Z][0-9]{2})$")
_ATC_ENTRY = re.compile(r"^[A-Z]([0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?)?$")
_MATCH_MEMO_LIMIT = 65_536  # distinct record codes remembered (by each list, and by CodeLists): a memo is cleared when full


def normalize_icd10(code: str) -> str:
    return code.upper().replace(".", "").strip()


class CodeSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    icd10: tuple[str, ...] = ()
    snomed: tuple[str, ...] = ()
    atc: tuple[str, ...] = ()
    rxnorm: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()

    @field_validator("icd10")
    @classmethod
    def _icd10(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        ranges: list[tuple[str, str, str]] = []
        for entry in entries:
            if not (_ICD10_ENTRY.match(entry.removeprefix("=")) or _ICD10_RANGE.match(entry)):
                raise ValueError(f"not an ICD-10 code or range: {entry!r}")
            if "-" in entry:
                low, high = entry.split("-")
                if low > high:
                    raise ValueError(f"range {entry!r} is reversed (write {high}-{low})")
                ranges.append((low, high, entry))
        ranges.sort()
        for (_, high, entry), (low, _, following) in zip(ranges, ranges[1:]):
            if low <= high:
                raise ValueError(f"ranges {entry!r} and {following!r} overlap")
        return entries

    @field_validator("atc")
    @classmethod
    def _atc(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        for entry in entries:
            if not _ATC_ENTRY.match(entry):
                raise ValueError(f"not an ATC code: {entry!r}")
        return entries

    @field_validator("snomed", "rxnorm")
    @classmethod
    def _numeric(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        for entry in entries:
            if not entry.isdigit():
                raise ValueError(f"not a numeric concept id: {entry!r}")
        return entries

    @field_validator("names", "kinds")
    @classmethod
    def _lower(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(e.lower().strip() for e in entries)


class CodeList(BaseModel):
    """A named, sourced set of codes shared by every trial."""

    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    description: str = ""
    sources: tuple[str, ...] = ()
    codes: CodeSet

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without what the cached properties derived (patterns, the ICD-10 codes matched
        so far): a process that unpickles the list derives its own."""
        state = super().__getstate__()
        return {**state, "__dict__": {name: value for name, value in state["__dict__"].items() if name in type(self).model_fields}}

    @cached_property
    def _icd10_prefixes(self) -> tuple[str, ...]:
        return tuple(normalize_icd10(e) for e in self.codes.icd10 if "-" not in e and not e.startswith("="))

    @cached_property
    def _icd10_exact(self) -> frozenset[str]:
        return frozenset(normalize_icd10(e[1:]) for e in self.codes.icd10 if e.startswith("="))

    @cached_property
    def _icd10_ranges(self) -> tuple[tuple[str, str], ...]:
        return tuple(tuple(e.split("-")) for e in self.codes.icd10 if "-" in e)  # type: ignore[misc]

    @cached_property
    def _name_pattern(self) -> re.Pattern[str] | None:
        if not self.codes.names:
            return None
        alternatives = "|".join(re.escape(n) for n in sorted(self.codes.names, key=len, reverse=True))
        return re.compile(rf"(?<![a-z0-9])(?:{alternatives})(?![a-z0-9])", re.IGNORECASE)

    @cached_property
    def _icd10_matched(self) -> dict[str, bool]:
        return {}  # code as recorded -> matches; cleared at _MATCH_MEMO_LIMIT entries

    def matches_icd10(self, code: str | None) -> bool:
        if not code:
            return False
        try:
            return self._icd10_matched[code]
        except KeyError:
            if len(self._icd10_matched) >= _MATCH_MEMO_LIMIT:
                self._icd10_matched.clear()
            matched = self._icd10_matched[code] = self._match_icd10(normalize_icd10(code))
            return matched

    def _match_icd10(self, code: str) -> bool:
        if code in self._icd10_exact or code.startswith(self._icd10_prefixes):
            return True
        category = code[:3]
        return any(low <= category <= high for low, high in self._icd10_ranges)

    @cached_property
    def _snomed(self) -> frozenset[str]:
        return frozenset(self.codes.snomed)

    @cached_property
    def _rxnorm(self) -> frozenset[str]:
        return frozenset(self.codes.rxnorm)

    @cached_property
    def _kinds(self) -> frozenset[str]:
        return frozenset(self.codes.kinds)

    def matches_snomed(self, code: str | None) -> bool:
        return code in self._snomed

    def matches_atc(self, code: str | None) -> bool:
        return code is not None and code.upper().startswith(self.codes.atc) if self.codes.atc else False

    def matches_rxnorm(self, code: str | None) -> bool:
        return code in self._rxnorm

    def matches_name(self, texts: Iterable[str]) -> str | None:
        """The first list name found as a whole word in any of ``texts``."""
        if self._name_pattern is None:
            return None
        for text in texts:
            found = self._name_pattern.search(text)
            if found:
                return found.group(0).lower()
        return None

    def matches_kind(self, kind: str | None) -> bool:
        return kind in self._kinds


class CodeLists(dict[str, CodeList]):
    """The shared code lists by id, and which of them a record's codes belong to.

    A patient's record is matched once against every list (and the answer remembered per distinct
    code), rather than once per question a trial asks about it.
    """

    def __init__(self, *args: object, **kwargs: CodeList) -> None:
        super().__init__(*args, **kwargs)
        self._matched: dict[tuple, dict[str, str | bool]] = {}

    def __reduce__(self) -> tuple:  # pickled without the memo
        return (CodeLists, (dict(self),))

    def _lists(self, key: tuple, match: Callable[[CodeList], str | bool | None]) -> dict[str, str | bool]:
        found = self._matched.get(key)
        if found is None:
            if len(self._matched) >= _MATCH_MEMO_LIMIT:
                self._matched.clear()
            found = self._matched[key] = {list_id: hit for list_id, codelist in self.items() if (hit := match(codelist))}
        return found

    def for_condition(self, icd10: str | None, snomed: str | None) -> dict[str, str | bool]:
        """The lists a condition's ICD-10 or SNOMED CT code belongs to."""
        return self._lists(("condition", icd10, snomed), lambda cl: cl.matches_icd10(icd10) or cl.matches_snomed(snomed))

    def for_medication(self, names: tuple[str, ...], atc: str | None, rxnorm: str | None) -> dict[str, str | bool]:
        """The lists a medication belongs to: each with the list name found in ``names`` (its name
        and ingredients), or ``True`` when only its ATC or RxNorm code matched."""
        return self._lists(("medication", names, atc, rxnorm),
                           lambda cl: cl.matches_name(names) or cl.matches_atc(atc) or cl.matches_rxnorm(rxnorm))

    def for_procedure(self, kind: str | None, system: str | None, code: str | None) -> dict[str, str | bool]:
        """The lists a procedure's kind, or its SNOMED CT or ICD-10 code, belongs to."""
        def match(cl: CodeList) -> bool:
            return cl.matches_kind(kind) or (code is not None and (
                (system == "snomed" and cl.matches_snomed(code)) or (system == "icd10" and cl.matches_icd10(code))))

        return self._lists(("procedure", kind, system, code), match)
