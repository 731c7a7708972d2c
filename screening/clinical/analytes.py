"""The lab analytes rules may name, how profiles identify them (LOINC) and their canonical units.

Rules compare in the canonical (conventional) unit, the one the Child-Pugh and MELD definitions
use. Mass <-> substance conversions use the clinical factor in common use, written as the molar
mass it implies (so an SI report and its conventional twin land on the same side of a cut-off):

- bilirubin: 1 mg/dL = 17.1 umol/L (AMA Manual of Style, SI conversion table; Young DS, Ann Intern
  Med 1987;106:114-29); implies 584.8 g/mol (true molar mass 584.66 g/mol);
- creatinine: 1 mg/dL = 88.4 umol/L (same sources); implies 113.1 g/mol (true 113.12 g/mol);
- sodium: 1 mmol/L = 1 mEq/L (monovalent);
- albumin: g/L <-> g/dL is a plain factor 10; albumin in a substance unit is refused;
- ALT, AST: enzyme activity in U/L. The enzyme unit (1 umol of substrate per minute) was defined
  as the International Unit of enzyme activity (International Union of Biochemistry, 1961), so
  results written in UCUM's ``[IU]/L`` are U/L; elsewhere ``[IU]`` is a WHO standard's arbitrary
  unit and converts to nothing else.

LOINC codes: loinc.org (2.77). Qualitative analytes have no unit.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Analyte:
    name: str
    display: str
    loinc: tuple[str, ...]
    unit: str | None  # canonical UCUM unit; None for a qualitative analyte
    molar_mass: float | None = None  # g/mol, for mass <-> substance conversion
    valence: int | None = None  # charge, for mEq <-> mmol
    reported_in: tuple[str, ...] = ()  # other UCUM units results commonly come in (their factors are precomputed)
    international_unit: str | None = None  # what UCUM's arbitrary [IU] stands for in this analyte's results, if a unit


ANALYTES: dict[str, Analyte] = {
    a.name: a
    for a in (
        Analyte("bilirubin", "Total bilirubin", ("1975-2", "14631-6", "42719-5", "54363-7"), "mg/dL", molar_mass=10_000 / 17.1,
                reported_in=("umol/L", "mg/L")),
        Analyte("albumin", "Albumin", ("1751-7", "61151-7", "61152-5", "2862-1"), "g/dL", reported_in=("g/L", "mg/dL")),
        Analyte("creatinine", "Creatinine", ("2160-0", "14682-9", "38483-4"), "mg/dL", molar_mass=10_000 / 88.4,
                reported_in=("umol/L", "mg/L")),
        Analyte("sodium", "Sodium", ("2951-2", "2947-0"), "mmol/L", valence=1, reported_in=("meq/L", "mEq/L")),
        Analyte("inr", "INR", ("6301-6", "34714-6", "46418-0"), "1", reported_in=("{INR}", "{ratio}")),
        Analyte("prothrombin_time", "Prothrombin time", ("5902-2",), "s"),
        Analyte("alt", "ALT (SGPT)", ("1742-6", "1743-4"), "U/L", reported_in=("ukat/L", "[IU]/L"), international_unit="U"),
        Analyte("ast", "AST (SGOT)", ("1920-8", "30239-8"), "U/L", reported_in=("ukat/L", "[IU]/L"), international_unit="U"),
        Analyte("platelets", "Platelets", ("777-3", "26515-7"), "10*9/L", reported_in=("10*3/uL",)),
        Analyte("hbv_dna", "HBV DNA", ("29615-2", "42595-9"), "[IU]/mL", reported_in=("[IU]/L", "k[IU]/mL")),
        Analyte("hbsag", "HBsAg", ("5196-1", "5195-3", "58452-4"), None),
        Analyte("hcv_rna", "HCV RNA", ("11259-9",), None),
        Analyte("anti_hcv", "Anti-HCV antibody", ("16128-1", "13955-0"), None),
        Analyte("hiv", "HIV-1/2 antigen/antibody", ("56888-1", "7917-8", "75622-1"), None),
        Analyte("hcg", "hCG pregnancy test", ("2106-3", "2118-8"), None),
    )
}

ANALYTE_BY_LOINC: dict[str, Analyte] = {code: a for a in ANALYTES.values() for code in a.loinc}
