"""Long EHR-style tables screened end to end: time and peak memory, this checkout and another.

    python benchmarks/long_tables.py [--patients 10000 40000] [--format parquet] [--against /tmp/before]

For each size a seeded synthetic long cohort (screening/cohort/long.py tables; nothing large is
committed) is written to a temporary folder: the 19 patients of ``patients/cohorts/long`` copied
under new ids, their rows of each history table with them, and ``--extra`` more conditions and
observations per patient that no trial asks about (an EHR extract's problem list and lab history
are long: the history tables, not the patients table, are what grows). The history tables are
shuffled, as an extract's rows need not come grouped by patient. Then each checkout runs
``screen-cohort``'s work in a fresh subprocess (``read_cohort`` -> ``screen_cohort`` ->
``ResultWriter`` to Parquet, both trials, one process), so its peak resident memory
(``resource.getrusage``) is its own, as are the garbage collector's passes per generation and
the seconds they took (``gc.callbacks``). Rows out == rows in is checked, and, with
``--against``, that both checkouts wrote the same results.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "patients" / "cohorts" / "long"
AS_OF = "2026-11-22"
FILLER_CONDITIONS = ("I10", "E78.5", "J45.909", "M54.5", "K21.9", "F32.9", "G47.33", "M17.11", "H40.9", "L40.0")


def write_cohort(folder: Path, patients: int, extra: int, fmt: str, seed: int = 7) -> int:
    """A long cohort of ``patients`` patients in ``folder``; returns the number of history rows."""
    rng = np.random.default_rng(seed)
    template = {path.stem: pd.read_csv(path, dtype=str) for path in TEMPLATE.glob("*.csv")}
    copies = -(-patients // len(template["patients"]))
    folder.mkdir(parents=True, exist_ok=True)
    histories = 0
    kept: set[str] = set()
    for name in ["patients", *(n for n in template if n != "patients")]:  # patients first: the ids kept
        frame, key = template[name], "id" if name == "patients" else "patient_id"
        table = pd.concat([frame.assign(**{key: frame[key].map(lambda old, k=k: f"{old}-{k}")}) for k in range(copies)], ignore_index=True)
        if name == "patients":
            table = table.iloc[:patients]
            kept = set(table["id"])
        else:
            table = table[table[key].isin(kept)]
            if name in ("conditions", "observations") and extra:
                table = pd.concat([table, _filler(name, sorted(kept), extra, rng)], ignore_index=True)
            table = table.iloc[rng.permutation(len(table))]
            histories += len(table)
        if fmt == "parquet":
            table.to_parquet(folder / f"{name}.parquet", index=False)
        else:
            table.to_csv(folder / f"{name}.csv", index=False)
    return histories


def _filler(name: str, ids: list[str], extra: int, rng: np.random.Generator) -> pd.DataFrame:
    """``extra`` rows per patient no trial asks about: common chronic conditions, or old sodium results."""
    pids = np.repeat(np.array(ids, dtype=object), extra)
    days = rng.integers(200, 4000, len(pids))
    dates = (np.datetime64("2026-11-22") - days.astype("timedelta64[D]")).astype(str)
    if name == "conditions":
        codes = np.array(FILLER_CONDITIONS, dtype=object)[rng.integers(0, len(FILLER_CONDITIONS), len(pids))]
        return pd.DataFrame({"patient_id": pids, "icd10": codes, "onset": dates})
    values = rng.integers(125, 146, len(pids)).astype(str)
    return pd.DataFrame({"patient_id": pids, "loinc": "2951-2", "value": values, "unit": "mmol/L", "date": dates})


def worker(checkout: str, folder: str, out: str, chunk_size: int) -> None:
    sys.path.insert(0, checkout)
    from screening import load_rules
    from screening.cohort import CohortSummary, read_cohort, screen_cohort
    from screening.cohort.output import ResultWriter

    rules = load_rules(Path(checkout) / "rules")
    summary = CohortSummary()
    collections, collecting, began = [0, 0, 0], [0.0], [0.0]

    def timed(phase: str, info: dict) -> None:  # the garbage collector's passes during the run, and their time
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            collections[info["generation"]] += 1
            collecting[0] += time.perf_counter() - began[0]

    gc.callbacks.append(timed)
    start = time.perf_counter()
    writer = ResultWriter(out)
    for frame in screen_cohort(read_cohort(folder, chunk_size), rules, dt.date.fromisoformat(AS_OF), None, summary):
        writer.write(frame)
    writer.close()
    seconds = time.perf_counter() - start
    gc.callbacks.remove(timed)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "rows": summary.rows, "errors": summary.errors, "collections": collections,
                      "collecting": collecting[0]}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, nargs="+", default=[10_000, 40_000])
    parser.add_argument("--extra", type=int, default=20, help="filler conditions and observations per patient (each)")
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    parser.add_argument("--chunk-size", type=int, default=5_000, help="profiles per chunk (read_cohort's default for long tables)")
    parser.add_argument("--against", help="another checkout of the project (e.g. a git worktree of an older commit)")
    parser.add_argument("--worker", nargs=3, metavar=("CHECKOUT", "FOLDER", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args.chunk_size)
        return 0
    checkouts = {"this checkout": str(ROOT)} | ({f"--against {args.against}": args.against} if args.against else {})
    print("| patients | history rows | format | checkout | seconds | patients/s | peak MiB | collections (generation 0/1/2) | s collecting |\n"
          "|---:|---:|---|---|---:|---:|---:|---:|---:|")
    status = 0
    for size in args.patients:
        with tempfile.TemporaryDirectory(prefix="long-bench-") as tmp:
            folder = Path(tmp) / "cohort"
            histories = write_cohort(folder, size, args.extra, args.format)
            outputs = []
            for label, checkout in checkouts.items():
                out = Path(tmp) / f"results-{len(outputs)}.parquet"
                done = subprocess.run([sys.executable, __file__, "--worker", checkout, str(folder), str(out), "--chunk-size", str(args.chunk_size)],
                                      capture_output=True, text=True)
                if done.returncode:
                    print(done.stderr, file=sys.stderr)
                    return 1
                measured = json.loads(done.stdout.strip().splitlines()[-1])
                if measured["rows"] != size:
                    print(f"{label}: {measured['rows']} rows out for {size} in", file=sys.stderr)
                    status = 1
                print(f"| {size:,} | {histories:,} | {args.format} | {label} | {measured['seconds']:.1f} | "
                      f"{size / measured['seconds']:,.0f} | {measured['peak_mib']:,.0f} | {'/'.join(map(str, measured['collections']))} | "
                      f"{measured['collecting']:.1f} |", flush=True)
                outputs.append(pd.read_parquet(out))
            shared = [c for c in outputs[0].columns if c in outputs[-1].columns]  # an older checkout may write fewer columns
            if len(outputs) == 2 and not outputs[0][shared].equals(outputs[1][shared]):
                print(f"{size}: the two checkouts wrote different results", file=sys.stderr)
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
