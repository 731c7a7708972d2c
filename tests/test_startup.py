"""Start-up cost of the one-patient path: what `screening screen` must not import.

A research coordinator runs the CLI once per candidate; pandas, durable_rules, the HTTP service
and (for values already in canonical units) pint are loaded only by the paths that use them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "patients" / "examples" / "P04-jakarta-cpa-compensated-ineligible.json"
HEAVY = ("pandas", "durable", "fastapi", "uvicorn", "matplotlib", "fhir")


def _modules_after(code: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    return {name.split(".")[0] for name in json.loads(done.stdout.splitlines()[-1])}


def test_cli_screening_one_patient_loads_no_cohort_service_or_rete_code():
    loaded = _modules_after(
        "import sys\nfrom screening.cli import main\n"
        f"sys.argv = ['screening', 'screen', {str(EXAMPLE)!r}, '--as-of', '2026-11-22', '--format', 'json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert "screening" in loaded
    assert not loaded & set(HEAVY)


def test_values_in_canonical_units_need_no_unit_registry():
    profile = json.loads(EXAMPLE.read_text())
    profile["observations"] = [o for o in profile["observations"] if o["loinc"] in ("1975-2", "1751-7", "6301-6")]
    assert {o.get("unit") for o in profile["observations"]} == {"mg/dL", "g/dL", "1"}
    loaded = _modules_after(
        "import datetime as dt\nfrom screening import load_rules, parse_patient, screen\n"
        f"screen(parse_patient({profile!r}), load_rules('rules'), as_of=dt.date(2026, 11, 22))"
    )
    assert "pint" not in loaded


def test_values_in_commonly_reported_units_need_no_unit_registry():
    profile = json.loads(EXAMPLE.read_text())
    profile["observations"] = [
        {"loinc": "14631-6", "value": 34.2, "unit": "umol/L", "date": "2026-11-01"},
        {"loinc": "61151-7", "value": 31, "unit": "g/L", "date": "2026-11-01"},
        {"loinc": "6301-6", "value": 1.8, "unit": "{INR}", "date": "2026-11-01"},
    ]
    code = ("import datetime as dt\nfrom screening import load_rules, parse_patient, screen\n"
            f"result = screen(parse_patient({profile!r}), load_rules('rules'), as_of=dt.date(2026, 11, 22))\n"
            "print(result.model_dump_json())")
    loaded = _modules_after(code)
    assert "pint" not in loaded
    # and the values were used, converted: bilirubin 2 mg/dL, albumin 3.1 g/dL
    screened = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert '"value":2.0,"low":null,"high":null,"unit":"mg/dL"' in screened and '"value":3.1,' in screened


@pytest.mark.parametrize("name", ["read_cohort", "screen_cohort", "CohortSummary", "DurableEngine", "durable_engine"])
def test_lazy_public_names_resolve(name):
    import screening

    assert getattr(screening, name).__name__ == name
