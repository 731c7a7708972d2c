"""The explaining evaluator: the reference semantics every other evaluator must match.

It walks a criterion's expression with one handler per node class (``HANDLERS``), combining
children with the Kleene connectives of :mod:`screening.logic`, and records as it goes the
evidence each node used, the data it misses and a plain reason. A handler prepares what depends
on the node only (thresholds in canonical units, the text of the rule) and returns the node's
evaluator over a patient's facts; a criterion is compiled so once and reused for every patient.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from .. import logic
from .._version import __version__
from ..clinical.analytes import ANALYTES
from ..clinical.units import conversion_factor, round_significant
from ..facts.catalog import FACTS
from ..facts.intervals import Interval, test, test_integer
from ..errors import EvaluatorGap
from ..facts.resolve import PatientFacts
from ..logic import Outcome, Truth
from ..patient.model import PatientProfile
from ..results import CriterionResult, Evidence, ScreeningResult, TrialResult
from ..rules.loader import LoadedTrial, RuleSet
from ..rules.model import (
    AllOf,
    AnyOf,
    AtLeast,
    Basis,
    Compare,
    Criterion,
    HasCondition,
    HasMedication,
    HasProcedure,
    ImagingFinding,
    Is,
    LabResult,
    Not,
    Op,
    Range,
    Timing,
    Trial,
    Window,
)

STUDY_DESCRIPTION_CAVEAT = (
    "The registry record publishes no eligibility criteria: these criteria are derived from the study "
    "description, not the protocol. Confirm eligibility with the study team."
)


class NodeResult(NamedTuple):
    value: Truth
    evidence: tuple[Evidence, ...] = ()
    missing: tuple[str, ...] = ()
    reason: str = ""


Evaluator = Callable[[PatientFacts], NodeResult]
Handler = Callable[[Any], Evaluator]  # a node -> its evaluator, with the node's own text prepared


def compile_node(expr: object) -> Evaluator:
    try:
        handler = HANDLERS[type(expr)]
    except KeyError:
        raise EvaluatorGap(f"the explaining evaluator has no handler for {type(expr).__name__}") from None
    return handler(expr)


def evaluate(expr: object, facts: PatientFacts) -> NodeResult:
    return compile_node(expr)(facts)


# -- connectives -----------------------------------------------------------------------------------


def _combine(value: Truth, children: Sequence[NodeResult], joiner: str) -> NodeResult:
    """Evidence of the children that decided ``value`` (of all when unknown); reasons of those
    children (of the unknown ones when unknown)."""
    if value is None:
        undecided = [c for c in children if c.value is None]
        missing = tuple(dict.fromkeys(m for c in undecided for m in c.missing))
        return NodeResult(value, tuple(e for c in children for e in c.evidence), missing, joiner.join(dict.fromkeys(c.reason for c in undecided)))
    relevant = [c for c in children if c.value is value]
    return NodeResult(value, tuple(e for c in relevant for e in c.evidence), (), joiner.join(dict.fromkeys(c.reason for c in relevant)))


def _connective(combine: Callable[[Iterable[Truth]], Truth]) -> Handler:
    def handler(expr: AllOf | AnyOf) -> Evaluator:
        operands = tuple(compile_node(e) for e in expr.of)

        def run(facts: PatientFacts) -> NodeResult:
            children = [operand(facts) for operand in operands]
            return _combine(combine(c.value for c in children), children, "; ")

        return run

    return handler


def _at_least(expr: AtLeast) -> Evaluator:
    operands, n = tuple(compile_node(e) for e in expr.of), expr.n

    def run(facts: PatientFacts) -> NodeResult:
        children = [operand(facts) for operand in operands]
        value = logic.at_least(n, (c.value for c in children))
        met = sum(c.value is True for c in children)
        result = _combine(value, children, "; ")
        return NodeResult(result.value, result.evidence, result.missing, f"{met} of {len(children)} hold, {n} needed: {result.reason}")

    return run


def _not(expr: Not) -> Evaluator:
    operand = compile_node(expr.of)

    def run(facts: PatientFacts) -> NodeResult:
        child = operand(facts)
        return NodeResult(logic.not_(child.value), child.evidence, child.missing, child.reason)

    return run


# -- numbers and categories ------------------------------------------------------------------------

_ACCEPT: dict[Op, Callable[[float], Interval]] = {
    Op.LT: lambda v: Interval(-math.inf, v, high_open=True),
    Op.LE: lambda v: Interval(-math.inf, v),
    Op.GT: lambda v: Interval(v, math.inf, low_open=True),
    Op.GE: lambda v: Interval(v, math.inf),
    Op.EQ: Interval.point,
    Op.NE: Interval.point,  # negated below
}
_VERB = {True: "meets", False: "does not meet", None: "cannot be checked against"}


def _threshold(fact: str, value: float, unit: str | None) -> float:
    spec = FACTS[fact]
    if spec.analyte is not None and unit is not None:
        return round_significant(value * conversion_factor(spec.analyte, unit))
    return value


def _describe_number(label: str, interval: Interval, unit: str | None, missing: bool) -> str:
    unit_text = _unit_text(unit)
    if missing and not interval.bounded and math.isinf(interval.low) and math.isinf(interval.high):
        return f"{label} is missing"
    if interval.is_point:
        return f"{label} is {interval.low:g}{unit_text}"
    low = f"{interval.low:g}" if math.isfinite(interval.low) else "-inf"
    high = f"{interval.high:g}" if math.isfinite(interval.high) else "inf"
    return f"{label} is between {low} and {high}{unit_text}"


def _noted(text: str, notes: Sequence[str]) -> str:
    """``text`` with the fact's notes (what its answer set aside, such as a result older than the
    look-back window) in parentheses, so a reader is not left looking for a record the answer saw."""
    return f"{text} ({'; '.join(notes)})" if notes else text


def imprecise(label: str) -> str:
    """What a number or category test misses when its fact is known, but not precisely enough to
    decide it (a censored value such as ``<17 umol/L``, or same-day values that disagree)."""
    return f"more precise results for {label} (a value recorded is censored, or values of one day conflict)"


def _number_test(fact_name: str, within: Window | None, accepted: Interval, negate: bool, wanted: str) -> Evaluator:
    check = test_integer if FACTS[fact_name].integer else test

    def run(facts: PatientFacts) -> NodeResult:
        fact = facts.number(fact_name, within)
        value = check(fact.interval, accepted)
        if negate:
            value = logic.not_(value)
        reason = f"{_noted(_describe_number(fact.label, fact.interval, fact.unit, bool(fact.missing)), fact.notes)}, which {_VERB[value]} {wanted}"
        missing = (fact.missing or (imprecise(fact.label),)) if value is None else ()
        return NodeResult(value, fact.evidence, missing, reason)

    return run


def _unit_text(unit: str | None) -> str:
    return {"a": " years", None: "", "1": ""}.get(unit, f" {unit}")


def _compare(expr: Compare) -> Evaluator:
    threshold = _threshold(expr.fact, expr.value, expr.unit)
    wanted = f"{expr.op.value} {expr.value:g}{_unit_text(expr.unit)}"
    return _number_test(expr.fact, expr.within, _ACCEPT[expr.op](threshold), expr.op is Op.NE, wanted)


def _range(expr: Range) -> Evaluator:
    low = _threshold(expr.fact, expr.min, expr.unit) if expr.min is not None else -math.inf
    high = _threshold(expr.fact, expr.max, expr.unit) if expr.max is not None else math.inf
    accepted = Interval(low, high, not expr.min_inclusive, not expr.max_inclusive)
    left = "[" if expr.min_inclusive else "("
    right = "]" if expr.max_inclusive else ")"
    lo = f"{expr.min:g}" if expr.min is not None else "-inf"
    hi = f"{expr.max:g}" if expr.max is not None else "inf"
    return _number_test(expr.fact, expr.within, accepted, False, f"the range {left}{lo}, {hi}{right}{_unit_text(expr.unit)}")


def _category_text(value: object) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else str(value).replace("_", " ")


def _is(expr: Is) -> Evaluator:
    name, accepted = expr.fact, expr.accepted
    wanted = " or ".join(sorted(_category_text(v) for v in accepted))
    every_value = len(FACTS[name].values)
    yes_no = all(isinstance(v, bool) for v in FACTS[name].values)

    def run(facts: PatientFacts) -> NodeResult:
        fact = facts.category(name)
        if not fact.possible:
            raise EvaluatorGap(f"{fact.label} has no possible value")
        value: Truth = True if fact.possible <= accepted else (False if not (fact.possible & accepted) else None)
        if value is None and len(fact.possible) == every_value:
            known = "is unknown" if fact.evidence else "is not recorded"
            reason = f"{fact.label} {known} (needed: {wanted})"
        elif yes_no:  # "Lactating: no (needed: yes)"
            reason = f"{fact.label}: {_category_text(next(iter(fact.possible)))}" + ("" if value else f" (needed: {wanted})")
        else:  # "Sex is male, not female"; "Child-Pugh class is A or B; cannot tell whether B"
            shown = " or ".join(sorted(_category_text(v) for v in fact.possible))
            reason = f"{fact.label} is {shown}" + ("" if value else f", not {wanted}" if value is False else f"; cannot tell whether {wanted}")
        return NodeResult(value, fact.evidence, (fact.missing or (imprecise(fact.label),)) if value is None else (), _noted(reason, fact.notes))

    return run


# -- records ---------------------------------------------------------------------------------------


def _finding(finding, reason: str) -> NodeResult:
    return NodeResult(finding.value, finding.evidence, finding.missing if finding.value is None else (), reason)


def _records(what: str, codes: str, timing: str, find: Callable[[PatientFacts], Any], none: str = "none") -> Evaluator:
    """A record question's reason; ``none`` words its answer when matching records were all set
    aside by their timing ("none current"), each then noted with how it ended."""

    def run(facts: PatientFacts) -> NodeResult:
        finding = find(facts)
        title = facts.codelists[codes].title
        if finding.value is False:
            if finding.notes:  # "Hepatitis B antiviral therapy [active]: none current (Viread 300 mg: stopped 2026-06-01)"
                return _finding(finding, _noted(f"{title} [{timing}]: {none}", finding.notes))
            return _finding(finding, f"no {title} [{timing}] among {finding.reviewed}")
        if finding.value is None and not finding.evidence:
            return NodeResult(None, (), finding.missing, f"{title} [{timing}]: the {what} was not reviewed")
        names = ", ".join(sorted({e.label for e in finding.evidence}))
        return _finding(finding, f"{title} [{timing}]: {names}" if finding.value else f"{title} [{timing}] cannot be placed in time: {names}")

    return run


def _timing(expr: HasCondition | HasMedication) -> str:
    return f"in the last {expr.within.describe()}" if expr.within else expr.timing.value  # a window goes with timing 'within'


def _none(expr: HasCondition | HasMedication) -> str:
    return "none current" if expr.timing is Timing.ACTIVE else "none in that time"


def _condition(expr: HasCondition) -> Evaluator:
    codes, timing, within = expr.codes, expr.timing, expr.within
    return _records("problem list", codes, _timing(expr), lambda facts: facts.condition(codes, timing, within), _none(expr))


def _medication(expr: HasMedication) -> Evaluator:
    codes, timing, within = expr.codes, expr.timing, expr.within
    return _records("medication list", codes, _timing(expr), lambda facts: facts.medication(codes, timing, within), _none(expr))


def _procedure(expr: HasProcedure) -> Evaluator:
    codes, within, at_least = expr.codes, expr.within, expr.at_least
    timing = f"in the last {within.describe()}" if within else "ever"
    if at_least > 1:
        timing += f", at least {at_least} times"
    return _records("procedure history", codes, timing, lambda facts: facts.procedure(codes, within, at_least), "none in that time")


def _imaging(expr: ImagingFinding) -> Evaluator:
    name, modality, within = expr.finding, expr.modality, expr.within
    kinds = "/".join(m.value for m in modality) or "imaging"
    shown = name.replace("_", " ")

    def run(facts: PatientFacts) -> NodeResult:
        finding = facts.imaging(name, modality, within)
        if finding.value:
            return _finding(finding, f"{kinds} shows {shown}")
        window = (within or facts.defaults.imaging_within).describe()
        if finding.value is None and finding.evidence:  # studies whose reports were not coded
            n = len(finding.evidence)
            studies = f"the {kinds} in the last {window} has" if n == 1 else f"{n} {kinds} studies in the last {window} have"
            return _finding(finding, f"{studies} no coded findings; cannot tell whether {'it shows' if n == 1 else 'they show'} {shown}")
        if finding.value is None:
            return NodeResult(None, (), finding.missing, _noted(f"no {kinds} in the last {window}", finding.notes))
        return _finding(finding, f"{kinds} in the last {window} does not show {shown}")

    return run


def _lab_result(expr: LabResult) -> Evaluator:
    analyte, result, within = expr.analyte, expr.result, expr.within
    positive, label = result == "positive", ANALYTES[analyte].display

    def run(facts: PatientFacts) -> NodeResult:
        finding = facts.lab_result(analyte, positive, within)
        if finding.value is None and not finding.evidence:
            window = (within or facts.defaults.lab_within).describe()
            return NodeResult(None, (), finding.missing, _noted(f"no {label} result in the last {window}", finding.notes))
        shown = " and ".join(sorted({str(e.value) for e in finding.evidence}))
        return _finding(finding, {True: f"{label} is {shown}", False: f"{label} is {shown}, not {result}", None: f"{label} is {shown}: inconclusive"}[finding.value])

    return run


HANDLERS: dict[type, Handler] = {
    AllOf: _connective(logic.all_of),
    AnyOf: _connective(logic.any_of),
    Not: _not,
    AtLeast: _at_least,
    Compare: _compare,
    Range: _range,
    Is: _is,
    LabResult: _lab_result,
    HasCondition: _condition,
    HasMedication: _medication,
    HasProcedure: _procedure,
    ImagingFinding: _imaging,
}

# -- criteria, trials, patients --------------------------------------------------------------------

_OUTCOME_WORD = {Outcome.MET: "Met", Outcome.NOT_MET: "Not met", Outcome.UNKNOWN: "Unknown", Outcome.NOT_APPLICABLE: "Not applicable"}


def _evidence_key(ev: Evidence) -> tuple:
    return (ev.date or dt.date.min, ev.fact, ev.label, str(ev.value), ev.source or "")


def _sorted_unique(items: Iterable[Evidence]) -> tuple[Evidence, ...]:
    """Evidence without repeats (equal JSON), sorted; most criteria have one piece or none."""
    if isinstance(items, tuple) and len(items) < 2:
        return items
    distinct = tuple({id(ev): ev for ev in items}.values())
    if len(distinct) < 2:
        return distinct
    unique = {ev.model_dump_json(): ev for ev in distinct}
    return tuple(sorted(unique.values(), key=_evidence_key))


_COMPILED_LIMIT = 4096
_compiled: dict[int, tuple[Criterion, Evaluator, Evaluator | None]] = {}  # by id(criterion), which the entry keeps alive


def _compiled_criterion(criterion: Criterion) -> tuple[Criterion, Evaluator, Evaluator | None]:
    """The criterion's rule and applicability compiled, once per criterion object."""
    entry = _compiled.get(id(criterion))
    if entry is None or entry[0] is not criterion:
        if len(_compiled) >= _COMPILED_LIMIT:
            _compiled.clear()
        applies_when = None if criterion.applies_when is None else compile_node(criterion.applies_when)
        entry = _compiled[id(criterion)] = (criterion, compile_node(criterion.rule), applies_when)
    return entry


_NOT_ASKED = NodeResult(None)  # the rule of a criterion that does not apply: neither evaluated nor reported


def evaluate_criterion(criterion: Criterion, facts: PatientFacts) -> CriterionResult:
    _, rule_of, applies_of = _compiled_criterion(criterion)
    if applies_of is None:
        rule = rule_of(facts)
        outcome = logic.outcome_of(rule.value)
        evidence, missing, reason = rule.evidence, rule.missing, rule.reason
    else:
        applies = applies_of(facts)
        rule = _NOT_ASKED if applies.value is False else rule_of(facts)  # a criterion that does not apply is not evaluated
        outcome = logic.applicable(applies.value, rule.value, criterion.kind)
        if outcome is Outcome.NOT_APPLICABLE:
            evidence, missing, reason = applies.evidence, (), applies.reason
        elif outcome is Outcome.UNKNOWN:
            evidence = applies.evidence + rule.evidence
            missing = tuple(dict.fromkeys((applies.missing if applies.value is None else ()) + rule.missing))
            reason = f"{rule.reason}; whether the criterion applies is unknown: {applies.reason}" if applies.value is None else rule.reason
        else:
            evidence, missing, reason = applies.evidence + rule.evidence, (), rule.reason
    return CriterionResult.trusted(
        id=criterion.id,
        kind=criterion.kind,
        text=criterion.text,
        outcome=outcome,
        reason=f"{_OUTCOME_WORD[outcome]}: {reason}.",
        evidence=_sorted_unique(evidence),
        missing=tuple(sorted(set(missing))) if outcome is Outcome.UNKNOWN else (),
    )


def trial_caveats(trial: Trial) -> tuple[str, ...]:
    """What every result of ``trial`` says before its verdict is relied on: that criteria derived
    from a study description are not the protocol's, then the rules file's own caveats."""
    return ((STUDY_DESCRIPTION_CAVEAT,) if trial.source.basis is Basis.STUDY_DESCRIPTION else ()) + trial.caveats


def trial_result(loaded: LoadedTrial, criteria: Sequence[CriterionResult]) -> TrialResult:
    """Assemble a trial's result from its criterion results: the verdict's one collapse point."""
    trial = loaded.trial
    verdict = logic.verdict((c.kind, c.outcome) for c in criteria)
    unknown = [c for c in criteria if c.outcome is Outcome.UNKNOWN]
    return TrialResult.trusted(
        trial_id=trial.id,
        title=trial.title,
        rules_version=trial.version,
        rules_hash=loaded.rules_hash,
        verdict=verdict,
        deciding=tuple(c.id for c in criteria if logic.fails(c.kind, c.outcome)),
        missing=tuple(sorted({m for c in unknown for m in c.missing})) if verdict is logic.Verdict.UNDETERMINED else (),
        caveats=trial_caveats(trial),
        criteria=tuple(criteria),
    )


def explained_trial(loaded: LoadedTrial, facts: PatientFacts, outcomes: dict[str, Outcome], engine: str) -> TrialResult:
    """A trial result whose outcomes another engine decided, explained from the same facts; a
    disagreement with the reference is an :class:`EvaluatorGap`, never a silent difference."""
    explained = [evaluate_criterion(c, facts) for c in loaded.trial.criteria]
    for result in explained:
        if result.outcome is not outcomes[result.id]:
            raise EvaluatorGap(
                f"{loaded.trial.id} criterion {result.id}: {engine} decided {outcomes[result.id].value}, "
                f"the reference evaluator {result.outcome.value}"
            )
    return trial_result(loaded, explained)


def screen_trial(loaded: LoadedTrial, facts: PatientFacts) -> TrialResult:
    return trial_result(loaded, [evaluate_criterion(c, facts) for c in loaded.trial.criteria])


def trial_facts(profile: PatientProfile, as_of: dt.date, rules: RuleSet, selected: Iterable[LoadedTrial]) -> Iterator[tuple[LoadedTrial, PatientFacts]]:
    """Each selected trial with the patient's facts under its defaults, normalized once and shared."""
    facts: PatientFacts | None = None
    for loaded in selected:
        defaults = loaded.trial.defaults
        facts = facts.with_defaults(defaults) if facts else PatientFacts(profile, as_of, defaults, rules.codelists)
        yield loaded, facts


def screen_patient(profile: PatientProfile, rules: RuleSet, as_of: dt.date, trial_ids: Iterable[str] | None = None) -> ScreeningResult:
    """Screen one patient against the trials of ``rules`` (all, or ``trial_ids``) at ``as_of``."""
    selected = [rules.trials[t] for t in rules.select(trial_ids)]
    return screening_result(profile, as_of, (screen_trial(loaded, facts) for loaded, facts in trial_facts(profile, as_of, rules, selected)))


def screening_result(profile: PatientProfile, as_of: dt.date, results: Iterable[TrialResult]) -> ScreeningResult:
    """One patient's result, whichever engine decided its trials: the patient's notices first."""
    return ScreeningResult(patient_id=profile.id, as_of=as_of, engine_version=__version__, notices=profile.notices(), results=tuple(results))

