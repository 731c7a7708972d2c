"""The loaded rules, swapped atomically on reload.

A request takes :attr:`RulesState.current` once and uses that snapshot to the end, so a reload
never changes the rules under a request in flight; a reload that fails keeps the old snapshot.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from ..evaluators.durable import durable_engine
from ..rules.loader import RuleSet, load_rules


@dataclass(frozen=True)
class Snapshot:
    rules: RuleSet
    generation: int


def _load(directory: Path) -> RuleSet:
    rules = load_rules(directory)
    durable_engine(rules)  # compile now: no lazy first-request compile racing between requests
    return rules


class RulesState:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self._reload_lock = threading.Lock()
        self.current = Snapshot(_load(self.directory), 1)  # raises RulesError: the service does not start

    def reload(self) -> Snapshot:
        """Load the rules again; on success swap them in, on :class:`RulesError` keep the old ones."""
        with self._reload_lock:
            rules = _load(self.directory)
            self.current = Snapshot(rules, self.current.generation + 1)
            return self.current
