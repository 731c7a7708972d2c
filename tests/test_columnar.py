"""The column-wise reading of flat tables gives the same results as reading each row as a profile.

Generated flat tables mix valid cells, cells the column-wise reading refuses (so the row takes the
per-row path) and cells the profile model refuses (error rows); every output column must be
identical to screening the same rows as profile dicts, for the seed trials and generated rules.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from screening.cohort import screen_cohort
from screening.cohort.cells import Cells, read_chunk
from screening.cohort.flat import FlatRow, row_to_profile
from screening.cohort.long import Profiles
from screening.evaluators.vectorized import group_rows

from .rule_strategies import ruleset_of, trials
from .strategies import AS_OF

SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _day(days_back: int) -> str:
    return (AS_OF - dt.timedelta(days=days_back)).isoformat()


blank = st.sampled_from([None, "", "  ", float("nan")])
dates = st.one_of(
    st.sampled_from([0, 1, 7, 29, 30, 31, 89, 90, 91, 183, 184, 365, 366, 3000, -1]).map(_day),
    st.sampled_from(["2026-02-30", "20261101", " 2026-11-01", "2026-11-01T00:00:00", "soon"]),
    blank,
)
LAB_VALUES = {
    "bilirubin": (["mg/dL", "umol/L", "mmol/L", "furlong", " mg/dL"], [0.5, 1.99, 2.0, 3.0, 3.01, 34.2, 51.3, 51.31]),
    "albumin": (["g/dL", "g/L", "mmol/L"], [2.79, 2.8, 3.5, 3.51, 28.0, 35.0]),
    "inr": (["1", "{INR}", "s"], [0.9, 1.69, 1.7, 2.3, 2.31]),
    "creatinine": (["mg/dL", "umol/L"], [0.9, 1.0, 4.0, 88.4]),
    "sodium": (["mmol/L", "meq/L", "mEq/L"], [120.0, 125.0, 137.0]),
}


def _number(values: list[float]) -> st.SearchStrategy:
    good = st.sampled_from(values)
    return st.one_of(good, good.map(str), good.map(lambda v: f" {v}"), st.sampled_from(["-1", "inf", "abc", "1_5", "1e1", ".5", "0"]), blank)


@st.composite
def flat_rows(draw: st.DrawFn, index: int) -> dict:
    row: dict = {"id": draw(st.one_of(st.just(f"R{index}"), st.sampled_from([" ", "x" * 129, " padded "]), blank))}
    row["birth_date"] = draw(st.one_of(st.sampled_from(["1961-11-22", "1961-11-23", "2008-11-22", "2008-11-23", "2014-11-22", "2014-11-23", "1990-02-28", "2030-01-01"]), dates))
    row["sex"] = draw(st.one_of(st.sampled_from(["male", "female", "other", " male", "MALE"]), blank))
    row["consent"] = draw(st.one_of(st.sampled_from(["consented", "refused", "not_asked", "maybe"]), blank))
    for name in ("pregnant", "lactating", "childbearing_potential"):
        row[name] = draw(st.one_of(st.sampled_from(["true", "false", "Yes", "0", "t", True]), blank))
    row["conditions"] = draw(st.one_of(st.sampled_from(["B18.1;K74.6", "B18.1;K74.6;C22.0", "K74.6;E11.9", "B20", "none", "NONE", "b18.1", "U07.1", "B18.1;;"]), blank))
    row["medications"] = draw(st.one_of(st.sampled_from(["Baraclude 0.5 mg", "J05AF10", "entecavir 0.5 mg;metformin 500 mg", "none", "Vemlidy 25 mg"]), blank))
    row["procedures"] = draw(st.one_of(st.sampled_from(["none", "liver_transplant", "haemodialysis;haemodialysis", "haemodialysis", "Bad Kind", "none;"]), blank))
    for name, (units, values) in LAB_VALUES.items():
        if draw(st.booleans()):
            row[name] = draw(_number(values))
            row[f"{name}_unit"] = draw(st.one_of(st.sampled_from(units), blank))
            row[f"{name}_date"] = draw(dates)
            row[f"{name}_comparator"] = draw(st.one_of(st.sampled_from(["<", "<=", ">", ">=", "~"]), blank))
    for name in ("hbsag", "hcg"):
        row[name] = draw(st.one_of(st.sampled_from(["positive", "NEGATIVE", " detected", "indeterminate", "maybe"]), blank))
        row[f"{name}_date"] = draw(dates)
    for name in ("ascites_grade", "encephalopathy_grade"):
        row[name] = draw(st.one_of(st.sampled_from(["0", "1", "2", "3", "4", "2.0", "-1", 2, 1.0]), blank))
        row[f"{name}_date"] = draw(dates)
    row["ultrasound_findings"] = draw(st.one_of(st.sampled_from(["cirrhosis", "cirrhosis;ascites", "hepatocellular_carcinoma", "none", "bogus"]), blank))
    row["ultrasound_date"] = draw(dates)
    return row


@st.composite
def flat_tables(draw: st.DrawFn) -> pd.DataFrame:
    rows = [draw(flat_rows(i)) for i in range(draw(st.integers(1, 8)))]
    columns = sorted({c for row in rows for c in row})
    frame = pd.DataFrame([{c: row.get(c) for c in columns} for row in rows], columns=columns, dtype=object)
    if draw(st.booleans()):  # as a Parquet file with dictionary columns arrives
        frame = frame.apply(lambda column: column.astype("category") if column.map(lambda v: isinstance(v, str) or v is None).all() else column)
    return frame


def _both_ways(rules, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    columnar = pd.concat(screen_cohort([frame], rules, AS_OF), ignore_index=True).astype(str)
    profiles = [row_to_profile(row) for row in frame.astype(object).to_dict("records")]  # each named by its columns in an error
    per_row = pd.concat(screen_cohort([Profiles(profiles, map(FlatRow, profiles))], rules, AS_OF), ignore_index=True).astype(str)
    return columnar, per_row


@SETTINGS
@given(frame=flat_tables())
def test_columnar_reading_matches_the_profile_path_on_seed_trials(rules, frame):
    columnar, per_row = _both_ways(rules, frame)
    pd.testing.assert_frame_equal(columnar, per_row)


@SETTINGS
@given(trial=trials(), frame=flat_tables())
def test_columnar_reading_matches_the_profile_path_on_generated_rules(rules, trial, frame):
    columnar, per_row = _both_ways(ruleset_of(rules, trial), frame)
    pd.testing.assert_frame_equal(columnar, per_row)


MELD_TRIAL = {  # each MELD score of the labs below (MELD 3.0: 15 without the female points, 17 with)
    "id": "NCT99999999", "title": "MELD family", "version": "0", "source": {"url": "https://example.org"},
    "criteria": [{"id": f"I{i}", "kind": "inclusion", "text": "t", "rule": {"type": "compare", "fact": fact, "op": "==", "value": value}}
                 for i, (fact, value) in enumerate([("meld", 14), ("meld_na", 15), ("meld_3", 15), ("meld_3", 17)])],
}
MELD_LABS = {"bilirubin": "2.5", "bilirubin_unit": "mg/dL", "bilirubin_date": _day(10), "albumin": "3.1", "albumin_unit": "g/dL",
             "albumin_date": _day(10), "inr": "1.5", "inr_date": _day(10), "creatinine": "0.9", "creatinine_unit": "mg/dL",
             "creatinine_date": _day(10), "sodium": "136", "sodium_unit": "mmol/L", "sodium_date": _day(10), "procedures": "none"}


@pytest.mark.parametrize(
    "patient",
    [
        {"sex": "male", "birth_date": "1975-06-15"},
        {"sex": "male", "birth_date": "2009-11-23"},  # 17: MELD 3.0's female points (OPTN)
        {"sex": "male", "birth_date": "2008-11-22"},  # 18 that day: none
        {"sex": "male", "birth_date": "2014-11-22"},  # 12
        {"sex": "male"},  # no birth date: maybe
        {"sex": "female"},
        {"birth_date": "2009-11-23"},  # no sex, 17: the points either way
        {"sex": "male", "birth_date": "1975-06-15", "procedures": "haemodialysis;haemodialysis"},  # undated: maybe dialysis
    ],
)
def test_columnar_meld_scores_match_the_profile_path(rules, patient):
    frame = pd.DataFrame([{"id": "R0", **MELD_LABS, **patient}], dtype=object)
    columnar, per_row = _both_ways(ruleset_of(rules, MELD_TRIAL), frame)
    pd.testing.assert_frame_equal(columnar, per_row)


CELLS = [  # (cell, accepted column-wise) - refused cells send the row to the per-row path
    ({"bilirubin": "2.0", "bilirubin_unit": "mg/dL", "bilirubin_date": "2026-11-01"}, True),
    ({"bilirubin": "2.0", "bilirubin_unit": "furlong", "bilirubin_date": "2026-11-01"}, False),
    ({"bilirubin": "2.0", "bilirubin_date": "2026-02-30"}, False),
    ({"bilirubin": "1_5", "bilirubin_date": "2026-11-01"}, False),
    ({"bilirubin": "", "bilirubin_unit": "furlong", "bilirubin_date": "soon"}, True),  # no value: the rest is not read
    ({"ultrasound_findings": "bogus"}, True),  # no study date: findings not read
    ({"ultrasound_findings": "bogus", "ultrasound_date": "2026-11-01"}, False),
    ({"sex": " male"}, False),
    ({"birth_date": "2030-01-01"}, False),
    ({"conditions": "U07.1"}, False),  # ICD-10 chapter U is not accepted by the profile model
    ({"ascites_grade": "2.0", "ascites_grade_date": "2026-11-01"}, False),
    ({"ascites_grade": 2.0, "ascites_grade_date": "2026-11-01"}, True),
]


def test_which_cells_the_columnar_reading_accepts():
    for cells, accepted in CELLS:
        frame = pd.DataFrame([{"id": "P", **cells}], dtype=object)
        assert bool(read_chunk(frame, AS_OF).ok[0]) is accepted, cells


def test_blank_cells_are_empty():
    cells = Cells.of(pd.Series(["a", " ", None, "a", ""], dtype=object), 5)
    assert list(cells.codes >= 0) == [True, False, False, True, False]


def test_group_rows_groups_equal_rows_and_names_their_first():
    keys = [np.array([1, 2, 1, 2, 1]), np.array([0.5, np.nan, 0.5, np.nan, 0.7])]
    codes, first = group_rows(keys)
    assert codes[0] == codes[2] and codes[1] == codes[3] and len(set(codes)) == 3
    assert sorted(first) == [0, 1, 4]
    wide = [np.arange(5) * 10**9, np.arange(5) * 10**9, np.arange(5)]  # the product of spans would overflow
    assert len(set(group_rows(wide)[0])) == 5


DATE_CELLS = [  # every form a date cell may take: leap days, calendar edges, what ISO parsing refuses
    "2024-02-29", "2023-02-29", "1900-02-29", "2000-02-29", "2026-11-22", "2026-11-23", "1961-11-22", "1961-11-23", "2030-01-01",
    "0000-01-01", "0001-01-01", "9999-12-31", "2021-13-01", "2021-00-10", "2021-04-31", "2021-04-30", "2021-1-01", " 2021-01-01",
    "2021-01-01\n", "2021/01/01", "20210101xx", "2021-01-0\x00", "\u0662\u0660\u0662\u0661-\u0660\u0661-\u0660\u0661", "", "soon",
    dt.date(2020, 5, 5), 12, 2.5, None,
]


def test_dates_parsed_as_arrays_match_one_by_one():
    from screening.cohort.cells import INVALID, parse_age, parse_day

    every_day = [(dt.date(1899, 12, 1) + dt.timedelta(days=d)).isoformat() for d in range(0, 50_000, 3)]
    values = DATE_CELLS + every_day
    wanted = np.ones(len(values), dtype=bool)
    wanted[1::7] = False
    assert parse_day.many(values, wanted) == [parse_day(v) if w else INVALID for v, w in zip(values, wanted)]
    for as_of in (AS_OF, dt.date(2024, 2, 29), dt.date(2025, 2, 28), dt.date(2025, 3, 1), dt.date(1900, 1, 1)):
        parse = parse_age(as_of)
        assert parse.many(values, wanted) == [parse(v) if w else INVALID for v, w in zip(values, wanted)], as_of


def test_both_fact_resolvers_answer_every_number_question():
    """A number fact names the question that answers it (FactSpec.question); the per-patient and
    the column-wise resolver each answer every question, and only those."""
    from screening.cohort import columnar
    from screening.facts import resolve
    from screening.facts.catalog import FACTS, NUMBER_QUESTIONS

    assert set(resolve._NUMBER_QUESTIONS) == set(columnar._NUMBER_QUESTIONS) == set(NUMBER_QUESTIONS)
    assert {spec.question for spec in FACTS.values() if spec.kind == "number"} == set(NUMBER_QUESTIONS)
    assert all(spec.question is None for spec in FACTS.values() if spec.kind == "category")
