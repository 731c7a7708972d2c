"""The facts a rule may name, with their kind and canonical unit. The loader checks rules
against this catalog; :mod:`screening.facts.resolve` computes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from ..clinical.analytes import ANALYTES
from ..patient.model import AssessmentName, ConsentStatus, Sex

NumberQuestion = Literal["age", "lab", "assessment", "child_pugh.score", "child_pugh.points", "meld"]
NUMBER_QUESTIONS: tuple[NumberQuestion, ...] = get_args(NumberQuestion)  # every fact resolver answers each


@dataclass(frozen=True)
class FactSpec:
    name: str
    label: str
    kind: Literal["number", "category"]
    unit: str | None = None  # canonical unit of a number fact (a lab's unit converts to it)
    integer: bool = False
    values: tuple[str | bool, ...] = ()  # possible values of a category fact
    analyte: str | None = None
    windowed: bool = False  # takes a look-back window (labs, assessments, scores built from them)
    question: NumberQuestion | None = None  # of a number fact: the question that answers it, about ``part``
    part: str = ""  # the analyte, assessment, Child-Pugh item or score the question is about


CHILD_PUGH_COMPONENTS = ("bilirubin", "albumin", "inr", "ascites", "encephalopathy")
SCORES = {"meld": "MELD", "meld_na": "MELD-Na", "meld_3": "MELD 3.0"}

_specs: list[FactSpec] = [
    FactSpec("age", "Age", "number", unit="a", integer=True, question="age"),
    FactSpec("sex", "Sex", "category", values=tuple(s.value for s in Sex)),
    FactSpec("pregnant", "Pregnant", "category", values=(True, False)),
    FactSpec("lactating", "Lactating", "category", values=(True, False)),
    FactSpec("childbearing_potential", "Child-bearing potential", "category", values=(True, False)),
    FactSpec("consent", "Consent", "category", values=tuple(c.value for c in ConsentStatus)),
    FactSpec("dialysis", "Dialysis at least twice in the past week", "category", values=(True, False)),
    FactSpec("child_pugh.score", "Child-Pugh score", "number", integer=True, windowed=True, question="child_pugh.score"),
    FactSpec("child_pugh.class", "Child-Pugh class", "category", values=("A", "B", "C")),
    *(FactSpec(f"child_pugh.points.{c}", f"Child-Pugh {c} points", "number", integer=True, windowed=True, question="child_pugh.points", part=c)
      for c in CHILD_PUGH_COMPONENTS),
    *(FactSpec(name, label, "number", integer=True, windowed=True, question="meld", part=name) for name, label in SCORES.items()),
    *(
        FactSpec(f"lab.{a.name}", a.display, "number", unit=a.unit, analyte=a.name, windowed=True, question="lab", part=a.name)
        for a in ANALYTES.values()
        if a.unit is not None
    ),
    *(
        FactSpec(f"assessment.{n.value}", n.value.replace("_", " ").capitalize(), "number", integer=True, windowed=True,
                 question="assessment", part=n.value)
        for n in AssessmentName
    ),
]

FACTS: dict[str, FactSpec] = {spec.name: spec for spec in _specs}


def fact_spec(name: str, kind: Literal["number", "category"]) -> FactSpec:
    """The catalog entry of a fact asked as ``kind``; a name the catalog lacks, or a fact of the
    other kind, is a ``ValueError`` naming it (rules are checked at load time, so only a direct
    caller of a fact resolver meets this)."""
    spec = FACTS.get(name)
    if spec is None:
        raise ValueError(f"unknown fact {name!r}")
    if spec.kind != kind:
        raise ValueError(f"fact {name!r} is a {spec.kind}, not a {kind}")
    return spec
QUALITATIVE_ANALYTES = tuple(a.name for a in ANALYTES.values() if a.unit is None)
