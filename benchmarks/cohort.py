"""Cohort pre-screening throughput and peak memory (seeded synthetic flat cohorts; nothing large
is committed):

    python benchmarks/cohort.py [--sizes 10000 100000] [--chunk-size 10000]

For each size: a seeded flat table is written to Parquet in a temporary folder, then
``screen-cohort``'s in-process path (read in chunks, vectorized evaluation, results written to
Parquet) runs on it, for the seed trial NCT04357600 with full per-criterion output. Prints
patients/s and the peak resident memory of the run (from /proc, in a fresh process per size).

Status (see benchmarks/README.md): the vectorized evaluator itself is fast, but flat facts are
still built per patient through the reference fact resolver, which dominates; the issue's
comparison with numpy, DuckDB and durable_rules and its 1M-patient targets are not reached yet.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2026, 11, 22)


def synthetic_flat(n: int, seed: int = 42) -> pd.DataFrame:
    """A flat cohort (screening/cohort/flat.py columns) with realistic values and missingness."""
    rng = np.random.default_rng(seed)
    days = lambda low, high: [(AS_OF - dt.timedelta(days=int(d))).isoformat() for d in rng.integers(low, high, n)]  # noqa: E731
    maybe = lambda values, p: np.where(rng.random(n) < p, None, values)  # noqa: E731
    si = rng.random(n) < 0.4
    bilirubin = np.round(rng.lognormal(0.6, 0.5, n), 2)
    albumin = np.round(rng.normal(3.2, 0.5, n), 1)
    conditions = rng.choice(["B18.1;K74.6", "B18.1;K74.6;E11.9", "B18.1;K74.6;C22.0", "B18.1;K74.6;B18.2", "K74.6", "none"], n,
                            p=[0.6, 0.12, 0.06, 0.04, 0.08, 0.1])
    return pd.DataFrame({
        "id": [f"C{i}" for i in range(n)],
        "birth_date": [(dt.date(1950, 1, 1) + dt.timedelta(days=int(d))).isoformat() for d in rng.integers(0, 60 * 365, n)],
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


RUN = """
import datetime as dt, resource, sys, time
from screening import load_rules
from screening.cohort import CohortSummary, read_cohort, screen_cohort
from screening.cohort.output import ResultWriter
rules = load_rules(sys.argv[1])
summary = CohortSummary()
start = time.perf_counter()
with ResultWriter(sys.argv[3]) as writer:
    for frame in screen_cohort(read_cohort(sys.argv[2], int(sys.argv[4])), rules, dt.date(2026, 11, 22), ["NCT04357600"], summary):
        writer.write(frame)
elapsed = time.perf_counter() - start
print(summary.rows, elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--chunk-size", type=int, default=10_000)
    args = parser.parse_args()
    print(f"{'patients':>9} {'seconds':>8} {'patients/s':>11} {'peak MiB':>9}   (in-process vectorized path, NCT04357600, Parquet in and out)")
    with tempfile.TemporaryDirectory() as folder:
        for n in args.sizes:
            cohort = Path(folder) / f"cohort-{n}.parquet"
            synthetic_flat(n).to_parquet(cohort, index=False)
            done = subprocess.run([sys.executable, "-c", RUN, str(ROOT / "rules"), str(cohort), str(Path(folder) / "out.parquet"), str(args.chunk_size)],
                                  capture_output=True, text=True, check=True)
            rows, seconds, peak = done.stdout.split()
            print(f"{int(rows):>9} {float(seconds):>8.1f} {int(rows) / float(seconds):>11.0f} {float(peak):>9.0f}")


if __name__ == "__main__":
    main()
