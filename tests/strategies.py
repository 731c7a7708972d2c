"""Hypothesis strategies: realistic patient profiles (as JSON-ready dicts) near the rules' boundaries,
and the removable data items used by the monotonicity property."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

AS_OF = dt.date(2026, 11, 22)

DAYS_BACK = [0, 1, 7, 29, 30, 31, 89, 90, 91, 183, 184, 200, 365, 366, 800, 3000]

# analyte group -> (LOINC, conventional unit, SI unit, factor SI per conventional, values)
LABS: dict[str, tuple[str, str, str, float, list[float]]] = {
    "bilirubin": ("1975-2", "mg/dL", "umol/L", 17.1, [0.5, 1.0, 1.99, 2.0, 2.01, 2.5, 3.0, 3.01, 4.5, 12.0]),
    "albumin": ("1751-7", "g/dL", "g/L", 10.0, [2.0, 2.79, 2.8, 3.0, 3.5, 3.51, 4.2]),
    "creatinine": ("2160-0", "mg/dL", "umol/L", 88.4, [0.5, 0.9, 1.0, 1.5, 3.0, 4.0, 5.2]),
    "sodium": ("2951-2", "mmol/L", "mEq/L", 1.0, [120.0, 125.0, 130.0, 136.0, 137.0, 142.0]),
    "inr": ("6301-6", "1", "1", 1.0, [0.9, 1.0, 1.2, 1.69, 1.7, 2.0, 2.3, 2.31, 3.1]),
}
SI_LOINC = {"bilirubin": "14631-6", "creatinine": "14682-9"}  # substance-concentration codes

CONDITIONS = ["B18.1", "K74.6", "C22.0", "C50.9", "B18.2", "B20", "E11.9", "N18.4", "I50.9", "J44.9", "F10.2",
              "K75.81", "Z94.4", "I85.0", "R18.8", "K76.82", "I10"]
MEDICATIONS = [
    {"name": "Baraclude 0.5 mg", "atc": "J05AF10"},
    {"name": "Vemlidy 25 mg tablet"},
    {"name": "Truvada", "ingredients": ["emtricitabine", "tenofovir disoproxil fumarate"]},
    {"name": "entecavir 0.5 mg"},
    {"name": "metformin 500 mg", "atc": "A10BA02"},
    {"name": "propranolol 40 mg"},
    {"name": "spironolactone 100 mg"},
]
PROCEDURE_KINDS = ["liver_transplant", "stem_cell_therapy", "haemodialysis", "tips", "paracentesis"]
FINDINGS = ["cirrhosis", "ascites", "splenomegaly", "hepatocellular_carcinoma"]


def _date(days_back: int) -> str:
    return (AS_OF - dt.timedelta(days=days_back)).isoformat()


dates = st.sampled_from(DAYS_BACK + [-1, -30]).map(_date)  # a few after the screening date
past_dates = st.sampled_from(DAYS_BACK).map(_date)
recent_dates = st.sampled_from([d for d in DAYS_BACK if d <= 30]).map(_date)  # inside every look-back window


def _lab(name: str, when: st.SearchStrategy[str] = dates) -> st.SearchStrategy[dict[str, Any]]:
    loinc, unit, _, _, values = LABS[name]
    value = st.one_of(st.sampled_from(values), st.floats(0.3, 15 if name != "sodium" else 160, allow_nan=False).map(lambda v: round(v, 2)))
    return st.fixed_dictionaries(
        {"loinc": st.just(loinc), "value": value, "unit": st.just(unit), "date": when},
        optional={"comparator": st.sampled_from(["<", "<=", ">", ">="])},
    )


pt_lab = st.fixed_dictionaries({
    "loinc": st.just("5902-2"), "value": st.sampled_from([13.0, 15.9, 16.0, 18.0, 18.1, 21.0]), "control": st.just(12.0),
    "unit": st.just("s"), "date": dates,
})
qualitative_lab = st.fixed_dictionaries({
    "loinc": st.sampled_from(["5196-1", "2106-3"]),
    "result": st.sampled_from(["positive", "negative", "detected", "indeterminate"]),
    "date": dates,
})
recent_qualitative_labs = st.tuples(*(st.fixed_dictionaries({
    "loinc": st.just(loinc), "result": st.sampled_from(["positive", "negative"]), "date": recent_dates,
}) for loinc in ("5196-1", "2106-3"))).map(list)


@st.composite
def condition(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"icd10": draw(st.sampled_from(CONDITIONS))}
    if draw(st.booleans()):
        out["onset"] = draw(st.sampled_from([_date(d) for d in (3000, 800, 200, 30)] + [_date(-10)]))
    status = draw(st.sampled_from(["active", "active", "resolved", "remission", "inactive"]))
    out["status"] = status
    if status != "active" and draw(st.booleans()):
        out["resolved"] = _date(draw(st.sampled_from([1, 100, 400, 800])))
        if "onset" in out and out["onset"] > out["resolved"]:
            del out["onset"]
    return out


@st.composite
def medication(draw: st.DrawFn) -> dict[str, Any]:
    out = dict(draw(st.sampled_from(MEDICATIONS)))
    out["start"] = draw(st.sampled_from([_date(d) for d in (3000, 400, 30)] + [_date(-5)]))
    status = draw(st.sampled_from(["active", "active", "stopped", "completed", "on_hold", "intended"]))
    out["status"] = status
    if status in ("stopped", "completed") and draw(st.booleans()):
        end = _date(draw(st.sampled_from([0, 10, 200])))
        if end >= out["start"]:
            out["end"] = end
    return out


@st.composite
def procedure(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": draw(st.sampled_from(PROCEDURE_KINDS))}
    if draw(st.integers(0, 4)):
        out["date"] = draw(dates)
    return out


imaging_study = st.fixed_dictionaries({
    "modality": st.sampled_from(["ultrasound", "ultrasound", "ct", "mri"]),
    "date": st.sampled_from([_date(d) for d in (10, 183, 184, 300)] + [_date(-3)]),
    "findings": st.lists(st.sampled_from(FINDINGS), unique=True, max_size=3),
})
ascites = st.fixed_dictionaries({"name": st.just("ascites_grade"), "grade": st.integers(0, 3), "date": dates})
encephalopathy = st.fixed_dictionaries({"name": st.just("encephalopathy_grade"), "grade": st.integers(0, 4), "date": dates})
assessment = st.one_of(ascites, encephalopathy)
recent_assessments = st.tuples(ascites, encephalopathy, recent_dates).map(lambda t: [{**t[0], "date": t[2]}, {**t[1], "date": t[2]}])
birth_dates = st.one_of(
    st.sampled_from([AS_OF.replace(year=AS_OF.year - y) + dt.timedelta(days=d) for y in (18, 65, 66) for d in (-1, 0, 1)]),
    st.dates(dt.date(1930, 1, 1), dt.date(2010, 12, 31)),
).map(dt.date.isoformat)


@st.composite
def patients(draw: st.DrawFn, complete: bool = False) -> dict[str, Any]:
    """A profile; with ``complete`` every removable item is present (for the monotonicity test).

    One in three is worked up: every field recorded, and every lab, grade and test within the
    shortest look-back window, so that scores such as Child-Pugh are decided, not only unknown (otherwise a full
    recent panel is rare and the criteria on it are almost never met or not met)."""
    worked_up = draw(st.integers(0, 2)) == 0
    maybe = (lambda s: s) if complete or worked_up else (lambda s: st.one_of(st.none(), s))
    labs: list[dict[str, Any]] = []
    for name in LABS:
        labs += draw(st.lists(_lab(name, recent_dates if worked_up else dates), min_size=1 if complete or worked_up else 0, max_size=2))
    labs += draw(st.lists(pt_lab, max_size=1))
    labs += draw(st.lists(qualitative_lab, max_size=2))
    if worked_up:
        labs += draw(recent_qualitative_labs)
    profile = {
        "id": draw(st.from_regex(r"P[0-9]{1,4}", fullmatch=True)),
        "birth_date": draw(maybe(birth_dates)),
        "sex": draw(maybe(st.sampled_from(["female", "male", "other"]))),
        "consent": draw(maybe(st.sampled_from(["not_asked", "consented", "refused"]))),
        "pregnant": draw(maybe(st.booleans())),
        "lactating": draw(maybe(st.booleans())),
        "childbearing_potential": draw(maybe(st.booleans())),
        "conditions": draw(maybe(st.lists(condition(), max_size=4))),
        "medications": draw(maybe(st.lists(medication(), max_size=3))),
        "procedures": draw(maybe(st.lists(procedure(), max_size=3))),
        "observations": labs,
        "assessments": draw(recent_assessments if worked_up else st.lists(assessment, min_size=2 if complete else 0, max_size=3)),
        "imaging": draw(st.lists(imaging_study, min_size=1 if complete else 0, max_size=2)),
    }
    return {k: v for k, v in profile.items() if v is not None}


# Items a partial profile may lack. Removing one never touches data another item depends on:
# a lab group goes whole (INR and prothrombin time are one coagulation item, since Child-Pugh uses
# the second only when the first is absent).
REMOVABLE = [
    "birth_date", "sex", "consent", "pregnant", "lactating", "childbearing_potential",
    "conditions", "medications", "procedures", "imaging", "assessment:ascites_grade", "assessment:encephalopathy_grade",
    "lab:bilirubin", "lab:albumin", "lab:creatinine", "lab:sodium", "lab:coagulation", "lab:5196-1", "lab:2106-3",
]
_GROUP_LOINCS = {
    "bilirubin": {"1975-2", "14631-6"}, "albumin": {"1751-7"}, "creatinine": {"2160-0", "14682-9"}, "sodium": {"2951-2"},
    "coagulation": {"6301-6", "5902-2"}, "5196-1": {"5196-1"}, "2106-3": {"2106-3"},
}


def remove(profile: dict[str, Any], items: list[str]) -> dict[str, Any]:
    partial = dict(profile)
    for item in items:
        if item.startswith("lab:"):
            gone = _GROUP_LOINCS[item[4:]]
            partial["observations"] = [o for o in partial.get("observations", []) if o["loinc"] not in gone]
        elif item.startswith("assessment:"):
            partial["assessments"] = [a for a in partial.get("assessments", []) if a["name"] != item.split(":")[1]]
        elif item == "imaging":
            partial["imaging"] = []
        else:
            partial.pop(item, None)
    return partial


def to_si(profile: dict[str, Any]) -> dict[str, Any]:
    """The same profile with bilirubin, creatinine and albumin reported in SI units."""
    converted = dict(profile)
    observations = []
    for obs in profile.get("observations", []):
        for name, (loinc, unit, si_unit, factor, _) in LABS.items():
            if obs["loinc"] == loinc and obs.get("unit") == unit and unit != si_unit:
                obs = {**obs, "loinc": SI_LOINC.get(name, loinc), "unit": si_unit, "value": obs["value"] * factor}
                break
        observations.append(obs)
    converted["observations"] = observations
    return converted
