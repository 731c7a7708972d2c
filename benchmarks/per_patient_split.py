"""Where one patient's screening time goes, on the cohort benchmark's flat-table profiles.

    python benchmarks/per_patient_split.py [--patients 2000] [--rounds 3]

NCT04357600 (the seed trial of the cohort table), one patient at a time, medians in µs:

- normalizing the profile (``PatientFacts``: labs to canonical units, records after the
  screening date dropped);
- the trial's criteria, facts resolved on the way (``evaluate_criterion`` on fresh facts);
- the same criteria again on the same ``PatientFacts``, every fact already memoized: what the
  expression nodes, their texts, the result objects and the memo lookups cost by themselves
  (the difference from the line above is the facts' own resolution);
- the Child-Pugh class alone on fresh facts (three labs, two assessments, points and evidence).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cohort import AS_OF, TRIAL, synthetic_flat  # noqa: E402

from screening import load_rules, parse_patient  # noqa: E402
from screening.cohort.flat import row_to_profile  # noqa: E402
from screening.evaluators.explain import evaluate_criterion  # noqa: E402
from screening.facts.resolve import PatientFacts  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the patients")
    args = parser.parse_args()
    rules = load_rules(ROOT / "rules")
    loaded = rules.trials[TRIAL]
    criteria, defaults = loaded.trial.criteria, loaded.trial.defaults
    profiles = [parse_patient(row_to_profile(row)) for row in synthetic_flat(args.patients).to_dict("records")]
    clock = time.perf_counter
    timings: dict[str, list[float]] = {"normalize": [], "criteria": [], "criteria, facts memoized": [], "Child-Pugh class": []}
    for _ in range(args.rounds):
        for profile in profiles:
            t0 = clock()
            facts = PatientFacts(profile, AS_OF, defaults, rules.codelists)
            t1 = clock()
            for criterion in criteria:
                evaluate_criterion(criterion, facts)
            t2 = clock()
            for criterion in criteria:
                evaluate_criterion(criterion, facts)
            t3 = clock()
            fresh = PatientFacts(profile, AS_OF, defaults, rules.codelists)
            t4 = clock()
            fresh.category("child_pugh.class")
            t5 = clock()
            for name, seconds in zip(timings, (t1 - t0, t2 - t1, t3 - t2, t5 - t4)):
                timings[name].append(seconds)
    print(f"{TRIAL}, {len(criteria)} criteria, {args.patients} flat-table patients x {args.rounds}: median µs per patient")
    for name, values in timings.items():
        print(f"  {name:<28} {statistics.median(values) * 1e6:8.1f}")


if __name__ == "__main__":
    main()
