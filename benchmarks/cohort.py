"""Cohort pre-screening side by side: this project's engines, DuckDB SQL and hand-written numpy.

    python benchmarks/cohort.py [--sizes 100000 1000000] [--chunk-size 250000] [--sample 2000]

For each size a seeded synthetic flat cohort (screening/cohort/flat.py columns; nothing large is
committed) is written to Parquet, then each engine runs in a fresh subprocess, so the peak
resident memory (``resource.getrusage``) is that engine's alone, on the seed trial NCT04357600
(11 criteria, full per-criterion outcomes):

- ``vectorized``: ``screen_cohort(read_cohort(parquet, chunk_size), ...)`` written with
  ``ResultWriter`` to Parquet: Parquet in, written results out (the issue's 1M-in-5-s target);
- ``vectorized-mem``: the vectorized evaluator from prepared inputs, to compare with numpy like for
  like: the Parquet file read and its cells parsed to typed arrays before timing (dates to day
  numbers, values to canonical units, list cells to codes: ``read_chunk``), then timed, per chunk,
  everything a result frame holds (facts and scores, outcome matrix, verdict, deciding criteria,
  unknown and missing items as texts), not written;
- ``explain``: ``screen(profile, rules, ...)`` one patient at a time, explanations included, on the
  first ``--sample`` rows (profiles parsed before timing);
- ``durable``: ``DurableEngine.outcomes`` (one document asserted per patient, outcomes only) on
  the same sample;
- ``duckdb``: the 11 criteria as one SQL query over the Parquet file (SQL NULL is unknown; SQL's
  AND/OR are Kleene's; list cells are matched against the code lists once per distinct cell and
  joined back, as the project does), outcomes and verdict written in input order to Parquet with
  ``COPY``, on DuckDB's default threads (all cores); skipped when duckdb is not installed
  (``pip install -e .[bench]``);
- ``numpy``: the 11 criteria by hand on numpy arrays prepared before timing (see ``prepare``).

Every engine's outcome matrix (patients x criteria) is checked against the vectorized output
(the sampled engines against the matching rows); the script exits 1 on a difference, naming the
first differing patient and criterion. The SQL and numpy versions restate the trial's rules by
hand (:func:`duckdb_sql`, :func:`numpy_outcomes`); where they lean on what the synthetic cohort
can contain, it is said there.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2026, 11, 22)
TRIAL = "NCT04357600"
CRITERIA = ("I1", "I2", "I3", "I4", "E1", "E2", "E3", "E4", "E5", "E6", "E7")
OUTCOMES = ("met", "not_met", "unknown", "not_applicable")  # matrix codes 0..3
VERDICTS = ("eligible", "ineligible", "undetermined")
ENGINES = ("vectorized", "vectorized-2p", "vectorized-mem", "explain", "durable", "duckdb", "numpy")  # -2p: two worker processes
SAMPLED = ("explain", "durable")


def synthetic_flat(n: int, seed: int = 42) -> pd.DataFrame:
    """A flat cohort (screening/cohort/flat.py columns) with realistic values and missingness."""
    rng = np.random.default_rng(seed)

    def days(low: int, high: int) -> np.ndarray:  # ISO dates low..high-1 days before AS_OF
        iso = np.array([(AS_OF - dt.timedelta(days=d)).isoformat() for d in range(low, high)])
        return iso[rng.integers(low, high, n) - low]

    maybe = lambda values, p: np.where(rng.random(n) < p, None, values)  # noqa: E731
    si = rng.random(n) < 0.4
    bilirubin = np.round(rng.lognormal(0.6, 0.5, n), 2)
    albumin = np.round(rng.normal(3.2, 0.5, n), 1)
    conditions = rng.choice(["B18.1;K74.6", "B18.1;K74.6;E11.9", "B18.1;K74.6;C22.0", "B18.1;K74.6;B18.2", "K74.6", "none"], n,
                            p=[0.6, 0.12, 0.06, 0.04, 0.08, 0.1])
    births = np.array([(dt.date(1950, 1, 1) + dt.timedelta(days=d)).isoformat() for d in range(60 * 365)])
    return pd.DataFrame({
        "id": [f"C{i}" for i in range(n)],
        "birth_date": births[rng.integers(0, 60 * 365, n)],
        "sex": rng.choice(["male", "female"], n, p=[0.7, 0.3]),
        "consent": maybe(rng.choice(["consented", "not_asked", "refused"], n, p=[0.8, 0.15, 0.05]), 0.05),
        "childbearing_potential": rng.choice(["true", "false"], n),
        "lactating": rng.choice(["false", "true"], n, p=[0.95, 0.05]),
        "conditions": maybe(conditions, 0.05),
        "medications": maybe(rng.choice(["Baraclude 0.5 mg", "Vemlidy 25 mg", "entecavir 0.5 mg", "metformin 500 mg", "none"], n), 0.05),
        "procedures": maybe(rng.choice(["none", "liver_transplant", "none;"], n, p=[0.9, 0.03, 0.07]), 0.05),
        "bilirubin": np.where(si, np.round(bilirubin * 17.1, 1), bilirubin),
        "bilirubin_unit": np.where(si, "umol/L", "mg/dL"),
        "bilirubin_date": days(0, 120),
        "albumin": np.where(si, np.round(albumin * 10), albumin),
        "albumin_unit": np.where(si, "g/L", "g/dL"),
        "albumin_date": days(0, 120),
        "inr": maybe(np.round(rng.normal(1.5, 0.35, n).clip(0.8), 2), 0.1),
        "inr_unit": "1",
        "inr_date": days(0, 120),
        "hcg": maybe(rng.choice(["negative", "positive"], n, p=[0.97, 0.03]), 0.5),
        "hcg_date": days(0, 40),
        "ascites_grade": maybe(rng.integers(0, 4, n), 0.1),
        "ascites_grade_date": days(0, 100),
        "encephalopathy_grade": maybe(rng.integers(0, 3, n), 0.1),
        "encephalopathy_grade_date": days(0, 100),
        "ultrasound_findings": maybe(rng.choice(["cirrhosis;splenomegaly", "cirrhosis", "steatosis", "cirrhosis;ascites"], n), 0.1),
        "ultrasound_date": days(0, 250),
    }).astype(str).replace({"None": "", "nan": ""})


# -- the trial restated by hand (rules/NCT04357600.yaml) ----------------------------------------
# What the SQL and numpy versions need to know of the rules, the code lists and the fact resolver.
# General over flat tables (any values, missing cells, window edges, dotted or lower-case ICD-10,
# ATC codes, an ``hbsag`` column), but they rely on what a flat row can hold: one result per lab
# (no same-day conflicts to span), one ultrasound as the only imaging, conditions active on the
# screening date without status or dates (so ``active`` and ``ever`` agree), medications without
# status or dates, no prothrombin time. Censored results (``<lab>_comparator``) are refused, and
# values the project turns into an ``error`` row (negative labs, malformed codes) are not all
# rechecked. Code lists are read from rules/codelists; the trial's structure is written out.


def months_back(as_of: dt.date, months: int) -> dt.date:
    """First day of a calendar look-back window (screening/rules/model.py Window.start)."""
    year, month = divmod(as_of.year * 12 + as_of.month - 1 - months, 12)
    return dt.date(year, month + 1, min(as_of.day, calendar.monthrange(year, month + 1)[1]))


LAB_START = AS_OF - dt.timedelta(days=90)  # defaults.lab_within / assessment_within (Child-Pugh)
IMAGING_START = months_back(AS_OF, 6)  # I3, E2
HCG_START = AS_OF - dt.timedelta(days=30)  # E4
HBSAG_START = months_back(AS_OF, 12)  # I4

# Units the bench data uses (plus each analyte's canonical unit, the default for an empty cell);
# anything else is refused rather than guessed. Bilirubin 1 mg/dL = 17.1 umol/L
# (screening/clinical/analytes.py); converted values are rounded to 12 significant digits.
UNITS = {"bilirubin": {"mg/dL": 1.0, "umol/L": 1 / 17.1}, "albumin": {"g/dL": 1.0, "g/L": 0.1}, "inr": {"1": 1.0}}
POSITIVE, NEGATIVE = ("positive", "detected", "reactive"), ("negative", "not_detected", "nonreactive")
TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes"), ("false", "0", "no")
ATC = re.compile(r"^[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}$")

# code list -> bit, for the numpy flags; the same lists name the SQL predicates
CONDITION_LISTS = ("hepatitis_b", "malignant_neoplasm", "hepatitis_c", "hiv", "diabetes_mellitus", "severe_heart_disease",
                   "kidney_disease", "respiratory_disease", "alcohol_dependence", "nash", "transplant_status")
PROCEDURE_LISTS = ("organ_transplant_procedure", "stem_cell_therapy")


def codelists() -> dict:
    import yaml

    return {p.stem: yaml.safe_load(p.read_text(encoding="utf-8"))["codes"] for p in (ROOT / "rules" / "codelists").glob("*.yaml")}


def refuse_censored(columns: set[str]) -> None:
    censored = sorted(c for c in columns if c.endswith("_comparator"))
    if censored:
        raise SystemExit(f"censored results ({', '.join(censored)}) are not restated in SQL/numpy")


def icd10_matches(code: str, entries: list[str]) -> bool:
    """Prefix (descendants), ``=`` exact or ``A00-B99`` category-range match, dots ignored."""
    code = code.upper().replace(".", "").strip()
    for entry in entries:
        if entry.startswith("="):
            if code == entry[1:].replace(".", ""):
                return True
        elif "-" in entry:
            low, high = entry.split("-")
            if low <= code[:3] <= high:
                return True
        elif code.startswith(entry.replace(".", "")):
            return True
    return False


def name_pattern(names: list[str]) -> str:
    """Whole-word, case-insensitive alternatives, longest first (RE2 and Python re alike)."""
    escaped = (re.sub(r"([.^$*+?()\[\]{}|\\-])", r"\\\1", n.lower()) for n in sorted(names, key=len, reverse=True))
    return rf"(?i)(^|[^a-z0-9])({'|'.join(escaped)})([^a-z0-9]|$)"


def medication_matches(item: str, codes: dict) -> bool:
    if re.search(name_pattern(codes.get("names", [])), item):
        return True
    return bool(ATC.match(item)) and item.upper().startswith(tuple(codes.get("atc", ())))


def items(cell: str) -> list[str] | None:
    """A ``;`` list cell: None not reviewed (empty), [] reviewed and empty (``none``)."""
    if not cell.strip():
        return None
    if cell.strip().lower() == "none":
        return []
    return [item.strip() for item in cell.split(";") if item.strip()]


# -- DuckDB ------------------------------------------------------------------------------------


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def duckdb_sql(parquet: str, columns: set[str], lists: dict) -> str:
    """One SELECT over the flat Parquet file: per patient, the 11 outcome strings and the verdict."""
    refuse_censored(columns)
    as_of = f"DATE {_q(AS_OF.isoformat())}"

    def col(name: str) -> str:
        return f'trim(coalesce("{name}", \'\'))' if name in columns else "''"

    def day(name: str) -> str:
        return f"CAST(NULLIF({col(name)}, '') AS DATE)"

    def within(name: str, start: dt.date) -> str:
        return f"coalesce({day(name)} BETWEEN DATE {_q(start.isoformat())} AND {as_of}, false)"

    def lab(name: str) -> str:
        unit = col(f"{name}_unit")
        factor = " ".join(f"WHEN {_q(u)} THEN {f!r}" for u, f in UNITS[name].items())
        canonical = next(u for u, f in UNITS[name].items() if f == 1.0)
        x = (f"CAST(NULLIF({col(name)}, '') AS DOUBLE) * CASE CASE {unit} WHEN '' THEN {_q(canonical)} ELSE {unit} END {factor} "
             f"ELSE error('unknown {name} unit ' || {unit}) END")
        return f"CASE WHEN {within(f'{name}_date', LAB_START)} THEN {x} END"

    def round12(x: str) -> str:  # the resolver rounds converted values to 12 significant digits
        return f"CASE WHEN {x} = 0 THEN 0 ELSE round({x}, (11 - floor(log10(abs({x}))))::INTEGER) END"

    def grade(name: str, top: int) -> str:
        g = f"CAST(NULLIF({col(name)}, '') AS INTEGER)"
        return (f"CASE WHEN {g} NOT BETWEEN 0 AND {top} THEN error('{name} out of range') "
                f"WHEN {within(f'{name}_date', LAB_START)} THEN {g} END")

    def listed(name: str, normalize: str = "trim(c)", raw: bool = False) -> str:
        cell = name if raw else col(name)
        return (f"CASE WHEN {cell} = '' THEN NULL WHEN lower({cell}) = 'none' THEN []::VARCHAR[] "
                f"ELSE list_filter(list_transform(string_split({cell}, ';'), lambda c: {normalize}), lambda c: c <> '') END")

    # list cells are parsed once per distinct cell (as the project does), then joined back
    flags: dict[str, dict[str, str]] = {"conditions": {}, "medications": {}, "procedures": {}, "ultrasound_findings": {}}
    parsed = {"conditions": ("cond", "upper(replace(trim(c), '.', ''))"), "medications": ("med", "trim(c)"),
              "procedures": ("proc", "trim(c)"), "ultrasound_findings": ("findings", "trim(c)")}

    def distinct_flag(column: str, name: str, predicate: str) -> str:
        flags[column][name] = predicate
        return name

    def any_item(values: str, predicate: str) -> str:
        return f"(len(list_filter({values}, lambda c: {predicate})) > 0)"

    def icd10(codelist: str) -> str:
        parts = []
        for entry in lists[codelist].get("icd10", []):
            if entry.startswith("="):
                parts.append(f"c = {_q(entry[1:].replace('.', ''))}")
            elif "-" in entry:
                low, high = entry.split("-")
                parts.append(f"substr(c, 1, 3) BETWEEN {_q(low)} AND {_q(high)}")
            else:
                parts.append(f"starts_with(c, {_q(entry.replace('.', ''))})")
        return distinct_flag("conditions", f"c_{codelist}", any_item("cond", " OR ".join(parts)))

    def medication(codelist: str) -> str:
        codes = lists[codelist]
        atc = " OR ".join(f"starts_with(upper(c), {_q(a)})" for a in codes.get("atc", [])) or "false"
        return distinct_flag("medications", f"m_{codelist}", any_item("med", f"regexp_matches(c, {_q(name_pattern(codes['names']))}) OR "
                                                                              f"(regexp_matches(c, {_q(ATC.pattern)}) AND ({atc}))"))

    def procedure(codelist: str) -> str:
        return distinct_flag("procedures", f"p_{codelist}",
                             any_item("proc", "list_contains([" + ", ".join(_q(k) for k in lists[codelist]["kinds"]) + "], c)"))

    def qualitative(name: str, start: dt.date) -> str:
        r = f"lower({col(name)})"
        return (f"CASE WHEN {col(name)} = '' OR NOT {within(f'{name}_date', start)} THEN NULL "
                f"WHEN {r} IN ({', '.join(map(_q, POSITIVE))}) THEN true WHEN {r} IN ({', '.join(map(_q, NEGATIVE))}) THEN false "
                f"WHEN {r} = 'indeterminate' THEN NULL ELSE error('bad {name} result') END")

    def boolean(name: str) -> str:
        v = f"lower({col(name)})"
        return (f"CASE WHEN {v} = '' THEN NULL WHEN {v} IN ({', '.join(map(_q, TRUE_WORDS))}) THEN true "
                f"WHEN {v} IN ({', '.join(map(_q, FALSE_WORDS))}) THEN false ELSE error('bad {name}') END")

    def points(x: str, low: float, high: float, falling: bool = False) -> tuple[str, str]:
        p = (f"CASE WHEN {x} IS NULL THEN NULL WHEN {x} > {high} THEN 1 WHEN {x} >= {low} THEN 2 ELSE 3 END" if falling
             else f"CASE WHEN {x} IS NULL THEN NULL WHEN {x} < {low} THEN 1 WHEN {x} <= {high} THEN 2 ELSE 3 END")
        return f"coalesce({p}, 1)", f"coalesce({p}, 3)"

    def table(x: str, values: tuple[int, ...]) -> tuple[str, str]:
        p = f"[{', '.join(map(str, values))}][{x} + 1]"
        return f"coalesce({p}, 1)", f"coalesce({p}, 3)"

    def outcome(x: str) -> str:
        return f"CASE WHEN {x} THEN 'met' WHEN NOT ({x}) THEN 'not_met' ELSE 'unknown' END"

    cp = [points("bili", 2.0, 3.0), points("alb", 2.8, 3.5, falling=True), points("inr", 1.7, 2.3),
          table("ascites", (1, 2, 3, 3)), table("enceph", (1, 2, 2, 3, 3))]
    born = day("birth_date")
    age = (f"{AS_OF.year} - year({born}) - CASE WHEN month({born}) > {AS_OF.month} OR "
           f"(month({born}) = {AS_OF.month} AND day({born}) > {AS_OF.day}) THEN 1 ELSE 0 END")
    sex = f"NULLIF({col('sex')}, '')"
    outcomes = {
        "I1": outcome("adult"),
        "I2": "CASE WHEN cp_lo >= 7 AND cp_hi <= 9 THEN 'met' WHEN cp_hi < 7 OR cp_lo > 9 THEN 'not_met' ELSE 'unknown' END",
        "I3": outcome(f"CASE WHEN us_in THEN {distinct_flag('ultrasound_findings', 'f_cirrhosis', 'list_contains(findings, ' + _q('cirrhosis') + ')')} END"),
        "I4": outcome(f"({icd10('hepatitis_b')} OR hbsag) AND {medication('hbv_antivirals')}"),
        "E1": outcome("refused"),
        "E2": outcome(f"{icd10('malignant_neoplasm')} OR CASE WHEN us_in THEN "
                      f"{distinct_flag('ultrasound_findings', 'f_hcc', 'list_contains(findings, ' + _q('hepatocellular_carcinoma') + ')')} END"),
        "E3": outcome(f"{icd10('hepatitis_c')} OR {icd10('hiv')}"),
        # applies when female and of child-bearing potential; unknown applicability passes only not_met
        "E4": f"CASE WHEN NOT applies THEN 'not_applicable' WHEN applies THEN {outcome('pregnant_or_lactating')} "
              f"WHEN NOT pregnant_or_lactating THEN 'not_met' ELSE 'unknown' END",
        "E5": outcome(" OR ".join(icd10(c) for c in ("diabetes_mellitus", "severe_heart_disease", "kidney_disease", "respiratory_disease"))),
        "E6": outcome(f"{icd10('alcohol_dependence')} OR {icd10('nash')}"),
        "E7": outcome(f"{procedure('organ_transplant_procedure')} OR {procedure('stem_cell_therapy')} OR {icd10('transplant_status')}"),
    }
    failing = " OR ".join(f"{c} = '{'not_met' if c.startswith('I') else 'met'}'" for c in CRITERIA)
    unknown = " OR ".join(f"{c} = 'unknown'" for c in CRITERIA)
    distinct = ",\n".join(
        f"d_{column} AS (SELECT k, {', '.join(f'{sql} AS {name}' for name, sql in names.items())} FROM "
        f"(SELECT k, {listed('k', parsed[column][1], raw=True)} AS {parsed[column][0]} FROM (SELECT DISTINCT {col(column)} AS k FROM src)))"
        for column, names in flags.items())
    joins = " ".join(f"LEFT JOIN d_{column} ON {col(column)} = d_{column}.k" for column in flags)
    return f"""
WITH src AS (SELECT * FROM read_parquet({_q(parquet)}, file_row_number = true)),
{distinct},
facts AS (
  SELECT *,
    {' + '.join(lo for lo, _ in cp)} AS cp_lo,
    {' + '.join(hi for _, hi in cp)} AS cp_hi
  FROM (
    SELECT * REPLACE ({round12('bili')} AS bili, {round12('alb')} AS alb, {round12('inr')} AS inr)
  FROM (
    SELECT id, file_row_number, {', '.join(name for names in flags.values() for name in names)},
      CASE WHEN {born} > {as_of} THEN error('birth date after the screening date') ELSE ({age}) BETWEEN 18 AND 65 END AS adult,
      NULLIF({col('consent')}, '') = 'refused' AS refused,
      {lab('bilirubin')} AS bili, {lab('albumin')} AS alb, {lab('inr')} AS inr,
      {grade('ascites_grade', 3)} AS ascites, {grade('encephalopathy_grade', 4)} AS enceph,
      {within('ultrasound_date', IMAGING_START)} AS us_in,
      {qualitative('hbsag', HBSAG_START)} AS hbsag,
      {sex} = 'female' AND {boolean('childbearing_potential')} AS applies,
      {qualitative('hcg', HCG_START)} OR {boolean('lactating')} AS pregnant_or_lactating
    FROM src {joins}
  ))
), outcomes AS (
  SELECT id, file_row_number, {', '.join(f'{sql} AS {c}' for c, sql in outcomes.items())} FROM facts
)
SELECT * EXCLUDE (file_row_number), CASE WHEN {failing} THEN 'ineligible' WHEN {unknown} THEN 'undetermined' ELSE 'eligible' END AS verdict
FROM outcomes ORDER BY file_row_number
"""


# -- numpy -------------------------------------------------------------------------------------


def _days(d: dt.date) -> int:
    return (d - dt.date(1970, 1, 1)).days


def prepare(frame: pd.DataFrame, lists: dict) -> dict[str, np.ndarray]:
    """Typed arrays from the flat table's strings (untimed): dates as day numbers (missing: a
    sentinel outside every window), labs as numbers in the canonical unit, categories and
    booleans as small integers (-1 missing), list cells as code-list bit flags (-1 not reviewed).
    Each column is factorized and only its distinct values are parsed."""
    refuse_censored(set(frame.columns))
    def distinct(name: str, parse, dtype) -> np.ndarray:
        codes, uniques = pd.factorize(frame[name] if name in frame else pd.Series([""] * len(frame)))
        return np.array([parse(str(u).strip()) for u in uniques] + [parse("")], dtype=dtype)[codes]  # code -1: null

    def day(v: str) -> int:
        return _days(dt.date.fromisoformat(v)) if v else -(10 ** 9)

    def number(v: str) -> float:
        return float(v) if v else np.nan

    def choice(values: tuple[str, ...]):
        return lambda v: values.index(v) if v else -1

    def boolean(v: str) -> int:
        v = v.lower()
        if not v:
            return -1
        if v not in TRUE_WORDS + FALSE_WORDS:
            raise ValueError(f"not a boolean: {v!r}")
        return int(v in TRUE_WORDS)

    def qualitative(v: str) -> int:  # 1 positive, 0 negative, 2 inconclusive, -1 none
        v = v.lower()
        if v and v not in POSITIVE + NEGATIVE + ("indeterminate",):
            raise ValueError(f"not a qualitative result: {v!r}")
        return -1 if not v else 1 if v in POSITIVE else 0 if v in NEGATIVE else 2

    def findings(v: str) -> int:  # bit 0 cirrhosis, bit 1 hepatocellular carcinoma; -1 not coded
        found = items(v)
        return -1 if found is None else int("cirrhosis" in found) | int("hepatocellular_carcinoma" in found) << 1

    def flags(match, names: tuple[str, ...]):
        def parse(v: str) -> int:
            found = items(v)
            return -1 if found is None else sum(1 << i for i, c in enumerate(names) if any(match(item, lists[c]) for item in found))
        return parse

    def round12(x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            digits = 11 - np.floor(np.log10(np.abs(np.where(x == 0, 1, x))))
            scale = 10.0 ** np.nan_to_num(digits)
        return np.round(x * scale) / scale

    out: dict[str, np.ndarray] = {}
    birth = distinct("birth_date", lambda v: int(dt.date.fromisoformat(v).strftime("%Y%m%d")) if v else -1, np.int64)
    out["birth_year"], out["birth_md"], out["birth_known"] = birth // 10_000, birth % 10_000, birth >= 0
    out["sex"] = distinct("sex", choice(("female", "male", "other")), np.int8)
    out["consent"] = distinct("consent", choice(("not_asked", "consented", "refused")), np.int8)
    for name in ("childbearing_potential", "lactating"):
        out[name] = distinct(name, boolean, np.int8)
    for name in UNITS:
        factor = distinct(f"{name}_unit", lambda v, name=name: UNITS[name][v or next(u for u, f in UNITS[name].items() if f == 1.0)], float)
        out[name] = round12(distinct(name, number, float) * factor)
    for name, top in (("ascites_grade", 3), ("encephalopathy_grade", 4)):
        grade = distinct(name, number, float)
        given = grade[~np.isnan(grade)]
        if np.any((given < 0) | (given > top) | (given != np.round(given))):
            raise ValueError(f"{name} out of range")
        out[name] = grade
    for name in ("hcg", "hbsag"):
        out[name] = distinct(name, qualitative, np.int8)
    for name in ("bilirubin", "albumin", "inr", "ascites_grade", "encephalopathy_grade", "hcg", "hbsag", "ultrasound"):
        out[f"{name}_date"] = distinct(f"{name}_date", day, np.int64)
    out["conditions"] = distinct("conditions", flags(lambda item, codes: icd10_matches(item, codes.get("icd10", [])), CONDITION_LISTS), np.int32)
    out["medications"] = distinct("medications", flags(medication_matches, ("hbv_antivirals",)), np.int32)
    out["procedures"] = distinct("procedures", flags(lambda item, codes: item in codes["kinds"], PROCEDURE_LISTS), np.int32)
    out["findings"] = distinct("ultrasound_findings", findings, np.int32)
    return out


def numpy_outcomes(a: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(outcome codes, patients x criteria; verdict codes) from :func:`prepare`'s arrays.
    A truth value is a pair of masks (known true, known false); neither is unknown."""
    as_of = _days(AS_OF)

    def within(name: str, start: dt.date) -> np.ndarray:
        d = a[f"{name}_date"]
        return (d >= _days(start)) & (d <= as_of)

    def has(column: str, names: tuple[str, ...], codelist: str):
        f = a[column]
        hit = (f >= 0) & (f & (1 << names.index(codelist)) != 0)
        return hit, (f >= 0) & ~hit

    def and_(*xs):
        return np.logical_and.reduce([t for t, _ in xs]), np.logical_or.reduce([f for _, f in xs])

    def or_(*xs):
        return np.logical_or.reduce([t for t, _ in xs]), np.logical_and.reduce([f for _, f in xs])

    def known(mask: np.ndarray, value: np.ndarray):
        return mask & value, mask & ~value

    def cond(name: str):
        return has("conditions", CONDITION_LISTS, name)

    def qualitative(name: str, start: dt.date):
        v, inside = a[name], within(name, start)
        return inside & (v == 1), inside & (v == 0)

    def code(truth) -> np.ndarray:
        t, f = truth
        return np.where(t, 0, np.where(f, 1, 2)).astype(np.uint8)

    def points(x: np.ndarray, inside: np.ndarray, p: np.ndarray):
        ok = inside & ~np.isnan(x)
        return np.where(ok, p, 1), np.where(ok, p, 3)

    age = AS_OF.year - a["birth_year"] - (AS_OF.month * 100 + AS_OF.day < a["birth_md"])
    lab_in = {n: within(n, LAB_START) for n in ("bilirubin", "albumin", "inr", "ascites_grade", "encephalopathy_grade")}
    b, al, inr = a["bilirubin"], a["albumin"], a["inr"]
    asc = np.nan_to_num(a["ascites_grade"], nan=0).astype(np.int64)
    enc = np.nan_to_num(a["encephalopathy_grade"], nan=0).astype(np.int64)
    parts = [
        points(b, lab_in["bilirubin"], 1 + (b >= 2.0) + (b > 3.0)),
        points(al, lab_in["albumin"], 1 + (al <= 3.5) + (al < 2.8)),
        points(inr, lab_in["inr"], 1 + (inr >= 1.7) + (inr > 2.3)),
        points(a["ascites_grade"], lab_in["ascites_grade"], np.array([1, 2, 3, 3])[asc]),
        points(a["encephalopathy_grade"], lab_in["encephalopathy_grade"], np.array([1, 2, 2, 3, 3])[enc]),
    ]
    lo, hi = sum(p[0] for p in parts), sum(p[1] for p in parts)
    findings, us_in = a["findings"], within("ultrasound", IMAGING_START)
    coded = us_in & (findings >= 0)
    imaging = lambda bit: (coded & (findings & bit != 0), coded & (findings & bit == 0))  # noqa: E731
    bool_fact = lambda v: (v == 1, v == 0)  # noqa: E731
    sex_known = a["sex"] >= 0
    applies = and_(known(sex_known, a["sex"] == 0), bool_fact(a["childbearing_potential"]))
    rule = or_(qualitative("hcg", HCG_START), bool_fact(a["lactating"]))
    e4 = np.where(applies[1], 3, np.where(applies[0], code(rule), np.where(rule[1], 1, 2))).astype(np.uint8)
    matrix = np.stack([
        code(known(a["birth_known"], (age >= 18) & (age <= 65))),
        code(((lo >= 7) & (hi <= 9), (hi < 7) | (lo > 9))),
        code(imaging(1)),
        code(and_(or_(cond("hepatitis_b"), qualitative("hbsag", HBSAG_START)), has("medications", ("hbv_antivirals",), "hbv_antivirals"))),
        code(known(a["consent"] >= 0, a["consent"] == 2)),
        code(or_(cond("malignant_neoplasm"), imaging(2))),
        code(or_(cond("hepatitis_c"), cond("hiv"))),
        e4,
        code(or_(cond("diabetes_mellitus"), cond("severe_heart_disease"), cond("kidney_disease"), cond("respiratory_disease"))),
        code(or_(cond("alcohol_dependence"), cond("nash"))),
        code(or_(has("procedures", PROCEDURE_LISTS, "organ_transplant_procedure"), has("procedures", PROCEDURE_LISTS, "stem_cell_therapy"),
                 cond("transplant_status"))),
    ], axis=1)
    inclusion = np.array([c.startswith("I") for c in CRITERIA])
    fails = np.any(np.where(inclusion, matrix == 1, matrix == 0), axis=1)
    verdict = np.where(fails, 1, np.where(np.any(matrix == 2, axis=1), 2, 0)).astype(np.uint8)
    return matrix, verdict


# -- workers (one fresh process per engine and size) ------------------------------------------


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _codes(strings: pd.Series) -> np.ndarray:
    """Outcome codes from a ``criteria`` column ("I1=met;I2=unknown;..."), per distinct value."""
    codes, uniques = pd.factorize(strings)
    parsed = []
    for text in uniques:
        pairs = dict(part.split("=") for part in str(text).split(";")) if text else {}
        parsed.append([OUTCOMES.index(pairs[c]) if c in pairs else 255 for c in CRITERIA])
    return np.array(parsed, dtype=np.uint8).reshape(-1, len(CRITERIA))[codes]


def _sample_profiles(cohort: str, sample: int) -> list:
    from screening import parse_patient
    from screening.cohort.flat import row_to_profile

    batch = next(pq.ParquetFile(cohort).iter_batches(batch_size=sample))
    return [parse_patient(row_to_profile(row)) for row in batch.to_pandas().to_dict("records")]


def worker(engine: str, cohort: str, folder: str, chunk_size: int, sample: int) -> dict:
    """Run one engine; save its matrix (and verdicts) as .npy; return the measurements."""
    result: dict = {"engine": engine}
    if engine == "generate":  # here, not in the parent: a child's ru_maxrss starts at its parent's peak
        started = time.perf_counter()
        synthetic_flat(int(folder)).to_parquet(cohort, index=False)
        return {"seconds": time.perf_counter() - started}
    if engine in ("vectorized", "vectorized-2p"):
        from screening import load_rules
        from screening.cohort import read_cohort, screen_cohort
        from screening.cohort.output import ResultWriter

        rules = load_rules(ROOT / "rules")
        workers = 2 if engine == "vectorized-2p" else 1
        out = Path(folder) / f"{engine}.parquet"
        start = time.perf_counter()
        with ResultWriter(out) as writer:
            for frame in screen_cohort(read_cohort(cohort, chunk_size), rules, AS_OF, [TRIAL], workers=workers):
                writer.write(frame)
        # with workers: this process's peak plus the largest worker's, times the workers (an upper bound)
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 if workers > 1 else 0.0
        result.update(seconds=time.perf_counter() - start, peak=_peak_mib() + workers * children)
        written = pq.read_table(out, columns=["criteria", "verdict"]).to_pandas()
        matrix = _codes(written["criteria"])
        verdict = written["verdict"].map({v: i for i, v in enumerate(VERDICTS)}).fillna(255).to_numpy(np.uint8)
        result["rows"] = len(matrix)
    elif engine == "vectorized-mem":
        from screening import load_rules
        from screening.cohort import read_cohort
        from screening.cohort.run import _TableBatch, _trial_frame  # the steps of screen_cohort, timed apart
        from screening.evaluators.vectorized import compile_trial

        rules = load_rules(ROOT / "rules")
        compiled = compile_trial(rules.trials[TRIAL])
        start = time.perf_counter()
        batches = [_TableBatch(chunk, rules, AS_OF) for chunk in read_cohort(cohort, chunk_size)]
        result["prep_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        frames = [_trial_frame(compiled, batch) for batch in batches]
        result.update(seconds=time.perf_counter() - start, peak=_peak_mib())
        matrix = np.concatenate([_codes(frame["criteria"]) for frame in frames])
        verdict = np.concatenate([frame["verdict"].map({v: i for i, v in enumerate(VERDICTS)}).fillna(255).to_numpy(np.uint8) for frame in frames])
        result["rows"] = len(matrix)
    elif engine in SAMPLED:
        from screening import durable_engine, load_rules, screen

        rules = load_rules(ROOT / "rules")
        profiles = _sample_profiles(cohort, sample)
        if engine == "explain":
            run = lambda p: [c.outcome.value for c in screen(p, rules, as_of=AS_OF, trials=[TRIAL]).results[0].criteria]  # noqa: E731
        else:
            durable = durable_engine(rules)
            run = lambda p: [o.value for o in durable.outcomes(p, AS_OF, TRIAL).values()]  # noqa: E731
        timings, rows = [], []
        start = time.perf_counter()
        for profile in profiles:
            t0 = time.perf_counter()
            rows.append(run(profile))
            timings.append(time.perf_counter() - t0)
        result.update(seconds=time.perf_counter() - start, peak=_peak_mib(), rows=len(rows), median_us=statistics.median(timings) * 1e6)
        criteria = [c.id for c in rules.trials[TRIAL].trial.criteria]
        matrix = np.array([[OUTCOMES.index(r[criteria.index(c)]) for c in CRITERIA] for r in rows], dtype=np.uint8)
        verdict = None
    elif engine == "duckdb":
        import duckdb

        sql = duckdb_sql(cohort, set(pq.read_schema(cohort).names), codelists())
        out = Path(folder) / "duckdb.parquet"
        connection = duckdb.connect()
        result["threads"] = int(connection.sql("SELECT current_setting('threads')").fetchall()[0][0])
        start = time.perf_counter()
        connection.execute(f"COPY ({sql}) TO {_q(str(out))} (FORMAT parquet)")
        result.update(seconds=time.perf_counter() - start, peak=_peak_mib())
        written = pq.read_table(out).to_pandas()
        if not written["id"].equals(pq.read_table(cohort, columns=["id"]).to_pandas()["id"]):
            raise SystemExit("duckdb: rows written out of input order")
        matrix = np.stack([written[c].map({o: i for i, o in enumerate(OUTCOMES)}).to_numpy(np.uint8) for c in CRITERIA], axis=1)
        verdict = written["verdict"].map({v: i for i, v in enumerate(VERDICTS)}).to_numpy(np.uint8)
        result["rows"] = len(matrix)
    elif engine == "numpy":
        start = time.perf_counter()
        schema = pq.read_schema(cohort).names
        arrays = prepare(pq.read_table(cohort, columns=[c for c in schema if c != "id"], read_dictionary=[c for c in schema if c != "id"]).to_pandas(),
                         codelists())
        result["prep_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        matrix, verdict = numpy_outcomes(arrays)
        result.update(seconds=time.perf_counter() - start, peak=_peak_mib(), rows=len(matrix))
    else:
        raise SystemExit(f"unknown engine {engine}")
    np.save(Path(folder) / f"{engine}.npy", matrix)
    if verdict is not None:
        np.save(Path(folder) / f"{engine}-verdict.npy", verdict)
    return result


# -- the table ---------------------------------------------------------------------------------


def first_difference(reference: np.ndarray, matrix: np.ndarray, cohort: str, what: str) -> str | None:
    if matrix.shape != reference[: len(matrix)].shape:
        return f"shape {matrix.shape}, expected {reference[: len(matrix)].shape}"
    rows, columns = np.nonzero(matrix != reference[: len(matrix)])
    if not len(rows):
        return None
    row, column = rows[0], columns[0]
    names = CRITERIA if what == "outcomes" else ("verdict",)
    labels = OUTCOMES if what == "outcomes" else VERDICTS
    label = lambda code: labels[code] if code < len(labels) else "missing"  # noqa: E731
    ref, got = reference[row].reshape(-1)[column], matrix[row].reshape(-1)[column]
    patient = pq.read_table(cohort, columns=["id"]).column("id")[int(row)].as_py()
    return f"{len(set(rows))} patients differ; first {patient} {names[column]}: vectorized {label(ref)}, this engine {label(got)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--chunk-size", type=int, default=250_000, help="rows per chunk of the vectorized path")
    parser.add_argument("--sample", type=int, default=2_000, help="patients screened one at a time (explain, durable)")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--worker", nargs=3, metavar=("ENGINE", "COHORT", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.chunk_size, args.sample)))
        return
    engines = ["vectorized", *(e for e in args.engines if e != "vectorized")]  # the reference for the matrix check
    try:
        import duckdb  # noqa: F401
    except ImportError:
        duckdb = None
    lines, results, failed = [], {}, False

    def run(*argv: str) -> dict:
        done = subprocess.run([sys.executable, __file__, "--worker", *argv, "--chunk-size", str(args.chunk_size), "--sample", str(args.sample)],
                              capture_output=True, text=True)
        if done.returncode:
            print(done.stderr, file=sys.stderr)
            raise SystemExit(f"{argv[0]} at {n:,} patients failed")
        return json.loads(done.stdout.strip().splitlines()[-1])

    print(f"{TRIAL}, screening date {AS_OF}, chunk size {args.chunk_size:,}, sample {args.sample:,}")
    header = f"| {'engine':<14} | {'patients':>27} | {'seconds':>8} | {'patients/s':>11} | {'peak MiB':>8} | matrix identical |"
    print(header + "\n|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    with tempfile.TemporaryDirectory() as folder:
        for n in args.sizes:
            cohort = str(Path(folder) / f"cohort-{n}.parquet")
            lines.append(f"{n:,} patients generated and written to Parquet in {run('generate', cohort, str(n))['seconds']:.0f} s")
            for engine in engines:
                if engine == "duckdb" and duckdb is None:
                    print(f"| {engine:<14} | {n:>27,} | not installed (pip install -e .[bench]) |")
                    continue
                r = run(engine, cohort, folder)
                results[(engine, n)] = r
                reference = np.load(Path(folder) / "vectorized.npy")
                matrix = np.load(Path(folder) / f"{engine}.npy")
                problem = first_difference(reference, matrix, cohort, "outcomes")
                verdict = Path(folder) / f"{engine}-verdict.npy"
                if problem is None and engine != "vectorized" and verdict.exists():
                    problem = first_difference(np.load(Path(folder) / "vectorized-verdict.npy")[:, None], np.load(verdict)[:, None], cohort, "verdict")
                failed |= problem is not None
                patients = f"{r['rows']:,}" if engine not in SAMPLED else f"{r['rows']:,} of {n:,} (sample)"
                print(f"| {engine:<14} | {patients:>27} | {r['seconds']:>8.2f} | {r['rows'] / r['seconds']:>11,.0f} | {r['peak']:>8,.0f} | "
                      f"{'yes' if problem is None else 'NO: ' + problem} |", flush=True)
                if engine in SAMPLED:
                    lines.append(f"{engine} at {n:,}: median {r['median_us']:.0f} µs per patient-trial")
                if engine in ("numpy", "vectorized-mem"):
                    lines.append(f"{engine} at {n:,}: Parquet read + parsing to typed arrays (untimed) {r['prep_seconds']:.2f} s; "
                                 f"with it {r['rows'] / (r['seconds'] + r['prep_seconds']):,.0f} patients/s")
                if engine == "duckdb":
                    lines.append(f"duckdb at {n:,}: {r['threads']} threads")
    lines.append(f"this process's own peak: {_peak_mib():,.0f} MiB (on Linux the floor of its children's ru_maxrss)")
    print()
    print("\n".join(lines))
    print()
    targets(results, args.sizes)
    if failed:
        raise SystemExit("outcome matrices differ (see the table)")


def targets(results: dict, sizes: list[int]) -> None:
    """The issue's targets, MET or NOT MET, at the largest size run (1M for the 1M targets)."""
    def rate(engine: str, n: int) -> float | None:
        r = results.get((engine, n))
        return r["rows"] / r["seconds"] if r else None

    def verdict(ok: bool | None) -> str:
        return "not measured" if ok is None else "MET" if ok else "NOT MET"

    n = max(sizes)
    ran = [e for e in ("vectorized", "vectorized-2p") if rate(e, n)]
    best = max(ran, key=lambda e: rate(e, n)) if ran else "vectorized"  # one process, or two (DuckDB uses every core)
    vec, npy, duck, mem = rate(best, n), rate("numpy", n), rate("duckdb", n), rate("vectorized-mem", n)
    print(f"Targets (issue #4), at {n:,} patients, for {best}:")
    if mem and npy:
        ratio = mem / npy
        print(f"  vectorized / numpy throughput, each from its prepared inputs (vectorized-mem / numpy): {ratio:.3f} "
              f"(target >= 1/3): {verdict(ratio >= 1 / 3)}")
    if vec and npy:
        prep = results[("numpy", n)]
        with_prep = prep["rows"] / (prep["seconds"] + prep["prep_seconds"])
        print(f"    (Parquet to written results / numpy from prepared arrays: {vec / npy:.3f}; "
              f"/ numpy including its Parquet read and parsing: {vec / with_prep:.3f})")
    if vec and duck:
        print(f"  vectorized / DuckDB throughput: {vec / duck:.2f} (target: faster, > 1): {verdict(vec > duck)}")
    one_million = results.get((best, 1_000_000))
    seconds = one_million["seconds"] if one_million else None
    peak = one_million["peak"] if one_million else None
    print(f"  1M patients Parquet to written results: {f'{seconds:.1f} s' if seconds else '-'} (target < 5 s): "
          f"{verdict(None if seconds is None else seconds < 5)}")
    print(f"  peak memory at 1M: {f'{peak:,.0f} MiB' if peak else '-'} (target < 2 GB = 2,048 MiB): "
          f"{verdict(None if peak is None else peak < 2048)}")
    explain = results.get(("explain", n))
    us = explain["median_us"] if explain else None
    print(f"  per-patient path: {f'{us:.0f}' if us else '-'} µs per patient-trial, median (target < 100 µs): "
          f"{verdict(None if us is None else us < 100)}")


if __name__ == "__main__":
    main()
