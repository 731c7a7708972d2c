"""Mutation testing of the pure core modules with cosmic-ray (not run by CI; minutes per module).

    .venv/bin/pip install cosmic-ray
    .venv/bin/python tools/mutation.py screening/clinical/meld.py [more modules...]

Each module is mutated one change at a time (comparison and arithmetic operators swapped, numbers
moved by one, and/or swapped, ``not`` added or dropped, booleans flipped, decorators and loop
bodies removed; bitwise operators and variable renames are left out) in a copy of the
repository's tracked files, and the test files listed for it below are run against each mutant.
Prints killed/survived counts and the diff of every survivor; a survivor is a test gap unless it
is equivalent (no input can tell it from the original).

Known equivalent survivors (December 2026; 0 others):
- logic.py (10): ``is`` -> ``==`` on True/False/None and on enum members.
- intervals.py (7): ``==`` -> ``>=``/``<=`` right after a strict comparison in an ``or``
  (``a > b or (a >= b and ...)`` is ``a > b or (a == b and ...)``).
- child_pugh.py (4): class bounds 6-9 B or 9-15 C (the first band that holds wins); ``*`` -> ``/`` in
  ``_number``'s signature (callers pass ``negative_ok`` by name); ``type(v) is not int`` -> ``!=``.
- units.py (12): ``lru_cache`` size or removal; the precomputed format table's range (it only
  caches the fallback's strings); ``SIGNIFICANT_DIGITS`` 11 or 13 (a tolerance between the digits a
  lab reports and float noise); pint's ``autoconvert_offset_to_baseunit`` (no offset units);
  ``unit == "1"`` -> ``<=`` and ``/ target.magnitude`` -> ``*`` (true of every analyte listed).
- codelists.py (9): the memo bound +-1 and ``>=`` -> ``==`` (a memo never exceeds it);
  ``@classmethod`` removed under ``@field_validator`` (pydantic adds it); ``system >= "snomed"``
  ("snomed" sorts last of the systems a profile allows).
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

MODULES = {  # module -> the test files that cover it (fast ones: one test run per mutant)
    "screening/logic.py": ["tests/test_logic.py", "tests/test_criteria_cases.py"],
    "screening/facts/intervals.py": ["tests/test_intervals.py", "tests/test_criteria_cases.py"],
    "screening/clinical/child_pugh.py": ["tests/test_child_pugh.py", "tests/test_criteria_cases.py"],
    "screening/clinical/meld.py": ["tests/test_meld.py", "tests/test_criteria_cases.py"],
    "screening/clinical/units.py": ["tests/test_units.py", "tests/test_bad_input.py", "tests/test_startup.py"],
    "screening/clinical/analytes.py": ["tests/test_units.py", "tests/test_criteria_cases.py"],
    "screening/rules/codelists.py": ["tests/test_codelists.py", "tests/test_criteria_cases.py", "tests/test_bad_input.py",
                                     "tests/test_caches.py"],
}

EXCLUDED_OPERATORS = [
    r"core/ReplaceBinaryOperator_.*_(RShift|LShift|BitOr|BitAnd|BitXor|Mod|FloorDiv|Pow)$",
    r"core/ReplaceBinaryOperator_(RShift|LShift|BitOr|BitAnd|BitXor|Mod|FloorDiv|Pow)_.*",
    r"core/ReplaceComparisonOperator_(Lt|LtE|Gt|GtE|Eq|NotEq)_(Is|IsNot)$",
    r"core/ReplaceComparisonOperator_(Is|IsNot)_(Lt|LtE|Gt|GtE)$",
    r"core/ReplaceUnaryOperator_.*(Invert|UAdd).*",
    r"core/VariableReplacer",
    r"core/VariableInserter",
]


def _config(module: str, tests: list[str]) -> str:
    command = f"{sys.executable} -m pytest -x -q -p no:cacheprovider {' '.join(tests)}"
    return (f'[cosmic-ray]\nmodule-path = "{module}"\ntimeout = 120.0\nexcluded-modules = []\n'
            f'test-command = "env HYPOTHESIS_PROFILE=ci {command}"\n\n[cosmic-ray.distributor]\nname = "local"\n\n'
            f"[cosmic-ray.filters.operators-filter]\nexclude-operators = {EXCLUDED_OPERATORS!r}\n")


def run(module: str, work: Path) -> tuple[int, int]:
    """Mutate ``module`` in ``work`` (a copy of the repository); print the survivors."""
    config, session = work / "mutation.toml", work / "mutation.sqlite"
    config.write_text(_config(module, MODULES[module]), encoding="utf-8")
    session.unlink(missing_ok=True)
    for step in (["cosmic-ray", "init"], ["cr-filter-operators"], ["cosmic-ray", "exec"]):
        arguments = [str(config), str(session)] if step[0] == "cosmic-ray" else [str(session), str(config)]
        subprocess.run([str(BIN / step[0]), *step[1:], *arguments], cwd=work, check=True, capture_output=True)
    with sqlite3.connect(session) as db:
        rows = db.execute("select test_outcome, diff from work_results where test_outcome in ('KILLED', 'SURVIVED')").fetchall()
    survivors = [diff for outcome, diff in rows if outcome == "SURVIVED"]
    print(f"{module}: {len(rows) - len(survivors)} killed, {len(survivors)} survived")
    for diff in survivors:
        print("".join(line + "\n" for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")))
    return len(rows) - len(survivors), len(survivors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=f"default: all of {', '.join(MODULES)}")
    modules = parser.parse_args().modules or list(MODULES)
    if unknown := [m for m in modules if m not in MODULES]:
        parser.error(f"no test files listed for {', '.join(unknown)} (add them to MODULES)")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        work = Path(tmp)
        for name in filter(None, files):
            if not (ROOT / name).is_file():  # deleted, not yet committed
                continue
            target = work / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((ROOT / name).read_bytes())
        for module in modules:
            run(module, work)


if __name__ == "__main__":
    main()
