"""Soak test of watch mode: N patients through the durable_rules watcher, memory sampled as it goes.

    python benchmarks/watch_soak.py [--patients 100000] [--every 10000] [--labs 1] [--keep --max-patients N]

Each patient gets its profile (a bundled example with a new id and seeded lab values), ``--labs``
new INRs on successive days, and a discharge. Memory (resident set size, from /proc) is printed
after a warm-up and then every ``--every`` patients; flat memory means per-patient state and
durable_rules sessions are released. With ``--keep`` there is no discharge (a feed that loses
them): memory must level off once ``--max-patients`` are watched and the oldest are evicted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import time
from pathlib import Path

from screening import load_rules
from screening.watch import Watcher

ROOT = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2026, 11, 22)


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def events(n: int, seed: int, labs: int = 1, keep: bool = False):
    rng = random.Random(seed)
    templates = [json.loads(p.read_text()) for p in sorted((ROOT / "patients" / "examples").glob("*.json"))]
    for i in range(n):
        profile = json.loads(json.dumps(templates[i % len(templates)]))
        profile["id"] = f"S{i}"
        for obs in profile.get("observations", []):
            if "value" in obs:
                obs["value"] = round(obs["value"] * rng.uniform(0.8, 1.25), 2)
        yield {"type": "profile", "patient": profile}
        for day in range(labs):
            date = (AS_OF - dt.timedelta(days=labs - day)).isoformat()
            yield {"type": "upsert_observation", "patient_id": f"S{i}",
                   "item": {"loinc": "6301-6", "value": round(rng.uniform(0.9, 3.0), 2), "unit": "1", "date": date}}
        if not keep:
            yield {"type": "discharge", "patient_id": f"S{i}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--every", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--labs", type=int, default=1, help="INR events per patient")
    parser.add_argument("--keep", action="store_true", help="no discharges: --max-patients bounds the state")
    parser.add_argument("--max-patients", type=int, default=100_000)
    args = parser.parse_args()
    watcher = Watcher(load_rules(ROOT / "rules"), AS_OF, engine="durable", max_patients=args.max_patients)
    per_patient = 1 + args.labs + (not args.keep)
    warmup = min(1000, args.patients)
    print(f"{'patients':>9} {'events':>9} {'rss MiB':>9} {'watched':>8} {'changes':>8} {'errors':>7} {'events/s':>9}")
    start = time.perf_counter()
    changes = errors = count = 0
    baseline = None
    for count, event in enumerate(events(args.patients, args.seed, args.labs, args.keep), start=1):
        for record in watcher.handle(event):
            changes += "new_verdict" in record
            errors += "error" in record
        patients = count // per_patient
        if count % per_patient == 0 and (patients == warmup or patients % args.every == 0):
            rss = rss_mib()
            baseline = baseline or rss
            rate = count / (time.perf_counter() - start)
            print(f"{patients:>9} {count:>9} {rss:>9.1f} {len(watcher):>8} {changes:>8} {errors:>7} {rate:>9.0f}", flush=True)
    print(f"memory growth after warm-up: {rss_mib() - baseline:+.1f} MiB over {args.patients} patients")


if __name__ == "__main__":
    main()
