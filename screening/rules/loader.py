"""Load and check rules files: ``<dir>/NCT*.yaml`` trials and ``<dir>/codelists/*.yaml``.

Everything is checked at load time: YAML shape (``yaml.safe_load`` semantics, duplicate keys
refused), the pydantic model, and the references a model cannot see on its own (facts, units,
code lists, analytes). A problem raises one :class:`RulesError` naming the file, the criterion and
the problem, with a suggestion when a known name is close.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ..clinical.units import check_unit, conversion_factor, round_significant
from ..errors import RulesError, UnitError, UnknownTrialError
from ..facts.catalog import FACTS, QUALITATIVE_ANALYTES, SCORES
from ..facts.resolve import DIALYSIS_CODELIST
from .codelists import CodeList, CodeLists
from .model import (
    EXPRESSION_TYPES,
    Compare,
    Criterion,
    HasCondition,
    HasMedication,
    HasProcedure,
    Is,
    LabResult,
    Range,
    Trial,
    trial_nodes,
    walk,
)

CODELIST_DIR = "codelists"
# A threshold in canonical units is 0 or of a magnitude strictly between these bounds: what every
# engine compares exactly (durable_rules takes plain decimals only, and json writes an exponent
# below 1e-4; screening.evaluators.conditions sends fact values within them too).
THRESHOLD_MAGNITUDE = (1e-4, 1e15)
_MODELS_BY_TAG: dict[str, type[BaseModel]] = {m.model_fields["type"].annotation.__args__[0]: m for m in EXPRESSION_TYPES}  # type: ignore[attr-defined,union-attr]


@dataclass(frozen=True)
class LoadedTrial:
    trial: Trial
    file: str
    rules_hash: str


@dataclass(frozen=True)
class RuleSet:
    """Trials (by id, sorted) and the code lists they share."""

    trials: Mapping[str, LoadedTrial]
    codelists: Mapping[str, CodeList]
    directory: str
    compiled: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # evaluators built for these rules, by name

    def select(self, trial_ids: Iterable[str] | None) -> list[str]:
        """The ids of the trials to screen: every loaded trial for ``None``, else ``trial_ids``
        (any iterable, read once) sorted without repeats. The one check of a selection, for every
        entry point: a str (one id, not a collection of them) or a non-str id is a
        :class:`TypeError`, an empty selection a :class:`ValueError`, an unknown id an
        :class:`UnknownTrialError` naming every one."""
        if trial_ids is None:
            return list(self.trials)
        if isinstance(trial_ids, (str, bytes)):  # iterable: "NCT04357600" would be read as ids "N", "C", ...
            raise TypeError(f"trials must be a collection of trial ids, not one {type(trial_ids).__name__}: trials=[{trial_ids!r}]")
        selected = set(trial_ids)
        for trial_id in selected:
            if not isinstance(trial_id, str):
                raise TypeError(f"a trial id must be a str, not {type(trial_id).__name__}")
        if not selected:
            raise ValueError("trials is empty: pass None to screen every loaded trial")
        unknown = selected - self.trials.keys()
        if unknown:
            raise UnknownTrialError(sorted(unknown))
        return sorted(selected)

    def __dask_tokenize__(self) -> tuple:
        """What Dask hashes when the rules are an argument of a task: the trials' content hashes
        (which cover the code lists they use), not the compiled evaluators (a durable_rules host
        cannot be hashed deterministically)."""
        return ("screening.RuleSet", tuple((trial_id, loaded.rules_hash) for trial_id, loaded in self.trials.items()))

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the compiled evaluators (durable_rules hosts cannot be pickled); a
        process that unpickles the rules compiles its own on first use."""
        return {**self.__dict__, "compiled": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys instead of keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except OSError as exc:
        raise RulesError(str(path), f"cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise RulesError(str(path), f"not valid YAML: {exc}") from None


def suggest(name: str, known: Any) -> str | None:
    """The closest known name: a transposition first (``=>`` -> ``>=``), else difflib's best."""
    candidates = [str(k) for k in known]
    transposed = [c for c in candidates if sorted(c) == sorted(str(name))]
    if transposed:
        return transposed[0]
    matches = difflib.get_close_matches(str(name), candidates, n=1, cutoff=0.6)
    return matches[0] if matches else None


def _criterion_id(raw: Any, loc: tuple) -> str | None:
    if len(loc) >= 2 and loc[0] == "criteria" and isinstance(loc[1], int):
        try:
            return str(raw["criteria"][loc[1]]["id"])
        except (KeyError, IndexError, TypeError):
            return f"#{loc[1] + 1}"
    return None


def _fields_for(loc: tuple) -> list[str]:
    """Field names allowed where the error at ``loc`` happened (for 'did you mean')."""
    parent = loc[:-1]
    for part in reversed(parent):
        if isinstance(part, str) and part in _MODELS_BY_TAG:
            return list(_MODELS_BY_TAG[part].model_fields)
        if part in ("criteria",):
            break
    if len(parent) == 2 and parent[0] == "criteria":
        return list(Criterion.model_fields)
    if not parent:
        return list(Trial.model_fields)
    return []


def _validation_error(file: str, raw: Any, exc: ValidationError, model: type[BaseModel]) -> RulesError:
    error = exc.errors(include_url=False)[0]
    loc = tuple(error["loc"])
    criterion = _criterion_id(raw, loc)
    where = ".".join(str(p) for p in (loc[2:] if criterion else loc))
    problem = f"{where}: {error['msg']}" if where else error["msg"]
    suggestion = None
    if error["type"] == "union_tag_invalid":
        tag = error.get("ctx", {}).get("tag")
        problem = f"{where}: unknown expression type {tag!r}"
        suggestion = suggest(tag, _MODELS_BY_TAG)
    elif error["type"] == "extra_forbidden":
        problem = f"{where}: unknown key {loc[-1]!r}"
        suggestion = suggest(loc[-1], _fields_for(loc) if model is Trial else list(model.model_fields))
    elif error["type"] == "enum":
        suggestion = suggest(error.get("input"), [e.strip(" '") for e in error.get("ctx", {}).get("expected", "").replace(" or ", ",").split(",")])
    return RulesError(file, problem, criterion=criterion, suggestion=suggestion)


def _check_expression(expr: Any, codelists: Mapping[str, CodeList]) -> str | None:
    """A problem with one node, or None; raises nothing."""
    if isinstance(expr, (Compare, Range, Is)):
        spec = FACTS.get(expr.fact)
        if spec is None:
            return f"unknown fact {expr.fact!r}"
        wanted = "category" if isinstance(expr, Is) else "number"
        if spec.kind != wanted:
            other = "'is'" if spec.kind == "category" else "'compare' or 'range'"
            return f"fact {expr.fact!r} is a {spec.kind}: use {other}"
        if isinstance(expr, Is):
            for value in expr.accepted:
                if value not in spec.values:
                    return f"fact {expr.fact!r} cannot be {value!r} (one of {', '.join(map(str, spec.values))})"
            return None
        if expr.within is not None and not spec.windowed:
            return f"fact {expr.fact!r} takes no 'within' window"
        if spec.analyte is not None:
            if expr.unit is None:
                return f"fact {expr.fact!r}: the threshold needs a unit (canonical: {spec.unit})"
            try:
                check_unit(spec.analyte, expr.unit)
            except UnitError as exc:
                return f"fact {expr.fact!r}: {exc.problem}"
        elif expr.unit not in (None, spec.unit):
            return f"fact {expr.fact!r}: unit {expr.unit!r} not allowed" + (f" (use {spec.unit!r})" if spec.unit else " (it has no unit)")
        return _threshold_problem(expr, spec)
    if isinstance(expr, LabResult) and expr.analyte not in QUALITATIVE_ANALYTES:
        return f"unknown qualitative analyte {expr.analyte!r}"
    if isinstance(expr, (HasCondition, HasMedication, HasProcedure)):
        codelist = codelists.get(expr.codes)
        if codelist is None:
            return f"unknown code list {expr.codes!r}"
        codes = codelist.codes
        usable = {
            HasCondition: codes.icd10 or codes.snomed,
            HasMedication: codes.names or codes.atc or codes.rxnorm,
            HasProcedure: codes.kinds or codes.snomed or codes.icd10,
        }[type(expr)]
        if not usable:
            return f"code list {expr.codes!r} has no codes usable for a {expr.type}"
    return None


def _threshold_problem(expr: Compare | Range, spec: Any) -> str | None:
    """A threshold whose value in the fact's canonical unit is infinite, or too large or too small
    to compare exactly (``1e20``, ``0.00001 mg/dL``), or None."""
    low, high = THRESHOLD_MAGNITUDE
    for value in (expr.value,) if isinstance(expr, Compare) else (expr.min, expr.max):
        if value is None:
            continue
        factor = conversion_factor(spec.analyte, expr.unit) if spec.analyte is not None and expr.unit is not None else 1.0
        canonical = round_significant(value * factor)
        if canonical == 0 or low < abs(canonical) < high:
            continue
        unit = f" {expr.unit}" if expr.unit not in (None, "1") else ""  # "1": a ratio (INR) has no unit to show
        converted = f" ({canonical:g} {spec.unit})" if factor != 1.0 else ""
        return f"fact {expr.fact!r}: threshold {value:g}{unit}{converted} is out of range (0, or strictly between {low:g} and {high:g} in magnitude)"
    return None


def _suggestion_for(problem: str, expr: Any, codelists: Mapping[str, CodeList]) -> str | None:
    if problem.startswith("unknown fact"):
        return suggest(expr.fact, FACTS)
    if problem.startswith("unknown code list"):
        return suggest(expr.codes, codelists)
    if problem.startswith("unknown qualitative analyte"):
        return suggest(expr.analyte, QUALITATIVE_ANALYTES)
    if " cannot be " in problem and isinstance(expr, Is):
        bad = next(v for v in expr.accepted if v not in FACTS[expr.fact].values)
        return suggest(bad, FACTS[expr.fact].values)
    return None


def rules_hash(trial: Trial, codelists: Mapping[str, CodeList]) -> str:
    """Content hash of a trial and the code lists it uses: changes whenever a result could."""
    used = sorted({n.codes for n in trial_nodes(trial) if hasattr(n, "codes")})
    if _uses_meld(trial):
        used = sorted({*used, DIALYSIS_CODELIST})
    payload = {"trial": trial.model_dump(mode="json"), "codelists": {n: codelists[n].model_dump(mode="json") for n in used}}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"sha256:{digest[:16]}"


def _uses_meld(trial: Trial) -> bool:
    return any(getattr(n, "fact", None) in SCORES or getattr(n, "fact", None) == "dialysis" for n in trial_nodes(trial))


def load_codelists(directory: Path) -> CodeLists:
    codelists = CodeLists()
    for path in sorted((directory / CODELIST_DIR).glob("*.yaml")):
        raw = read_yaml(path)
        try:
            codelist = CodeList.model_validate(raw)
        except ValidationError as exc:
            raise _validation_error(str(path), raw, exc, CodeList) from None
        if codelist.id != path.stem:
            raise RulesError(str(path), f"code list id {codelist.id!r} differs from the file name", suggestion=path.stem)
        codelists[codelist.id] = codelist
    return codelists


def load_trial(path: Path, codelists: Mapping[str, CodeList]) -> LoadedTrial:
    file = str(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise RulesError(file, "a rules file is a mapping with id, title, version, source and criteria")
    try:
        trial = Trial.model_validate(raw)
    except ValidationError as exc:
        raise _validation_error(file, raw, exc, Trial) from None
    if trial.id != path.stem:
        raise RulesError(file, f"trial id {trial.id!r} differs from the file name", suggestion=path.stem)
    for criterion in trial.criteria:
        for part in (criterion.applies_when, criterion.rule):
            if part is None:
                continue
            for node in walk(part):
                problem = _check_expression(node, codelists)
                if problem:
                    raise RulesError(file, problem, criterion=criterion.id, suggestion=_suggestion_for(problem, node, codelists))
    if _uses_meld(trial) and DIALYSIS_CODELIST not in codelists:
        raise RulesError(file, f"MELD scores need the {DIALYSIS_CODELIST!r} code list (for the dialysis rule)")
    return LoadedTrial(trial, file, rules_hash(trial, codelists))


def load_rules(directory: str | Path) -> RuleSet:
    """Load every trial in ``directory`` with the shared code lists under ``directory/codelists``."""
    root = Path(directory)
    if not root.is_dir():
        raise RulesError(str(root), "rules directory not found")
    codelists = load_codelists(root)
    trials = {}
    for path in sorted(root.glob("*.yaml")):
        loaded = load_trial(path, codelists)
        trials[loaded.trial.id] = loaded
    if not trials:
        raise RulesError(str(root), "no trial rules files (*.yaml) found")
    return RuleSet(dict(sorted(trials.items())), codelists, str(root))
