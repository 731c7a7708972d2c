"""Conversion factors of the units lab results commonly come in (``Analyte.reported_in``), as pint
computes them: a run whose results are all in these units (or canonical ones) never imports pint,
whose import and registry take about half a second.

Written by :func:`screening.clinical.units.reported_unit_table`, from the repository root::

    python -c 'from screening.clinical.units import write_reported_unit_table as w; w()'

and checked against it by the tests, so the table cannot drift from what pint computes.
"""

REPORTED_UNIT_FACTORS: dict[tuple[str, str], float] = {
    ("bilirubin", "umol/L"): 0.05847953216374267,
    ("bilirubin", "mg/L"): 0.1,
    ("albumin", "g/L"): 0.1,
    ("albumin", "mg/dL"): 0.001,
    ("creatinine", "umol/L"): 0.011312217194570134,
    ("creatinine", "mg/L"): 0.1,
    ("sodium", "meq/L"): 1.0,
    ("sodium", "mEq/L"): 1.0,
    ("inr", "{INR}"): 1.0,
    ("inr", "{ratio}"): 1.0,
    ("alt", "ukat/L"): 60.0,
    ("alt", "[IU]/L"): 1.0,
    ("ast", "ukat/L"): 60.0,
    ("ast", "[IU]/L"): 1.0,
    ("platelets", "10*3/uL"): 1.0,
    ("hbv_dna", "[IU]/L"): 0.001,
    ("hbv_dna", "k[IU]/mL"): 1000.0,
}
