"""The practical floor of the per-patient path: NCT04357600 screened by a hand-written function.

    python benchmarks/handwritten.py [--patients 2000] [--rounds 3] [--profile]

:func:`screen_nct04357600` restates the trial's 11 criteria (rules/NCT04357600.yaml) as
straight-line Python over one profile: one pass over each record list, texts and thresholds
prepared once, no ``PatientFacts``, no expression nodes, no rule model at run time. It returns the
same ``TrialResult`` as the explaining evaluator (``screen_trial`` on fresh ``PatientFacts``),
and the script checks that the JSON is byte-identical for every profile of the cohort
benchmark's synthetic flat table, then times both, interleaved per patient.

It covers what a flat-table profile can hold (benchmarks/cohort.py ``synthetic_flat``): at most
one result per lab (bilirubin, albumin, INR, hCG; no comparator, no control), at most one grade
per assessment, at most one imaging study, conditions with an ICD-10 code only (active, undated),
medications by name or ATC code (active, undated, no ingredients), undated procedures by kind.
A profile outside that subset raises :class:`OutsideSubset` naming what it holds; it is counted
and reported, never silently screened differently.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import math
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))  # this checkout's screening, not an installed one

from cohort import AS_OF, TRIAL, months_back, synthetic_flat  # noqa: E402

from screening import load_rules, parse_patient  # noqa: E402
from screening.clinical.analytes import ANALYTE_BY_LOINC  # noqa: E402
from screening.clinical.child_pugh import _ALBUMIN_G_DL, _ASCITES_POINTS, _BILIRUBIN_MG_DL, _ENCEPHALOPATHY_POINTS, _INR  # noqa: E402
from screening.clinical.units import conversion_factor, round_significant  # noqa: E402
from screening.cohort.flat import row_to_profile  # noqa: E402
from screening.evaluators.explain import screen_trial  # noqa: E402
from screening.facts.resolve import PatientFacts  # noqa: E402
from screening.logic import CriterionKind, Outcome, Verdict  # noqa: E402
from screening.patient.model import (  # noqa: E402
    NEGATIVE_RESULTS,
    POSITIVE_RESULTS,
    ConditionStatus,
    ImagingFinding,
    MedicationStatus,
    Modality,
    Sex,
)
from screening.results import CriterionResult, Evidence, TrialResult  # noqa: E402
from screening.results import _new, _set_dict, _set_extra, _set_fields_set, _set_private  # noqa: E402  (the --direct variant)


class OutsideSubset(Exception):
    """The profile holds something the hand-written function does not restate."""


# -- constants ---------------------------------------------------------------------------------

MET, NOT_MET, UNKNOWN, NOT_APPLICABLE = Outcome.MET, Outcome.NOT_MET, Outcome.UNKNOWN, Outcome.NOT_APPLICABLE
INCLUSION, EXCLUSION = CriterionKind.INCLUSION, CriterionKind.EXCLUSION
OUTCOME = {True: MET, False: NOT_MET, None: UNKNOWN}
WORD = {True: "Met", False: "Not met", None: "Unknown"}
ACTIVE_CONDITION, ACTIVE_MEDICATION = ConditionStatus.ACTIVE, MedicationStatus.ACTIVE
ULTRASOUND, CIRRHOSIS, HCC = Modality.ULTRASOUND, ImagingFinding.CIRRHOSIS, ImagingFinding.HEPATOCELLULAR_CARCINOMA
FEMALE = Sex.FEMALE
B_LOW, B_HIGH = _BILIRUBIN_MG_DL
A_LOW, A_HIGH = _ALBUMIN_G_DL
I_LOW, I_HIGH = _INR
USED_ANALYTES = ("bilirubin", "albumin", "inr", "hcg")
ANALYTE = {code: a.name for code, a in ANALYTE_BY_LOINC.items()}  # LOINC -> analyte name
DATE_MIN = dt.date.min

CONDITION_LISTS = ("hepatitis_b", "malignant_neoplasm", "hepatitis_c", "hiv", "diabetes_mellitus", "severe_heart_disease",
                   "kidney_disease", "respiratory_disease", "alcohol_dependence", "nash", "transplant_status")
PROCEDURE_LISTS = ("organ_transplant_procedure", "stem_cell_therapy")
MEDICATION_LIST = "hbv_antivirals"

NOT_REVIEWED_CONDITIONS = ("problem list (conditions not reviewed)",)
NOT_REVIEWED_MEDICATIONS = ("medication list (not reviewed)",)
NOT_REVIEWED_PROCEDURES = ("procedure history (not reviewed)",)
MISSING_HBSAG = ("HBsAg (last 1 year)",)
REASON_HBSAG = "no HBsAg result in the last 1 year"
CP_IMPRECISE = ("more precise results for Child-Pugh class (a value recorded is censored, or values of one day conflict)",)
IMAGING_SOURCE = "imaging report"


def _child_pugh_table() -> dict[tuple[int, int], tuple[bool | None, str]]:
    """(lowest, highest total) -> (I2's value, its reason before the notes)."""
    table = {}
    for low in range(5, 16):
        for high in range(low, 16):
            classes = sorted({"A" if t <= 6 else "B" if t <= 9 else "C" for t in range(low, high + 1)})
            value = True if classes == ["B"] else False if "B" not in classes else None
            if value is None and len(classes) == 3:
                reason = "Child-Pugh class is unknown (needed: B)"
            else:
                reason = f"Child-Pugh class is {' or '.join(classes)}" + ("" if value else ", not B" if value is False else "; cannot tell whether B")
            table[low, high] = (value, f"{WORD[value]}: {reason}")
    return table


CHILD_PUGH = _child_pugh_table()


def _count(n: int, noun: str) -> str:
    return f"{n} {noun if n == 1 else noun + 's'}"


class _Prepared:
    """What the trial and the code lists give, read once (criterion texts, list titles, reason parts)."""

    def __init__(self, codelists, loaded) -> None:
        trial = loaded.trial
        self.criteria = {c.id: (c.id, c.kind, c.text) for c in trial.criteria}
        assert [c.id for c in trial.criteria] == ["I1", "I2", "I3", "I4", "E1", "E2", "E3", "E4", "E5", "E6", "E7"]
        assert not trial.caveats and trial.source.basis.value == "protocol_criteria"
        self.header = dict(trial_id=trial.id, title=trial.title, rules_version=trial.version, rules_hash=loaded.rules_hash, caveats=())
        title = {name: codelists[name].title for name in (*CONDITION_LISTS, *PROCEDURE_LISTS, MEDICATION_LIST)}
        self.title = title
        timing = {"hiv": "ever", "transplant_status": "ever", **{p: "ever" for p in PROCEDURE_LISTS}}
        # per list: (reason when not reviewed, "no ... among " prefix, "title [timing]: " prefix)
        self.cond = {}
        for name in (*CONDITION_LISTS, *PROCEDURE_LISTS, MEDICATION_LIST):
            t = timing.get(name, "active")
            what = "procedure history" if name in PROCEDURE_LISTS else "medication list" if name == MEDICATION_LIST else "problem list"
            self.cond[name] = (f"{title[name]} [{t}]: the {what} was not reviewed", f"no {title[name]} [{t}] among ", f"{title[name]} [{t}]: ")
        c = self.cond
        # the usual answers of the exclusions on a reviewed problem list with no match, by condition count text
        self.none_e3 = (c["hepatitis_c"][1], "; " + c["hiv"][1])
        self.none_e5 = tuple(("; " if i else "") + c[n][1] for i, n in enumerate(("diabetes_mellitus", "severe_heart_disease", "kidney_disease", "respiratory_disease")))
        self.none_e6 = tuple(("; " if i else "") + c[n][1] for i, n in enumerate(("alcohol_dependence", "nash")))
        self.unreviewed_e5 = "Unknown: " + "; ".join(c[n][0] for n in ("diabetes_mellitus", "severe_heart_disease", "kidney_disease", "respiratory_disease")) + "."
        self.unreviewed_e6 = "Unknown: " + "; ".join(c[n][0] for n in ("alcohol_dependence", "nash")) + "."
        self.unreviewed_e3 = "Unknown: " + "; ".join(c[n][0] for n in ("hepatitis_c", "hiv")) + "."
        self.factors: dict[tuple[str, str], float] = {}


_PREPARED: dict[tuple[int, int], _Prepared] = {}
_WINDOWS: dict[dt.date, tuple[dt.date, dt.date, dt.date]] = {}


def _windows(as_of: dt.date) -> tuple[dt.date, dt.date, dt.date]:
    """Starts of the look-back windows: labs and assessments (90 days), hCG (30 days), imaging (6 months)."""
    found = _WINDOWS.get(as_of)
    if found is None:
        day = as_of.toordinal()
        found = _WINDOWS[as_of] = (dt.date.fromordinal(day - 90), dt.date.fromordinal(day - 30), months_back(as_of, 6))
    return found


# -- combining ---------------------------------------------------------------------------------


def _any(*kids):
    """Kleene OR of (value, evidence, missing, reason) answers, explained as explain._combine does."""
    value = False
    for k in kids:
        if k[0] is True:
            return _combined(True, kids)
        if k[0] is None:
            value = None
    return _combined(value, kids)


def _all(*kids):
    """Kleene AND, as :func:`_any`."""
    value = True
    for k in kids:
        if k[0] is False:
            return _combined(False, kids)
        if k[0] is None:
            value = None
    return _combined(value, kids)


def _combined(value, kids):
    """The children's evidence and reasons for ``value``: of those that decided it (of all when
    unknown, with the unknown ones' missing items and reasons)."""
    if value is None:
        und = [k for k in kids if k[0] is None]
        return (None, tuple(e for k in kids for e in k[1]), tuple(dict.fromkeys(m for k in und for m in k[2])),
                "; ".join(dict.fromkeys(k[3] for k in und)))
    rel = [k for k in kids if k[0] is value]
    return (value, tuple(e for k in rel for e in k[1]), (), "; ".join(dict.fromkeys(k[3] for k in rel)))


EV, CR, TR = Evidence.trusted, CriterionResult.trusted, TrialResult.trusted  # the result constructors the function calls by name


def _ev_key(ev: Evidence) -> tuple:
    d = ev.__dict__
    return (d["date"] or DATE_MIN, d["fact"], d["label"], str(d["value"]), d["source"] or "")


def _sorted_unique(evidence: tuple) -> tuple:
    if len(evidence) < 2:
        return evidence
    seen = {}
    for ev in evidence:
        d = ev.__dict__
        seen.setdefault((d["fact"], d["label"], type(d["value"]), d["value"], d["low"], d["high"], d["unit"], d["date"], d["source"], d["points"], d["parts"]), ev)
    return tuple(sorted(seen.values(), key=_ev_key))


def _criterion(spec, value, evidence, missing, reason) -> CriterionResult:
    cid, kind, text = spec
    return CR(id=cid, kind=kind, text=text, outcome=OUTCOME[value], reason=f"{WORD[value]}: {reason}.",
                                   evidence=_sorted_unique(evidence), missing=tuple(sorted(set(missing))) if value is None else ())


# -- the trial ---------------------------------------------------------------------------------


def screen_nct04357600(profile, as_of: dt.date, codelists, loaded) -> TrialResult:
    P = _PREPARED.get((id(codelists), id(loaded)))
    if P is None:
        P = _PREPARED[id(codelists), id(loaded)] = _Prepared(codelists, loaded)
    lab_start, hcg_start, imaging_start = _windows(as_of)
    crit = P.criteria

    # -- one pass over each record list ----------------------------------------------------------
    bili = alb = inr = hcg = None
    for obs in profile.observations:
        if obs.date > as_of:
            continue  # the reference drops results after the screening date before reading them
        name = ANALYTE.get(obs.loinc)
        if name is None:
            continue
        if name not in USED_ANALYTES or obs.comparator is not None or obs.control is not None:
            raise OutsideSubset(f"observation {obs.loinc} ({name}, comparator {obs.comparator}, control {obs.control})")
        if name == "hcg":
            if hcg is not None:
                raise OutsideSubset("two hCG results")
            if obs.result is None:
                continue
            hcg = obs
            continue
        unit = obs.unit or "1"
        factor = P.factors.get((name, unit))
        if factor is None:
            try:
                factor = P.factors[name, unit] = conversion_factor(name, unit)
            except Exception as exc:
                raise OutsideSubset(f"{name} in {unit!r}: {exc}") from None
        value = round_significant(obs.value * factor)
        if not math.isfinite(value) or value < 0:
            raise OutsideSubset(f"{name} value {obs.value}")
        if name == "bilirubin":
            if bili is not None:
                raise OutsideSubset("two bilirubin results")
            bili = (obs, value)
        elif name == "albumin":
            if alb is not None:
                raise OutsideSubset("two albumin results")
            alb = (obs, value)
        else:
            if inr is not None:
                raise OutsideSubset("two INR results")
            inr = (obs, value)
    ascites = enceph = None
    for a in profile.assessments:
        if a.date > as_of:
            continue
        if a.name.value == "ascites_grade":
            if ascites is not None:
                raise OutsideSubset("two ascites grades")
            ascites = a
        else:
            if enceph is not None:
                raise OutsideSubset("two encephalopathy grades")
            enceph = a
    imaging = profile.imaging
    if len(imaging) > 1:
        raise OutsideSubset("more than one imaging study")
    study = imaging[0] if imaging and imaging[0].date <= as_of else None

    # -- I1 age --------------------------------------------------------------------------------
    birth = profile.birth_date
    if birth is None:
        i1 = _criterion(crit["I1"], None, (), ("birth date",), "Age is missing, which cannot be checked against the range [18, 65]")
    else:
        if birth > as_of:
            raise OutsideSubset("birth date after the screening date")
        years = as_of.year - birth.year - ((as_of.month, as_of.day) < (birth.month, birth.day))
        ok = 18 <= years <= 65
        i1 = CR(
            id="I1", kind=INCLUSION, text=crit["I1"][2], outcome=MET if ok else NOT_MET,
            reason=f"{'Met' if ok else 'Not met'}: Age is {years} years, which {'meets' if ok else 'does not meet'} the range [18, 65].",
            evidence=(EV(fact="age", label="Age", value=years, unit="a", source=f"birth_date: {birth.isoformat()}"),))

    # -- I2 Child-Pugh class B -------------------------------------------------------------------
    parts = []
    missing = []
    notes = []
    low = high = 0
    if bili is not None and bili[0].date >= lab_start:
        obs, v = bili
        p = 1 if v < B_LOW else 2 if v <= B_HIGH else 3
        low += p
        high += p
        u = obs.unit
        parts.append(EV(fact="lab.bilirubin", label="Total bilirubin", value=round_significant(v, 6), unit="mg/dL", date=obs.date,
                                      source=f"LOINC {obs.loinc}: {round_significant(obs.value, 6):g}{'' if u in (None, '1') else ' ' + u}", points=p))
    else:
        low += 1
        high += 3
        missing.append("Total bilirubin (last 90 days)")
        if bili is not None:
            notes.append(f"the latest total bilirubin, on {bili[0].date.isoformat()}, is older than 90 days")
    if alb is not None and alb[0].date >= lab_start:
        obs, v = alb
        p = 1 if v > A_HIGH else 2 if v >= A_LOW else 3
        low += p
        high += p
        u = obs.unit
        parts.append(EV(fact="lab.albumin", label="Albumin", value=round_significant(v, 6), unit="g/dL", date=obs.date,
                                      source=f"LOINC {obs.loinc}: {round_significant(obs.value, 6):g}{'' if u in (None, '1') else ' ' + u}", points=p))
    else:
        low += 1
        high += 3
        missing.append("Albumin (last 90 days)")
        if alb is not None:
            notes.append(f"the latest albumin, on {alb[0].date.isoformat()}, is older than 90 days")
    if inr is not None and inr[0].date >= lab_start:
        obs, v = inr
        p = 1 if v < I_LOW else 2 if v <= I_HIGH else 3
        low += p
        high += p
        u = obs.unit
        parts.append(EV(fact="lab.inr", label="INR", value=round_significant(v, 6), unit="1", date=obs.date,
                                      source=f"LOINC {obs.loinc}: {round_significant(obs.value, 6):g}{'' if u in (None, '1') else ' ' + u}", points=p))
    else:
        low += 1
        high += 3
        missing.append("INR or prothrombin time with control (last 90 days)")
        if inr is not None:
            notes.append(f"the latest INR, on {inr[0].date.isoformat()}, is older than 90 days")
    if ascites is not None and ascites.date >= lab_start:
        g = ascites.grade
        p = _ASCITES_POINTS[g]
        low += p
        high += p
        parts.append(EV(fact="assessment.ascites_grade", label="Ascites grade", value=g, date=ascites.date, source="assessment", points=p))
    else:
        low += 1
        high += 3
        missing.append("Ascites grade (last 90 days)")
        if ascites is not None:
            notes.append(f"the latest ascites grade, on {ascites.date.isoformat()}, is older than 90 days")
    if enceph is not None and enceph.date >= lab_start:
        g = enceph.grade
        p = _ENCEPHALOPATHY_POINTS[g]
        low += p
        high += p
        parts.append(EV(fact="assessment.encephalopathy_grade", label="Encephalopathy grade", value=g, date=enceph.date,
                                      source="assessment", points=p))
    else:
        low += 1
        high += 3
        missing.append("Encephalopathy grade (last 90 days)")
        if enceph is not None:
            notes.append(f"the latest encephalopathy grade, on {enceph.date.isoformat()}, is older than 90 days")
    exact = low == high
    score = EV(fact="child_pugh.score", label="Child-Pugh score", value=low if exact else None, low=None if exact else float(low),
                             high=None if exact else float(high), parts=tuple(parts))
    value, reason = CHILD_PUGH[low, high]
    if notes:
        reason = f"{reason} ({'; '.join(notes)})"
    i2 = CR(id="I2", kind=INCLUSION, text=crit["I2"][2], outcome=OUTCOME[value], reason=reason + ".", evidence=(score,),
                                 missing=tuple(sorted(set(missing or CP_IMPRECISE))) if value is None else ())

    # -- I3 ultrasound shows cirrhosis; E2's imaging leaf ----------------------------------------------
    if study is not None and study.date >= imaging_start:
        findings = study.findings
        source = IMAGING_SOURCE if study.report is None else f"{IMAGING_SOURCE}: {study.report}"
        if findings is None:
            ev = (EV(fact="imaging", label=study.modality.value, value="findings not coded", date=study.date, source=source),)
            hcc_leaf = (None, ev, ("structured findings of the imaging report (last 6 months)",),
                        "the imaging in the last 6 months has no coded findings; cannot tell whether it shows hepatocellular carcinoma")
        else:
            ev = (EV(fact="imaging", label=study.modality.value, value=", ".join(sorted(findings)) or "no findings", date=study.date,
                                   source=source),)
            hcc_leaf = (True, ev, (), "imaging shows hepatocellular carcinoma") if HCC in findings else \
                (False, ev, (), "imaging in the last 6 months does not show hepatocellular carcinoma")
        if study.modality is not ULTRASOUND:
            i3 = _criterion(crit["I3"], None, (), ("ultrasound (last 6 months)",), "no ultrasound in the last 6 months")
        elif findings is None:
            i3 = _criterion(crit["I3"], None, ev, ("structured findings of the ultrasound report (last 6 months)",),
                            "the ultrasound in the last 6 months has no coded findings; cannot tell whether it shows cirrhosis")
        elif CIRRHOSIS in findings:
            i3 = CR(id="I3", kind=INCLUSION, text=crit["I3"][2], outcome=MET, reason="Met: ultrasound shows cirrhosis.", evidence=ev)
        else:
            i3 = CR(id="I3", kind=INCLUSION, text=crit["I3"][2], outcome=NOT_MET,
                                         reason="Not met: ultrasound in the last 6 months does not show cirrhosis.", evidence=ev)
    else:
        older = study is not None  # a study before the window (one after the screening date is not one)
        hcc_leaf = (None, (), ("imaging (last 6 months)",),
                    f"no imaging in the last 6 months (the latest imaging, on {study.date.isoformat()}, is older than 6 months)" if older else "no imaging in the last 6 months")
        i3 = _criterion(crit["I3"], None, (), ("ultrasound (last 6 months)",),
                        f"no ultrasound in the last 6 months (the latest ultrasound, on {study.date.isoformat()}, is older than 6 months)"
                        if older and study.modality is ULTRASOUND else "no ultrasound in the last 6 months")

    # -- conditions: one pass, by code list --------------------------------------------------------
    conditions = profile.conditions
    by_list: dict[str, list] = {}
    if conditions is not None:
        n_conditions = _count(len(conditions), "condition")
        for c in conditions:
            if c.snomed is not None or c.onset is not None or c.resolved is not None or c.status is not ACTIVE_CONDITION:
                raise OutsideSubset(f"condition {c.icd10 or c.snomed} with status, dates or a SNOMED code")
            lists = codelists.for_condition(c.icd10, None)
            if lists:
                ev = None
                for name in lists:
                    if name in CONDITION_LISTS:
                        if ev is None:
                            ev = EV(fact="condition", label=c.display or c.icd10, value=c.icd10, source="condition active")
                        by_list.setdefault(name, []).append(ev)
    cond = P.cond

    def condition_leaf(name):
        if conditions is None:
            return (None, (), NOT_REVIEWED_CONDITIONS, cond[name][0])
        hits = by_list.get(name)
        if not hits:
            return (False, (), (), cond[name][1] + n_conditions)
        return (True, tuple(hits), (), cond[name][2] + ", ".join(sorted({e.__dict__["label"] for e in hits})))

    # -- I4 hepatitis B (condition or HBsAg) and an antiviral ----------------------------------------
    medications = profile.medications
    if medications is None:
        med_leaf = (None, (), NOT_REVIEWED_MEDICATIONS, cond[MEDICATION_LIST][0])
    else:
        med_hits = []
        for m in medications:
            if m.ingredients or m.rxnorm is not None or m.start is not None or m.end is not None or m.status is not ACTIVE_MEDICATION:
                raise OutsideSubset(f"medication {m.name} with ingredients, RxNorm, dates or a status")
            matched = codelists.for_medication((m.name,), m.atc, None).get(MEDICATION_LIST)
            if matched:
                med_hits.append(EV(fact="medication", label=m.name, value=m.atc or (matched if matched.__class__ is str else None),
                                                 source="medication active"))
        if med_hits:
            med_leaf = (True, tuple(med_hits), (), cond[MEDICATION_LIST][2] + ", ".join(sorted({e.__dict__["label"] for e in med_hits})))
        else:
            med_leaf = (False, (), (), cond[MEDICATION_LIST][1] + _count(len(medications), "medication"))
    hbv = condition_leaf("hepatitis_b")
    if hbv[0] is True:
        aetiology = hbv
    elif hbv[0] is False:
        aetiology = (None, (), MISSING_HBSAG, REASON_HBSAG)
    else:
        aetiology = (None, (), hbv[2] + MISSING_HBSAG, f"{hbv[3]}; {REASON_HBSAG}")
    i4 = _criterion(crit["I4"], *_all(aetiology, med_leaf))

    # -- E1 consent refused ----------------------------------------------------------------------
    consent = profile.consent
    if consent is None:
        e1 = _criterion(crit["E1"], None, (), ("consent",), "Consent is not recorded (needed: refused)")
    else:
        refused = consent.value == "refused"
        e1 = CR(
            id="E1", kind=EXCLUSION, text=crit["E1"][2], outcome=MET if refused else NOT_MET,
            reason="Met: Consent is refused." if refused else f"Not met: Consent is {consent.value.replace('_', ' ')}, not refused.",
            evidence=(EV(fact="consent", label="Consent", value=consent.value, source="consent"),))

    # -- E2 malignancy (condition or HCC on imaging) -----------------------------------------------
    e2 = _criterion(crit["E2"], *_any(condition_leaf("malignant_neoplasm"), hcc_leaf))

    # -- E3, E5, E6: conditions only -------------------------------------------------------------
    if conditions is None:
        e3 = CR(id="E3", kind=EXCLUSION, text=crit["E3"][2], outcome=UNKNOWN, reason=P.unreviewed_e3, missing=NOT_REVIEWED_CONDITIONS)
        e5 = CR(id="E5", kind=EXCLUSION, text=crit["E5"][2], outcome=UNKNOWN, reason=P.unreviewed_e5, missing=NOT_REVIEWED_CONDITIONS)
        e6 = CR(id="E6", kind=EXCLUSION, text=crit["E6"][2], outcome=UNKNOWN, reason=P.unreviewed_e6, missing=NOT_REVIEWED_CONDITIONS)
    else:
        if "hepatitis_c" in by_list or "hiv" in by_list:
            e3 = _criterion(crit["E3"], *_any(condition_leaf("hepatitis_c"), condition_leaf("hiv")))
        else:
            e3 = CR(id="E3", kind=EXCLUSION, text=crit["E3"][2], outcome=NOT_MET,
                                         reason=f"Not met: {n_conditions.join(P.none_e3)}{n_conditions}.")
        if "diabetes_mellitus" in by_list or "severe_heart_disease" in by_list or "kidney_disease" in by_list or "respiratory_disease" in by_list:
            e5 = _criterion(crit["E5"], *_any(condition_leaf("diabetes_mellitus"), condition_leaf("severe_heart_disease"),
                                              condition_leaf("kidney_disease"), condition_leaf("respiratory_disease")))
        else:
            e5 = CR(id="E5", kind=EXCLUSION, text=crit["E5"][2], outcome=NOT_MET,
                                         reason=f"Not met: {n_conditions.join(P.none_e5)}{n_conditions}.")
        if "alcohol_dependence" in by_list or "nash" in by_list:
            e6 = _criterion(crit["E6"], *_any(condition_leaf("alcohol_dependence"), condition_leaf("nash")))
        else:
            e6 = CR(id="E6", kind=EXCLUSION, text=crit["E6"][2], outcome=NOT_MET,
                                         reason=f"Not met: {n_conditions.join(P.none_e6)}{n_conditions}.")

    # -- E4 pregnancy or lactation, for women of child-bearing potential ---------------------------
    sex = profile.sex
    if sex is None:
        sex_leaf = (None, (), ("sex",), "Sex is not recorded (needed: female)")
    elif sex is FEMALE:
        sex_leaf = (True, (EV(fact="sex", label="Sex", value="female", source="sex"),), (), "Sex is female")
    else:
        sex_leaf = (False, (EV(fact="sex", label="Sex", value=sex.value, source="sex"),), (), f"Sex is {sex.value}, not female")
    cbp = profile.childbearing_potential
    if cbp is None:
        cbp_leaf = (None, (), ("child-bearing potential",), "Child-bearing potential is not recorded (needed: yes)")
    else:
        cbp_leaf = (cbp, (EV(fact="childbearing_potential", label="Child-bearing potential", value=cbp, source="childbearing_potential"),),
                    (), "Child-bearing potential: yes" if cbp else "Child-bearing potential: no (needed: yes)")
    applies = _all(sex_leaf, cbp_leaf)
    if applies[0] is False:
        e4 = CR(id="E4", kind=EXCLUSION, text=crit["E4"][2], outcome=NOT_APPLICABLE, reason=f"Not applicable: {applies[3]}.",
                                     evidence=_sorted_unique(applies[1]))
    else:
        if hcg is not None and hcg.date >= hcg_start:
            r = hcg.result
            sign = True if r in POSITIVE_RESULTS else False if r in NEGATIVE_RESULTS else None
            hev = (EV(fact="lab.hcg", label="hCG pregnancy test", value=r.value, date=hcg.date, source=f"LOINC {hcg.loinc}"),)
            hcg_leaf = (True, hev, (), f"hCG pregnancy test is {r.value}") if sign is True else \
                (False, hev, (), f"hCG pregnancy test is {r.value}, not positive") if sign is False else \
                (None, hev, ("hCG pregnancy test: a conclusive result",), f"hCG pregnancy test is {r.value}: inconclusive")
        else:
            hcg_leaf = (None, (), ("hCG pregnancy test (last 30 days)",),
                        f"no hCG pregnancy test result in the last 30 days (the latest hCG pregnancy test, on {hcg.date.isoformat()}, is older than 30 days)"
                        if hcg is not None else "no hCG pregnancy test result in the last 30 days")
        lactating = profile.lactating
        if lactating is None:
            lact_leaf = (None, (), ("lactating",), "Lactating is not recorded (needed: yes)")
        else:
            lact_leaf = (lactating, (EV(fact="lactating", label="Lactating", value=lactating, source="lactating"),), (),
                         "Lactating: yes" if lactating else "Lactating: no (needed: yes)")
        rule = _any(hcg_leaf, lact_leaf)
        if applies[0] is True:
            e4 = _criterion(crit["E4"], rule[0], applies[1] + rule[1], rule[2], rule[3])
        elif rule[0] is False:  # applicability unknown, but the exclusion passes either way
            e4 = _criterion(crit["E4"], False, applies[1] + rule[1], (), rule[3])
        else:
            e4 = _criterion(crit["E4"], None, applies[1] + rule[1], applies[2] + rule[2],
                            f"{rule[3]}; whether the criterion applies is unknown: {applies[3]}")

    # -- E7 transplant or stem-cell therapy --------------------------------------------------------
    procedures = profile.procedures
    if procedures is None:
        proc_leaves = [(None, (), NOT_REVIEWED_PROCEDURES, cond[name][0]) for name in PROCEDURE_LISTS]
    else:
        proc_hits: dict[str, list] = {}
        for p in procedures:
            if p.date is not None or p.code is not None:
                raise OutsideSubset(f"procedure {p.kind or p.code} with a date or a code")
            lists = codelists.for_procedure(p.kind, None, None)
            for name in PROCEDURE_LISTS:
                if name in lists:
                    proc_hits.setdefault(name, []).append(
                        EV(fact="procedure", label=p.display or p.kind, value=p.kind, source="procedure"))
        n_procedures = _count(len(procedures), "procedure")
        proc_leaves = [(True, tuple(proc_hits[name]), (), cond[name][2] + ", ".join(sorted({e.__dict__["label"] for e in proc_hits[name]})))
                       if name in proc_hits else (False, (), (), cond[name][1] + n_procedures) for name in PROCEDURE_LISTS]
    e7 = _criterion(crit["E7"], *_any(*proc_leaves, condition_leaf("transplant_status")))

    # -- the verdict -----------------------------------------------------------------------------
    criteria = (i1, i2, i3, i4, e1, e2, e3, e4, e5, e6, e7)
    outcomes = [c.__dict__["outcome"] for c in criteria]
    deciding = tuple(cid for cid, o in zip(("I1", "I2", "I3", "I4"), outcomes[:4]) if o is NOT_MET) + \
        tuple(cid for cid, o in zip(("E1", "E2", "E3", "E4", "E5", "E6", "E7"), outcomes[4:]) if o is MET)
    if deciding:
        verdict, missing_all = Verdict.INELIGIBLE, ()
    elif UNKNOWN in outcomes:
        verdict = Verdict.UNDETERMINED
        missing_all = tuple(sorted({m for c in criteria if c.__dict__["outcome"] is UNKNOWN for m in c.__dict__["missing"]}))
    else:
        verdict, missing_all = Verdict.ELIGIBLE, ()
    return TR(**P.header, verdict=verdict, deciding=deciding, missing=missing_all, criteria=criteria)


# -- a variant: the same code, result objects built without ``trusted``'s keyword merging -----------
# ``trusted`` merges the keywords into every field's default and records which were passed; these
# write the full field dict in declaration order (the JSON is the same; ``model_fields_set`` is
# then every field, which nothing in the JSON contract reads).

_EV_FIELDS, _CR_FIELDS, _TR_FIELDS = (frozenset(c.model_fields) for c in (Evidence, CriterionResult, TrialResult))


def _ev_direct(fact, label, value=None, low=None, high=None, unit=None, date=None, source=None, points=None, parts=()):
    m = _new(Evidence)
    _set_dict(m, {"fact": fact, "label": label, "value": value, "low": low, "high": high, "unit": unit, "date": date, "source": source,
                  "points": points, "parts": parts})
    _set_fields_set(m, set(_EV_FIELDS))
    _set_extra(m, None)
    _set_private(m, None)
    return m


def _cr_direct(id, kind, text, outcome, reason, evidence=(), missing=()):  # noqa: A002
    m = _new(CriterionResult)
    _set_dict(m, {"id": id, "kind": kind, "text": text, "outcome": outcome, "reason": reason, "evidence": evidence, "missing": missing})
    _set_fields_set(m, set(_CR_FIELDS))
    _set_extra(m, None)
    _set_private(m, None)
    return m


def _tr_direct(trial_id, title, rules_version, rules_hash, verdict, criteria, deciding=(), missing=(), caveats=()):
    m = _new(TrialResult)
    _set_dict(m, {"trial_id": trial_id, "title": title, "rules_version": rules_version, "rules_hash": rules_hash, "verdict": verdict,
                  "deciding": deciding, "missing": missing, "caveats": caveats, "criteria": criteria})
    _set_fields_set(m, set(_TR_FIELDS))
    _set_extra(m, None)
    _set_private(m, None)
    return m


def direct_variant():
    """``screen_nct04357600`` (and its ``_criterion``) compiled against the direct constructors."""
    import types

    namespace = dict(globals(), EV=_ev_direct, CR=_cr_direct, TR=_tr_direct)
    namespace["_criterion"] = types.FunctionType(_criterion.__code__, namespace, "_criterion")
    return types.FunctionType(screen_nct04357600.__code__, namespace, "screen_nct04357600_direct")


# -- the measurement ---------------------------------------------------------------------------


def _first_difference(a: str, b: str) -> str:
    i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"at char {i}:\n  reference: ...{a[max(0, i - 200):i + 200]}\n  hand:      ...{b[max(0, i - 200):i + 200]}"


def _recipe(model, makers):
    """A result object as (its constructor, scalar fields, nested fields as recipes), to rebuild it
    with ``makers[class]`` from the fields the hand-written code passed."""
    d, passed = model.__dict__, model.__pydantic_fields_set__
    nested = {k: tuple(_recipe(x, makers) for x in d[k]) for k in ("criteria", "evidence", "parts") if k in passed and d[k]}
    return (makers[type(model)], {k: d[k] for k in passed if k not in nested}, nested)


TRUSTED = {Evidence: Evidence.trusted, CriterionResult: CriterionResult.trusted, TrialResult: TrialResult.trusted}
DIRECT = {Evidence: _ev_direct, CriterionResult: _cr_direct, TrialResult: _tr_direct}
NOTHING = dict.fromkeys(TRUSTED, lambda **fields: None)  # the walk over the recipe alone


def _rebuild(recipe):
    make, scalars, nested = recipe
    if not nested:
        return make(**scalars)
    return make(**scalars, **{k: tuple([_rebuild(r) for r in v]) for k, v in nested.items()})


def _objects(model) -> int:
    d = model.__dict__
    return 1 + sum(_objects(x) for k in ("criteria", "evidence", "parts") for x in d.get(k, ()))


def perturbed_check(rules, loaded, n: int = 3000) -> tuple[int, int, int]:
    """The paths the generator never takes but the function supports (missing sex, child-bearing
    potential, lactating, birth date or consent; CT/MRI studies, report texts, HCC findings, records
    after the screening date; indeterminate or other-worded hCG results; ATC-coded antivirals, HIV,
    alcohol, malignancy conditions with displays; stem-cell procedures; empty medication lists):
    (identical, different, outside the subset) over ``n`` randomly altered flat profiles."""
    import random

    rng = random.Random(1)
    same = differ = outside = 0
    for r in synthetic_flat(n, seed=7).to_dict("records"):
        d = parse_patient(row_to_profile(r)).model_dump(mode="json", exclude_none=True)
        for k in ("sex", "childbearing_potential", "lactating", "birth_date", "consent"):
            if rng.random() < 0.15:
                d.pop(k, None)
        if d.get("imaging"):
            study = d["imaging"][0]
            if rng.random() < 0.3:
                study["modality"] = rng.choice(["ct", "mri"])
            if rng.random() < 0.2:
                study["report"] = "coarse liver"
            if rng.random() < 0.1:
                study["findings"] = ["hepatocellular_carcinoma", "cirrhosis"]
            if rng.random() < 0.05:
                study["date"] = "2027-01-01"
        for o in d["observations"]:
            if o.get("result") and rng.random() < 0.2:
                o["result"] = rng.choice(["indeterminate", "detected", "nonreactive"])
            if rng.random() < 0.05:
                o["date"] = "2026-12-01"
        for a in d.get("assessments", []):
            if rng.random() < 0.05:
                a["date"] = "2026-12-01"
        if d.get("medications") and rng.random() < 0.2:
            d["medications"].append({"name": "J05AF10", "atc": "J05AF10"})
        if d.get("conditions"):
            for extra, p in (({"icd10": "B20", "display": "HIV disease"}, 0.2), ({"icd10": "F10.2"}, 0.2), ({"icd10": "C22.0", "display": "HCC"}, 0.1)):
                if rng.random() < p:
                    d["conditions"].append(extra)
        if d.get("procedures") is not None and rng.random() < 0.2:
            d["procedures"].append({"kind": "stem_cell_therapy", "display": "MSC infusion"})
        if rng.random() < 0.05:
            d["medications"] = []
        profile = parse_patient(d)
        reference = screen_trial(loaded, PatientFacts(profile, AS_OF, loaded.trial.defaults, rules.codelists)).model_dump_json()
        try:
            hand = screen_nct04357600(profile, AS_OF, rules.codelists, loaded).model_dump_json()
        except OutsideSubset:
            outside += 1
            continue
        same, differ = same + (hand == reference), differ + (hand != reference)
    return same, differ, outside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the patients")
    parser.add_argument("--profile", action="store_true", help="also print cProfile's top lines for the hand-written function")
    args = parser.parse_args()
    import screening

    rules = load_rules(ROOT / "rules")
    loaded = rules.trials[TRIAL]
    defaults, codelists = loaded.trial.defaults, rules.codelists
    profiles = [parse_patient(row_to_profile(row)) for row in synthetic_flat(args.patients).to_dict("records")]
    print(f"screening imported from {screening.__file__}")

    # -- check: byte-identical JSON for every profile, both variants ------------------------------------
    direct = direct_variant()
    mismatches, outside, first = 0, [], None
    hands = []
    for profile in profiles:
        reference = screen_trial(loaded, PatientFacts(profile, AS_OF, defaults, codelists)).model_dump_json()
        try:
            hand = screen_nct04357600(profile, AS_OF, codelists, loaded)
            fast = direct(profile, AS_OF, codelists, loaded)
        except OutsideSubset as exc:
            outside.append((profile.id, str(exc)))
            hands.append(None)
            continue
        hands.append(hand)
        for got in (hand, fast):
            if got.model_dump_json() != reference:
                mismatches += 1
                if first is None:
                    first = f"{profile.id} {_first_difference(reference, got.model_dump_json())}"
    print(f"{len(profiles)} profiles: {mismatches} mismatches (either variant), {len(outside)} outside the hand-written subset")
    if first:
        print("first difference:", first)
    if outside:
        print("first outside the subset:", outside[0])
    if mismatches:
        raise SystemExit("the measurement does not count: the outputs differ")
    same, differ, off = perturbed_check(rules, loaded)
    print(f"altered profiles (paths the generator never takes): {same} identical, {differ} different, {off} outside the subset")
    if differ:
        raise SystemExit("the measurement does not count: the outputs differ on altered profiles")
    covered = [p for p, h in zip(profiles, hands) if h is not None]
    recipes = [tuple(_recipe(h, makers) for makers in (TRUSTED, DIRECT, NOTHING)) for h in hands if h is not None]
    n_objects = statistics.mean(_objects(h) for h in hands if h is not None)

    # -- timing, interleaved per patient -----------------------------------------------------------
    clock = time.perf_counter
    ref_t, hand_t, direct_t, floor_t, floor_direct_t, walk_t = [], [], [], [], [], []
    for _ in range(args.rounds):
        for profile, (recipe, recipe_direct, recipe_walk) in zip(covered, recipes):
            t0 = clock()
            screen_trial(loaded, PatientFacts(profile, AS_OF, defaults, codelists))
            t1 = clock()
            screen_nct04357600(profile, AS_OF, codelists, loaded)
            t2 = clock()
            direct(profile, AS_OF, codelists, loaded)
            t3 = clock()
            _rebuild(recipe)
            t4 = clock()
            _rebuild(recipe_direct)
            t5 = clock()
            _rebuild(recipe_walk)
            t6 = clock()
            floor_direct_t.append(t5 - t4)
            walk_t.append(t6 - t5)
            ref_t.append(t1 - t0)
            hand_t.append(t2 - t1)
            direct_t.append(t3 - t2)
            floor_t.append(t4 - t3)

    def row(name: str, values: list[float]) -> str:
        q = statistics.quantiles(values, n=100)
        return f"| {name:<58} | {statistics.median(values) * 1e6:8.1f} | {q[94] * 1e6:8.1f} |"

    print()
    print(f"{TRIAL}, 11 criteria, screening date {AS_OF}: {len(covered)} flat-table patients x {args.rounds} rounds, interleaved per patient")
    print(f"| {'µs per patient-trial':<58} | {'median':>8} | {'p95':>8} |")
    print(f"|{'-' * 60}|{'-' * 10}|{'-' * 10}|")
    print(row("reference: screen_trial(loaded, PatientFacts(...))", ref_t))
    print(row("hand-written: screen_nct04357600(profile, ...)", hand_t))
    print(row("hand-written, result objects built directly (--direct)", direct_t))
    print(row(f"floor: only rebuilding its ~{n_objects:.0f} result objects (trusted)", floor_t))
    print(row(f"floor: only rebuilding its ~{n_objects:.0f} result objects (direct)", floor_direct_t))
    print(row("  of which walking the rebuild recipe (no objects built)", walk_t))
    print(f"mismatches: {mismatches} (JSON byte-identical for all {len(covered)} profiles); outside the subset: {len(outside)}")
    print(f"median ratio reference / hand-written: {statistics.median(ref_t) / statistics.median(hand_t):.1f}x")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(5):
            for profile in covered:
                screen_nct04357600(profile, AS_OF, codelists, loaded)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
        print(out.getvalue())


if __name__ == "__main__":
    main()
