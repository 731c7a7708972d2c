"""Unit normalization: UCUM units to each analyte's canonical unit, with the clinical factors."""

from __future__ import annotations

import pytest

from screening.clinical.units import conversion_factor, round_significant, to_canonical
from screening.errors import UnitError


@pytest.mark.parametrize(
    ("analyte", "value", "unit", "canonical"),
    [
        ("bilirubin", 17.1, "umol/L", 1.0),  # 17.1 umol/L per mg/dL
        ("bilirubin", 34.2, "umol/L", 2.0),
        ("bilirubin", 51.3, "umol/L", 3.0),
        ("bilirubin", 2.0, "mg/dL", 2.0),
        ("bilirubin", 20.0, "mg/L", 2.0),
        ("bilirubin", 0.0342, "mmol/L", 2.0),
        ("creatinine", 88.4, "umol/L", 1.0),  # 88.4 umol/L per mg/dL
        ("creatinine", 353.6, "umol/L", 4.0),
        ("albumin", 35, "g/L", 3.5),
        ("albumin", 28, "g/L", 2.8),
        ("albumin", 3.5, "g/dL", 3.5),
        ("sodium", 137, "mEq/L", 137),
        ("sodium", 137, "meq/L", 137),
        ("sodium", 0.137, "mol/L", 137),
        ("inr", 1.7, "1", 1.7),
        ("inr", 1.7, "{INR}", 1.7),
        ("prothrombin_time", 16, "s", 16),
        ("platelets", 150, "10*3/uL", 150),
        ("platelets", 150000, "/uL", 150),
        ("platelets", 150, "10*3{cells}/uL", 150),  # the annotation is not a digit of the exponent (was 1e31 per uL)
        ("platelets", 150000, "{cells}/uL", 150),
        ("platelets", 150, "10*3/mm3", 150),  # UCUM exponent: mm3 is a cubic millimetre (= uL)
        ("platelets", 150000, "/mm3", 150),
        ("platelets", 150, "10^3/uL", 150),  # 10^3: the power of ten as HL7 v2 messages often print it
        ("platelets", 150, "10*3.{cells}/uL", 150),  # an annotation after a product dot stands for 1
        ("albumin", 35, "g/dm3", 3.5),
        ("albumin", 3.5, "g/dL{in serum_1.x}", 3.5),  # annotation text is free (mL/min/{1.73_m2} was refused)
        ("hbv_dna", 2000, "[IU]/mL", 2000),
        ("hbv_dna", 2_000_000, "[IU]/L", 2000),
        ("alt", 40, "U/L", 40),
        ("alt", 0.5, "ukat/L", 30),
        # the enzyme unit was named the International Unit (IUB 1961): [IU] of ALT/AST is U
        ("alt", 40, "[IU]/L", 40),
        ("ast", 0.04, "[IU]/mL", 40),
        ("ast", 40, "U/L{37Cel}", 40),
    ],
)
def test_to_canonical(analyte, value, unit, canonical):
    assert to_canonical(analyte, value, unit) == pytest.approx(canonical, rel=1e-12)


def test_si_cut_offs_land_exactly_on_the_conventional_cut_offs():
    # Child-Pugh cut-offs must not be crossed by float noise after conversion.
    assert to_canonical("bilirubin", 34.2, "umol/L") == 2.0
    assert to_canonical("bilirubin", 51.3, "umol/L") == 3.0
    assert to_canonical("albumin", 28, "g/L") == 2.8
    assert to_canonical("albumin", 35, "g/L") == 3.5


@pytest.mark.parametrize(
    ("value", "digits", "rounded"),
    [
        (34.2 / 17.1 + 4e-16, 12, 2.0),  # float noise from a conversion is removed
        (1234.5678, 6, 1234.57),
        (0.000123456789, 3, 0.000123),
        (1 / 3, 20, 1 / 3),  # more digits than a float holds: unchanged
    ],
)
def test_round_significant(value, digits, rounded):
    assert round_significant(value, digits) == rounded


def test_analytes_are_immutable():
    """Factors are cached per analyte name, so an analyte's molar mass or unit must not change."""
    import dataclasses

    from screening.clinical.analytes import ANALYTES

    with pytest.raises(dataclasses.FrozenInstanceError):
        ANALYTES["bilirubin"].molar_mass = 500.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("analyte", "unit"),
    [
        ("albumin", "umol/L"),  # no molar mass for albumin: refused, not guessed
        ("inr", "mg/dL"),
        ("bilirubin", "s"),
        ("bilirubin", "mg per dL"),
        ("bilirubin", "furlong"),
        ("bilirubin", "mEq/L"),  # bilirubin has no valence
        ("hbsag", "[IU]/mL"),  # qualitative analyte
        ("hbv_dna", "U/mL"),  # HBV DNA's [IU] is the WHO standard's, not the enzyme unit
        ("platelets", "[IU]/L"),
        ("sodium", "g"),
    ],
)
def test_unconvertible_units_are_errors(analyte, unit):
    with pytest.raises(UnitError):
        conversion_factor(analyte, unit)


def test_the_reported_unit_table_is_what_pint_computes():
    """screening/clinical/unit_factors.py is written by reported_unit_table(); rewrite it (the
    command is in its docstring) when an analyte's ``reported_in`` changes."""
    from pathlib import Path

    from screening.clinical import unit_factors
    from screening.clinical.analytes import ANALYTES
    from screening.clinical.units import pint_factor, reported_unit_table

    assert Path(unit_factors.__file__).read_text(encoding="utf-8") == reported_unit_table()
    assert set(unit_factors.REPORTED_UNIT_FACTORS) == {(a.name, u) for a in ANALYTES.values() for u in a.reported_in}
    for (analyte, unit), factor in unit_factors.REPORTED_UNIT_FACTORS.items():
        assert conversion_factor(analyte, unit) == pint_factor(ANALYTES[analyte], unit) == factor


def test_pint_conversions_from_several_threads_each_use_their_own_analyte():
    """pint's registry is shared state (a conversion by molar mass enables its chemistry context
    on it): conversions from several threads at once (the library used from a thread pool, the
    service's rules reload beside a request) must not see each other's molar mass."""
    import sys
    import threading

    from screening.clinical.analytes import ANALYTES
    from screening.clinical.units import pint_factor

    pairs = [(a, u) for a in ("bilirubin", "creatinine") for u in ("mmol/L", "umol/dL", "nmol/mL")]
    expected = {(a, u): pint_factor(ANALYTES[a], u) for a, u in pairs}
    wrong: list[tuple[str, str]] = []

    def convert(offset: int) -> None:
        for i in range(150):
            analyte, unit = pairs[(i + offset) % len(pairs)]
            try:
                if pint_factor(ANALYTES[analyte], unit) != expected[analyte, unit]:
                    wrong.append((analyte, unit))
            except UnitError:
                wrong.append((analyte, unit))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=convert, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert wrong == []


def test_the_documented_command_rewrites_the_reported_unit_table(tmp_path):
    """The command in screening/clinical/unit_factors.py's docstring, run on a copy of the package,
    leaves the table as it is (it must not empty the file before reading it: units.py imports it)."""
    import re
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from screening.clinical import unit_factors

    source = Path(unit_factors.__file__)
    shutil.copytree(source.parents[1], tmp_path / "screening", ignore=shutil.ignore_patterns("__pycache__"))
    block = unit_factors.__doc__.split("::\n", 1)[1].split("\n\n", 1)[0]
    command = re.sub(r"^python\b", lambda _: sys.executable, " ".join(block.replace("\\\n", " ").split()))
    done = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True)
    copy = tmp_path / "screening" / "clinical" / "unit_factors.py"
    assert (done.returncode, copy.read_text(encoding="utf-8")) == (0, source.read_text(encoding="utf-8")), done.stderr[-500:]
    where = subprocess.run([sys.executable, "-c", "import screening.clinical.units as u; print(u.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(tmp_path)  # the copy was the one run
