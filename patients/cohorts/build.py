"""Rebuild the sample cohorts from the example profiles (deterministic; a test checks they are current):

    python patients/cohorts/build.py

- ``examples.ndjson``: every profile in ``patients/examples/``, one per line;
- ``long/``: the same patients but P12 and P17 (whose histories were not reviewed, which a long
  table cannot say) as long EHR-style tables (CSV), the shape ``screening screen-cohort`` reads
  from a folder (see ``screening/cohort/long.py``).
``flat-sample.csv`` is written by hand (see ``screening/cohort/flat.py`` for its columns).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
COLUMNS = {
    "patients": ["id", "birth_date", "sex", "consent", "pregnant", "lactating", "childbearing_potential"],
    "conditions": ["patient_id", "icd10", "snomed", "display", "onset", "resolved", "status"],
    "observations": ["patient_id", "loinc", "value", "unit", "comparator", "control", "result", "date"],
    "medications": ["patient_id", "name", "atc", "rxnorm", "start", "end", "status"],
    "procedures": ["patient_id", "kind", "system", "code", "date"],
    "assessments": ["patient_id", "name", "grade", "date"],
    "imaging": ["patient_id", "modality", "date", "findings", "report"],
}


def main() -> None:
    profiles = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(EXAMPLES.glob("*.json"))]
    (HERE / "examples.ndjson").write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in profiles), encoding="utf-8")
    rows: dict[str, list[dict]] = {name: [] for name in COLUMNS}
    for profile in profiles:
        rows["patients"].append({k: profile.get(k) for k in COLUMNS["patients"]})
        for table in COLUMNS:
            if table == "patients":
                continue
            for item in profile.get(table) or []:
                item = dict(item, patient_id=profile["id"])
                if table == "imaging" and "findings" in item:
                    item["findings"] = ";".join(item["findings"])
                rows[table].append(item)
    # A history nobody reviewed cannot be told apart from an empty one in a long table, so the
    # examples whose histories were not reviewed (P12, P17) are left out of the long tables' patients.
    unreviewed = {p["id"] for p in profiles if any(p.get(k) is None for k in ("conditions", "medications", "procedures"))}
    folder = HERE / "long"
    folder.mkdir(exist_ok=True)
    for table, columns in COLUMNS.items():
        key = "id" if table == "patients" else "patient_id"
        with (folder / f"{table}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="raise", lineterminator="\n")
            writer.writeheader()
            for row in rows[table]:
                if row[key] not in unreviewed:
                    writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})


if __name__ == "__main__":
    main()
