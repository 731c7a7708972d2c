"""The durable_rules (Rete) evaluator: trial rules compiled to durable_rules rulesets.

Each trial compiles to one ruleset in durable_rules' JSON form, named by trial id and rules hash,
registered on a :class:`SyncHost` this module creates (no background timer threads; no DSL
globals). A patient is normalized into one flat document per trial (:func:`normalize`) and
asserted once; the rules then do the comparisons and the Kleene logic:

- every rule node compiles to two conditions, ``true`` and ``false`` (:data:`COMPILERS`), built
  from a small condition algebra with negation pushed down to the comparisons, where an absent
  key is neither above nor below anything;
- every criterion compiles to rules for ``met``, ``not_met`` and ``not_applicable`` whose actions
  record the outcome in the session state; when none fires the outcome is ``unknown``. A
  condition with more operators than durable_rules accepts (15) is split into several rules; a
trial that would need more rules than a ruleset holds (about 250) raises :class:`TooComplex` when
it is compiled (the seed trials need far fewer; see ``UNSUPPORTED``).

The asserted document is the patient's flat facts (:mod:`screening.evaluators.flat`, shared with
the vectorized evaluator and built by the reference fact resolver, so every evaluator reads a
profile the same way), with values as plain decimals (durable_rules refuses ``1e-05`` and NaN; see :func:`plain_value`).

Known durable_rules traps handled here (see shared/notes/dependencies.md): rulesets cannot be
unregistered (named by hash, registered once per engine); at most 1024 live sessions (every
session is deleted after use); exceptions in actions come back as text in the state (raised as
:class:`EvaluatorGap`); ``MessageNotHandledException`` means no rule fired (all unknown); the
engine mutates the definitions it is given (a deep copy is registered); deleting the state of a
session that was never created crashes the extension (every ruleset has a rule that matches
every document, so a session always exists).
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import durable_rules_engine
from durable.engine import Host, MessageNotHandledException

from ..errors import EvaluatorGap
from ..facts.resolve import PatientFacts
from ..logic import CriterionKind, Outcome
from ..patient.model import PatientProfile
from ..results import ScreeningResult, TrialResult
from ..rules.loader import LoadedTrial, RuleSet
from ..rules.model import (
    AllOf,
    AnyOf,
    AtLeast,
    Compare,
    Criterion,
    HasCondition,
    HasMedication,
    HasProcedure,
    ImagingFinding,
    Is,
    LabResult,
    Not,
    Range,
)
from .conditions import FALSE, Cond, and_, cmp, leaf_conditions, negate, or_, plain_value, to_json
from .explain import explained_trial, screening_result, trial_facts
from .flat import Slots, flatten

# Rule node kinds the compiler cannot express, with the reason. Empty: every kind compiles. What
# can fail is size: a trial needing more than MAX_RULES rules after splitting raises TooComplex.
UNSUPPORTED: dict[type, str] = {}

# -- compilers: rule node -> (true condition, false condition) -------------------------------------

Compiled = tuple[Cond, Cond]
Compiler = Callable[[Any, Slots], Compiled]


def compile_node(node: Any, slots: Slots) -> Compiled:
    try:
        compiler = COMPILERS[type(node)]
    except KeyError:
        raise EvaluatorGap(f"durable_rules compiler has no handler for {type(node).__name__}") from None
    return compiler(node, slots)


def _c_all(node: AllOf, slots: Slots) -> Compiled:
    parts = [compile_node(e, slots) for e in node.of]
    return and_(*(t for t, _ in parts)), or_(*(f for _, f in parts))


def _c_any(node: AnyOf, slots: Slots) -> Compiled:
    parts = [compile_node(e, slots) for e in node.of]
    return or_(*(t for t, _ in parts)), and_(*(f for _, f in parts))


def _c_not(node: Not, slots: Slots) -> Compiled:
    true, false = compile_node(node.of, slots)
    return false, true


def _c_at_least(node: AtLeast, slots: Slots) -> Compiled:
    """True when some n operands are true; false when some k-n+1 are false."""
    parts = [compile_node(e, slots) for e in node.of]
    needed_false = len(parts) - node.n + 1
    true = or_(*(and_(*(parts[i][0] for i in combo)) for combo in itertools.combinations(range(len(parts)), node.n)))
    false = or_(*(and_(*(parts[i][1] for i in combo)) for combo in itertools.combinations(range(len(parts)), needed_false)))
    return true, false


def _c_leaf(node: Any, slots: Slots) -> Compiled:
    return leaf_conditions(node, slots.key(node))


COMPILERS: dict[type, Compiler] = {
    AllOf: _c_all,
    AnyOf: _c_any,
    Not: _c_not,
    AtLeast: _c_at_least,
    Compare: _c_leaf,
    Range: _c_leaf,
    Is: _c_leaf,
    LabResult: _c_leaf,
    HasCondition: _c_leaf,
    HasMedication: _c_leaf,
    HasProcedure: _c_leaf,
    ImagingFinding: _c_leaf,
}

# -- fitting conditions into durable_rules' limits --------------------------------------------------

MAX_OPERATORS = 15  # durable_rules refuses a condition with more $and/$or operators (error 113)
MAX_RULES = 250  # and a ruleset of more than about 256 rules (error 108)


class TooComplex(EvaluatorGap):
    """A criterion whose conditions do not fit in durable_rules' limits, even split into rules."""


def operators(cond: Cond) -> int:
    return (1 + sum(operators(c) for c in cond[1])) if cond[0] in ("and", "or") else 0


def split(cond: Cond, limit: int = MAX_RULES, budget: int = MAX_OPERATORS - 1) -> list[Cond]:
    """Conditions whose disjunction is ``cond``, each within ``budget`` operators: a top-level
    "or" becomes several rules and an "and" over an "or" is distributed, until each part fits.
    Raises :class:`TooComplex` past ``limit`` parts."""
    parts: list[Cond] = []
    stack = [cond]
    while stack:
        current = stack.pop()
        if current == FALSE:
            continue
        if operators(current) <= budget:
            parts.append(current)
            if len(parts) > limit:
                raise TooComplex(f"a condition needs more than {limit} durable_rules rules")
            continue
        if current[0] == "or":
            stack.extend(reversed(current[1]))
            continue
        children = list(current[1])
        index = max(range(len(children)), key=lambda i: operators(children[i]) if children[i][0] == "or" else -1)
        rest = children[:index] + children[index + 1:]
        stack.extend(reversed([and_(*rest, alternative) for alternative in children[index][1]]))
    return parts


# -- criteria and trials -----------------------------------------------------------------------------

DISCRIMINATOR = cmp("eq", "t", "screen")


def criterion_conditions(criterion: Criterion, slots: Slots) -> dict[Outcome, Cond]:
    """The condition under which the criterion takes each decided outcome (none: unknown)."""
    rule_true, rule_false = compile_node(criterion.rule, slots)
    if criterion.applies_when is None:
        return {Outcome.MET: rule_true, Outcome.NOT_MET: rule_false}
    applies_true, applies_false = compile_node(criterion.applies_when, slots)
    maybe_applies = negate(applies_false)
    if criterion.kind is CriterionKind.INCLUSION:
        met, not_met = and_(rule_true, maybe_applies), and_(rule_false, applies_true)
    else:
        met, not_met = and_(rule_true, applies_true), and_(rule_false, maybe_applies)
    return {Outcome.MET: met, Outcome.NOT_MET: not_met, Outcome.NOT_APPLICABLE: applies_false}


def _record(criterion_id: str, outcome: Outcome) -> Callable[[Any], None]:
    def action(c: Any) -> None:
        c.s[f"o.{criterion_id}"] = outcome.value

    return action


@dataclass(frozen=True)
class CompiledTrial:
    """A trial's durable_rules ruleset (JSON form, actions attached) and how to normalize for it."""

    name: str
    definition: dict[str, dict[str, Any]]
    leaves: tuple[tuple[Any, str], ...]  # (leaf node, document key prefix)


def _screened(c: Any) -> None:
    c.s["screened"] = 1


def compile_trial(loaded: LoadedTrial) -> CompiledTrial:
    slots = Slots()
    # Every document matches at least this rule, so a session always exists (deleting the state of
    # a session that a MessageNotHandledException left uncreated crashed the extension:
    # "free(): invalid pointer") and no assert raises MessageNotHandledException.
    definition: dict[str, dict[str, Any]] = {"screened": {"all": [{"m": to_json(DISCRIMINATOR)}], "run": _screened}}
    for criterion in loaded.trial.criteria:
        for outcome, cond in criterion_conditions(criterion, slots).items():
            for i, part in enumerate(split(cond, MAX_RULES - len(definition))):
                definition[f"{criterion.id}.{outcome.value}.{i}"] = {"all": [{"m": to_json(and_(DISCRIMINATOR, part))}], "run": _record(criterion.id, outcome)}

    name = f"{loaded.trial.id}_{loaded.rules_hash.split(':')[-1]}"
    return CompiledTrial(name, definition, slots.leaves)


def ruleset_json(compiled: CompiledTrial) -> dict[str, Any]:
    """The ruleset as durable_rules receives it, without the Python actions (for snapshots)."""
    return {compiled.name: {rule: {"all": body["all"], "run": rule} for rule, body in compiled.definition.items()}}


def normalize(compiled: CompiledTrial, facts: PatientFacts) -> dict[str, Any]:
    """The document asserted for one patient: the flat facts, as plain decimals."""
    document: dict[str, Any] = {"t": "screen"}
    document.update({key: plain_value(value) for key, value in flatten(compiled.leaves, facts).items()})
    return document


class SyncHost(Host):
    """A durable_rules host without the background dispatch timers: actions run synchronously in
    the caller (the default host's timer threads were seen returning partial states)."""

    def _run(self) -> None:  # noqa: D401 - no timers
        return None


class DurableEngine:
    """Screens patients through durable_rules. Create once per process (rulesets are registered
    at construction and cannot be unregistered); calls are serialized by a lock because the
    extension never releases the GIL and its sessions are not thread-safe."""

    def __init__(self, rules: RuleSet):
        self.rules = rules
        self.compiled = {trial_id: compile_trial(loaded) for trial_id, loaded in rules.trials.items()}
        self._host = SyncHost()
        self._host.register_rulesets({c.name: copy.deepcopy(c.definition) for c in self.compiled.values()})
        self._lock = threading.Lock()
        self._sessions = itertools.count()

    def outcomes(self, profile: PatientProfile, as_of: dt.date, trial_id: str, facts: PatientFacts | None = None) -> dict[str, Outcome]:
        """Each criterion's outcome as the Rete network decides it."""
        loaded = self.rules.trials[trial_id]
        compiled = self.compiled[trial_id]
        facts = facts or PatientFacts(profile, as_of, loaded.trial.defaults, self.rules.codelists)
        document = normalize(compiled, facts)
        with self._lock:
            sid = str(next(self._sessions))
            document["sid"] = sid
            try:
                state = self._host.assert_fact(compiled.name, document)
            except MessageNotHandledException as exc:  # unreachable: the "screened" rule matches all
                raise EvaluatorGap(f"durable_rules matched no rule for {trial_id}") from exc
            finally:  # a session left behind counts towards the extension's limit of 1,024
                self._delete_session(compiled.name, sid)
        if isinstance(state, dict) and "exception" in state:
            raise EvaluatorGap(f"durable_rules action failed for {trial_id}: {state['exception']}")
        recorded = state if isinstance(state, dict) else {}
        return {c.id: Outcome(recorded.get(f"o.{c.id}", Outcome.UNKNOWN.value)) for c in loaded.trial.criteria}

    def _delete_session(self, ruleset: str, sid: str) -> None:
        try:
            self._host.delete_state(ruleset, sid)
        except durable_rules_engine.error as exc:  # the extension's one error type; the code is in its text
            if "error code: 309" not in str(exc):  # 309: no such session (an assert that failed before creating it)
                raise

    def screen_trial(self, profile: PatientProfile, as_of: dt.date, trial_id: str, facts: PatientFacts | None = None) -> TrialResult:
        """A trial result whose outcomes come from the Rete network; the explanation (evidence,
        reason, missing) is built from the same normalized facts by the reference evaluator."""
        loaded = self.rules.trials[trial_id]
        facts = facts or PatientFacts(profile, as_of, loaded.trial.defaults, self.rules.codelists)
        return explained_trial(loaded, facts, self.outcomes(profile, as_of, trial_id, facts), "durable_rules")

    def screen(self, profile: PatientProfile, as_of: dt.date, trial_ids: Iterable[str] | None = None) -> ScreeningResult:
        selected: Sequence[str] = self.rules.select(trial_ids)
        shared = trial_facts(profile, as_of, self.rules, [self.rules.trials[t] for t in selected])
        return screening_result(profile, as_of, (self.screen_trial(profile, as_of, loaded.trial.id, facts) for loaded, facts in shared))


def durable_engine(rules: RuleSet) -> DurableEngine:
    """The durable_rules engine for ``rules``, compiled and registered on first use."""
    if "durable" not in rules.compiled:
        rules.compiled["durable"] = DurableEngine(rules)
    return rules.compiled["durable"]
