"""Instructions per patient for single-patient screening, counted by valgrind (callgrind).

    python benchmarks/instructions.py [--against OTHER_CHECKOUT]   # about 2 minutes per row

Wall-clock timings of this machine move by up to 1.5x between runs of the same code; executed
instructions do not depend on the machine's load. Each row is the difference between screening
the 21 example patients 4 times and once (start-up and imports cancel out), per patient, with
``PYTHONHASHSEED=0``; the "long records" row screens the examples each with 40 more conditions and
15 more medications (``engines.long_record``). ``--against`` counts another checkout of the project too (e.g. a worktree of
an earlier commit), run from its own directory with the same interpreter, side by side.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATIENTS = 21
SELECTIONS = {"both trials": ("", ""), "NCT04357600": ("NCT04357600", ""), "long records": ("", "long")}  # (trial, records)

CHILD = """
import datetime as dt, sys
from pathlib import Path
from screening import load_patient, load_rules, screen
rules = load_rules(Path("rules"))
patients = [load_patient(p) for p in sorted(Path("patients/examples").glob("*.json"))]
if sys.argv[3]:  # each example with 40 more conditions and 15 more medications (engines.py)
    sys.path.insert(0, {benchmarks!r})
    from engines import long_record
    patients = [long_record(p) for p in patients]
assert len(patients) == {patients}, len(patients)
trials = [sys.argv[2]] if sys.argv[2] else None
for _ in range(int(sys.argv[1])):
    for patient in patients:
        screen(patient, rules, as_of=dt.date(2026, 11, 22), trials=trials)
"""


def instructions(checkout: Path, rounds: int, trial: str, records: str = "") -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(checkout)}
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c",
                           CHILD.format(patients=PATIENTS, benchmarks=str(ROOT / "benchmarks")), str(rounds), trial, records],
                          cwd=checkout, env=env, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count from valgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_patient(checkout: Path, trial: str, records: str) -> float:
    with ThreadPoolExecutor(2) as pool:  # the two counts side by side, one per core
        once, four = pool.map(lambda rounds: instructions(checkout, rounds, trial, records), (1, 4))
    return (four - once) / (3 * PATIENTS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another checkout of the project to count as well")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    checkouts = [ROOT] + ([args.against.resolve()] if args.against else [])
    print(f"{'checkout':<40} {'screening':<14} {'M instructions per patient':>28}")
    for label, (trial, records) in SELECTIONS.items():
        for checkout in checkouts:
            print(f"{str(checkout):<40} {label:<14} {per_patient(checkout, trial, records) / 1e6:>28.3f}", flush=True)


if __name__ == "__main__":
    main()
