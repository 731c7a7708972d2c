"""The flat cohort table: one row per patient (CSV or Parquet). Columns (all optional but ``id``):

==========================================  ======================================================
``id``                                      patient id
``birth_date``, ``sex``, ``consent``,       as in the profile (``pregnant``, ``lactating``,
``pregnant``, ..., ``deceased``             ``childbearing_potential`` are true/false;
                                            ``deceased`` true/false or the date of death)
``conditions``                              ICD-10 codes separated by ``;``, active on the
                                            screening date; ``none``: reviewed, none; empty or
                                            absent: not reviewed
``medications``                             current medications separated by ``;``: names, brand
                                            names or ATC codes; same ``none``/empty convention
``procedures``                              procedure kinds separated by ``;`` (undated: "ever");
                                            same ``none``/empty convention
``<lab>``, ``<lab>_unit``, ``<lab>_date``,  latest numeric result of a lab (bilirubin, albumin,
``<lab>_comparator``                        creatinine, sodium, inr, ...), UCUM unit
``hbsag``/``hcg`` + ``_date``               qualitative result (positive, negative, ...)
``ascites_grade``/``encephalopathy_grade``  grade and ``_date``
+ ``_date``
``ultrasound_findings``,                    findings separated by ``;`` (``none``: none seen;
``ultrasound_date``                         empty: not coded)
==========================================  ======================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..clinical.analytes import ANALYTE_BY_LOINC, ANALYTES
from ..patient.io import RECORD_FIELD

NUMERIC_LABS = tuple(a.name for a in ANALYTES.values() if a.unit is not None and a.name != "prothrombin_time")
QUALITATIVE_LABS = tuple(a.name for a in ANALYTES.values() if a.unit is None)
ASSESSMENTS = ("ascites_grade", "encephalopathy_grade")
_ATC = re.compile(r"^[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}$")
_SCALARS = ("birth_date", "sex", "consent", "pregnant", "lactating", "childbearing_potential", "deceased")
# a CSV cell is text, and only an empty one is missing: "None", "NA" or "null" are values (a patient id, a "none")
CSV_OPTIONS: dict[str, Any] = {"dtype": str, "keep_default_na": False, "na_values": [""]}
# a row (or profile dict) the reader could not read, e.g. a CSV line with more fields than the header:
# its cells are empty and this column names the problem, which becomes the row's error
ERROR_MARKER = "__error__"


def _dated(row: dict[str, Any], column: str) -> dict[str, str]:
    """``{"date": the cell as text}``, or nothing when the cell is empty: a value without its date
    is then refused as "date: Field required" (it was the date "None", "input is too short")."""
    value = row.get(column)
    return {"date": str(value)} if _present(value) else {}


def blank(value: Any) -> bool:
    """An empty cell: missing (None, NaN, NA, NaT: an empty Parquet timestamp) or a string of only whitespace."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value):
        return True
    return isinstance(value, str) and not value.strip()


def _present(value: Any) -> bool:
    return not blank(value)


def _items(value: Any) -> list[str] | None:
    """``;``-separated items; ``none`` is reviewed-and-empty, an empty cell not reviewed (CSV
    cannot tell an empty string from a missing value)."""
    if not _present(value):
        return None
    if str(value).strip().lower() == "none":
        return []
    return [item.strip() for item in str(value).split(";") if item.strip()]


def _bool(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    return value


def row_to_profile(row: dict[str, Any]) -> dict[str, Any]:
    """A profile dict (validated later) from one flat row; an error marker for a row the reader
    marked as unreadable."""
    if _present(row.get(ERROR_MARKER)):
        return {ERROR_MARKER: str(row[ERROR_MARKER])}
    profile: dict[str, Any] = {"id": str(row.get("id")) if _present(row.get("id")) else None}
    for name in _SCALARS:
        if _present(row.get(name)):
            value = row[name]
            profile[name] = _bool(value) if name in ("pregnant", "lactating", "childbearing_potential") else str(value)
    conditions = _items(row.get("conditions")) if "conditions" in row else None
    if conditions is not None:
        profile["conditions"] = [{"icd10": code} for code in conditions]
    medications = _items(row.get("medications")) if "medications" in row else None
    if medications is not None:
        profile["medications"] = [{"name": m, "atc": m} if _ATC.match(m) else {"name": m} for m in medications]
    procedures = _items(row.get("procedures")) if "procedures" in row else None
    if procedures is not None:
        profile["procedures"] = [{"kind": kind} for kind in procedures]
    observations = []
    for name in NUMERIC_LABS:
        if _present(row.get(name)):
            unit = row[f"{name}_unit"] if _present(row.get(f"{name}_unit")) else ANALYTES[name].unit
            obs = {"loinc": ANALYTES[name].loinc[0], "value": row[name], "unit": unit,
                   **_dated(row, f"{name}_date")}
            if _present(row.get(f"{name}_comparator")):
                obs["comparator"] = row[f"{name}_comparator"]
            observations.append(obs)
    for name in QUALITATIVE_LABS:
        if _present(row.get(name)):
            observations.append({"loinc": ANALYTES[name].loinc[0], "result": str(row[name]).strip().lower(), **_dated(row, f"{name}_date")})
    profile["observations"] = observations
    profile["assessments"] = [
        {"name": name, "grade": row[name], **_dated(row, f"{name}_date")} for name in ASSESSMENTS if _present(row.get(name))
    ]
    if _present(row.get("ultrasound_date")):
        findings = _items(row.get("ultrasound_findings"))
        study: dict[str, Any] = {"modality": "ultrasound", "date": str(row["ultrasound_date"])}
        if findings is not None:
            study["findings"] = findings
        profile["imaging"] = [study]
    return {k: v for k, v in profile.items() if v is not None}


@dataclass(frozen=True)
class FlatRow:
    """Where the fields of a profile :func:`row_to_profile` made came from: their columns, to name
    one in an error (``observations[0].unit`` of a bilirubin result is ``bilirubin_unit``)."""

    profile: dict[str, Any]

    def locate(self, field: str) -> tuple[None, str]:
        """(no place: a flat row is named by its patient, the column of ``field``)."""
        match = RECORD_FIELD.fullmatch(field)
        if match is None:
            return None, field  # birth_date, sex...: the column of the same name
        table, index, part = match["table"], int(match["index"]), (match["field"] or "").split(".")[0].split("[")[0]
        if table == "observations":
            lab = ANALYTE_BY_LOINC[self.profile["observations"][index]["loinc"]].name
            return None, f"{lab}_{part}" if part in ("unit", "date", "comparator") else lab
        if table == "assessments":
            name = self.profile["assessments"][index]["name"]
            return None, f"{name}_date" if part == "date" else name
        if table == "imaging":
            return None, "ultrasound_findings" if part == "findings" else "ultrasound_date"
        return None, f"{table} (item {index + 1})"  # conditions, medications, procedures: a list cell
