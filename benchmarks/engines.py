"""Per-patient latency of the two single-patient engines, side by side in one run.

    python benchmarks/engines.py [--seconds 5]

For each engine: median and p95 microseconds per patient and trial, explanations included
("screen"), and for durable_rules the bare Rete outcomes as well ("outcomes only"). Patients are
the bundled examples (21 profiles, both trials), cycled until the time budget is spent. The last
row screens the same examples with long records, as an EHR's problem and medication lists are:
each given 40 more conditions and 15 more medications that no trial asks about (how the cost
grows with record length). The "floor" row builds each example's result objects anew from their
final values (every distinct nested model once, unvalidated, as the evaluator builds them; no fact,
no logic, no text): what any per-patient evaluator returning these pydantic models pays at least.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from screening import PatientProfile, durable_engine, load_patient, load_rules, screen

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


OTHER_CONDITIONS = ("I10", "E78.5", "J45.909", "M54.5", "K21.9", "F32.9", "G47.33", "M17.11", "H40.9", "L40.0",
                    "K57.30", "R73.03", "D64.9", "E03.9", "G43.909", "M81.0", "N40.0", "H52.4", "R51.9", "Z87.891")
OTHER_MEDICATIONS = ("lisinopril 10 mg", "atorvastatin 20 mg", "metoprolol 25 mg", "omeprazole 20 mg", "sertraline 50 mg",
                     "levothyroxine 50 mcg", "amlodipine 5 mg", "albuterol inhaler", "gabapentin 300 mg", "losartan 50 mg",
                     "tamsulosin 0.4 mg", "tramadol 50 mg", "aspirin 81 mg", "cetirizine 10 mg", "colecalciferol")


def long_record(patient: PatientProfile) -> PatientProfile:
    """The patient with 40 more conditions (20 codes, each also as a more specific child code) and
    15 more medications, none on a trial's code lists."""
    data = patient.model_dump(mode="json", exclude_none=True)
    extra = [{"icd10": code + suffix, "display": code + suffix, "status": "active"} for code in OTHER_CONDITIONS for suffix in ("", "1")]
    data["conditions"] = [*(data.get("conditions") or []), *extra]
    data["medications"] = [*(data.get("medications") or []), *({"name": name, "status": "active"} for name in OTHER_MEDICATIONS)]
    return PatientProfile.model_validate(data)


def construction_plan(result: BaseModel) -> list[tuple[Callable[..., BaseModel], dict[str, Any]]]:
    """Every distinct model object in ``result`` (evidence shared by criteria and trials counts
    once, as the evaluator shares it), each as (its class's unvalidated constructor, its fields)."""
    plan: list[tuple[Callable[..., BaseModel], dict[str, Any]]] = []
    seen: set[int] = set()

    def visit(model: BaseModel) -> None:
        if id(model) in seen:
            return
        seen.add(id(model))
        for value in model.__dict__.values():
            for item in value if type(value) is tuple else ():
                if isinstance(item, BaseModel):
                    visit(item)
        plan.append((type(model).trusted, dict(model.__dict__)))  # type: ignore[attr-defined]

    visit(result)
    return plan


def construct(plan: list[tuple[Callable[..., BaseModel], dict[str, Any]]]) -> None:
    for make, fields in plan:
        make(**fields)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="time budget per engine")
    args = parser.parse_args()
    rules = load_rules(ROOT / "rules")
    patients = [load_patient(p) for p in sorted((ROOT / "patients" / "examples").glob("*.json"))]
    engine = durable_engine(rules)
    trials = len(rules.trials)
    plans = [construction_plan(screen(p, rules, as_of=AS_OF)) for p in patients]
    rows = [
        measure("explain: screen (reference)", lambda p: screen(p, rules, as_of=AS_OF), patients, trials, args.seconds),
        measure("durable: screen (outcomes from Rete + explanation)", lambda p: screen(p, rules, as_of=AS_OF, engine="durable"), patients, trials, args.seconds),
        measure("durable: outcomes only", lambda p: [engine.outcomes(p, AS_OF, t) for t in rules.trials], patients, trials, args.seconds),
        measure("explain: screen, long records (+40 cond., +15 med.)", lambda p: screen(p, rules, as_of=AS_OF),
                [long_record(p) for p in patients], trials, args.seconds),
        measure("floor: the result objects alone (no evaluation)", construct, plans, trials, args.seconds),
    ]
    print(f"{'engine':<52} {'median us':>10} {'p95 us':>10} {'samples':>8}   (per patient and trial, {trials} trials)")
    for label, median, p95, n in rows:
        print(f"{label:<52} {median:>10.0f} {p95:>10.0f} {n:>8}")
    print(f"durable screen / explain screen: {rows[1][1] / rows[0][1]:.2f}x")
    print(f"floor / explain screen: {rows[4][1] / rows[0][1]:.2f} (the share of the reference's median spent building its output; "
          f"median {statistics.median(len(plan) for plan in plans):.0f} distinct result objects per patient)")


if __name__ == "__main__":
    main()
