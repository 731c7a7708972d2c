"""Code matching as screening/rules/codelists.py documents it: ICD-10 codes with their
descendants, ranges of categories, exact (``=``) entries; ATC groups; exact SNOMED CT and RxNorm
ids; whole-word names; and a procedure's code compared only in its own code system."""

from __future__ import annotations

import pydantic
import pytest

from screening.rules.codelists import CodeList, CodeLists, CodeSet

T, F = True, False

LIST = CodeList(
    id="test",
    title="Test list",
    codes=CodeSet(
        icd10=("B18.1", "E10-E14", "=I85.0"),
        snomed=("66071002",),
        atc=("J05AF",),
        rxnorm=("197361",),
        names=("Entecavir", "tenofovir", "tenofovir alafenamide"),
        kinds=("liver_transplant",),
    ),
)
EMPTY = CodeList(id="empty", title="No codes of any system", codes=CodeSet())

ICD10 = [  # recorded code, matches
    ("B18.1", T),
    ("B18.10", T),  # a descendant (ICD-10-CM)
    ("b181", T),  # case and dots do not matter
    ("B18", F),  # the parent is not matched
    ("B18.2", F),
    ("E10", T),  # a range: its first category ...
    ("E10.9", T),
    ("E12", T),
    ("E14", T),  # ... its last one ...
    ("E14.9", T),  # ... and their descendants (WHO: unspecified diabetes without complications)
    ("E09", F),
    ("E15", F),
    ("I85.0", T),  # "=I85.0": exactly that code
    ("I85.00", F),  # not its ICD-10-CM descendants, which mean something else
    ("I85", F),
    ("=I85.0", F),  # "=" marks list entries, not recorded codes
    (None, F),
    ("", F),
]


@pytest.mark.parametrize(("code", "expected"), ICD10)
def test_icd10(code, expected):
    assert LIST.matches_icd10(code) is expected


OTHER_SYSTEMS = [  # method, argument, expected
    ("matches_atc", "J05AF10", T),  # a group and every code under it
    ("matches_atc", "j05af", T),
    ("matches_atc", "J05A", F),
    ("matches_atc", None, F),
    ("matches_snomed", "66071002", T),
    ("matches_snomed", "6607100", F),  # exact ids only
    ("matches_rxnorm", "197361", T),
    ("matches_rxnorm", "1973610", F),
    ("matches_kind", "liver_transplant", T),
    ("matches_kind", "liver", F),
    ("matches_name", ("Baraclude (entecavir) 0.5 mg",), "entecavir"),  # whole word, case-insensitive
    ("matches_name", ("proentecavir",), None),
    ("matches_name", ("Vemlidy (tenofovir alafenamide)",), "tenofovir alafenamide"),  # the longest name found
    ("matches_name", ("tenofovir disoproxil",), "tenofovir"),
    ("matches_name", (), None),
]


@pytest.mark.parametrize(("method", "argument", "expected"), OTHER_SYSTEMS)
def test_other_systems(method, argument, expected):
    assert getattr(LIST, method)(argument) == expected


@pytest.mark.parametrize(("method", "argument"), [("matches_icd10", "B18.1"), *((m, a) for m, a, _ in OTHER_SYSTEMS)])
def test_a_list_without_codes_matches_nothing(method, argument):
    assert not getattr(EMPTY, method)(argument)


PROCEDURES = [  # kind, code system, code, lists matched
    ("liver_transplant", None, None, {"test"}),
    (None, "snomed", "66071002", {"test"}),
    (None, "icd10", "B18.1", {"test"}),
    (None, "icd10", "66071002", set()),  # a SNOMED CT id recorded as another system's code
    (None, "cpt", "66071002", set()),
    (None, "icd10pcs", "B18.1", set()),
    (None, "cpt", "B18.1", set()),
    (None, "snomed", "B18.1", set()),
    (None, None, None, set()),
]


@pytest.mark.parametrize(("kind", "system", "code", "expected"), PROCEDURES)
def test_procedure_codes_are_compared_in_their_own_system(kind, system, code, expected):
    assert set(CodeLists({"test": LIST}).for_procedure(kind, system, code)) == expected


INVALID = [  # codes, error: found when the rules are loaded
    ({"icd10": ("B18.1234X",)}, "not an ICD-10 code"),
    ({"icd10": ("C97-C00",)}, "reversed"),
    ({"icd10": ("C00-C50", "C40-C97")}, "overlap"),
    ({"atc": ("J05 AF",)}, "not an ATC code"),
    ({"atc": ("J5",)}, "not an ATC code"),
    ({"snomed": ("SCT66071002",)}, "not a numeric concept id"),
    ({"rxnorm": ("197361a",)}, "not a numeric concept id"),
]


@pytest.mark.parametrize(("codes", "error"), INVALID)
def test_invalid_entries(codes, error):
    with pytest.raises(pydantic.ValidationError, match=error):
        CodeSet(**codes)


def test_names_and_kinds_are_lower_case():
    assert CodeSet(names=(" Entecavir ",), kinds=("Liver_Transplant",)).model_dump(include={"names", "kinds"}) == {
        "names": ("entecavir",), "kinds": ("liver_transplant",)}


def test_code_lists_are_immutable():
    """Each list derives and remembers its patterns and matches from its codes: they must not change."""
    with pytest.raises(pydantic.ValidationError):
        LIST.codes.icd10 = ()  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        LIST.codes = CodeSet()  # type: ignore[misc]
