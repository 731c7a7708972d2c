"""Per-patient latency of the two single-patient engines, side by side in one run.

    python benchmarks/engines.py [--seconds 5]

For each engine: median and p95 microseconds per patient and trial, explanations included
("screen"), and for durable_rules the bare Rete outcomes as well ("outcomes only"). Patients are
the bundled examples (21 profiles, both trials), cycled until the time budget is spent.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from pathlib import Path

from screening import durable_engine, load_patient, load_rules, screen

ROOT = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2026, 11, 22)


def measure(label: str, run, patients, trials: int, seconds: float) -> tuple[str, float, float, int]:
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for patient in patients:
            start = time.perf_counter()
            run(patient)
            samples.append((time.perf_counter() - start) / trials * 1e6)
    samples.sort()
    return label, statistics.median(samples), samples[int(len(samples) * 0.95)], len(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="time budget per engine")
    args = parser.parse_args()
    rules = load_rules(ROOT / "rules")
    patients = [load_patient(p) for p in sorted((ROOT / "patients" / "examples").glob("*.json"))]
    engine = durable_engine(rules)
    trials = len(rules.trials)
    rows = [
        measure("explain: screen (reference)", lambda p: screen(p, rules, as_of=AS_OF), patients, trials, args.seconds),
        measure("durable: screen (outcomes from Rete + explanation)", lambda p: screen(p, rules, as_of=AS_OF, engine="durable"), patients, trials, args.seconds),
        measure("durable: outcomes only", lambda p: [engine.outcomes(p, AS_OF, t) for t in rules.trials], patients, trials, args.seconds),
    ]
    print(f"{'engine':<52} {'median us':>10} {'p95 us':>10} {'samples':>8}   (per patient and trial, {trials} trials)")
    for label, median, p95, n in rows:
        print(f"{label:<52} {median:>10.0f} {p95:>10.0f} {n:>8}")
    print(f"durable screen / explain screen: {rows[1][1] / rows[0][1]:.2f}x")


if __name__ == "__main__":
    main()
