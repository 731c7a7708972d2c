"""Garbage-collector pacing for cohort runs.

CPython's cyclic collector runs a full collection whenever the objects that survived earlier
collections have grown by a quarter since the last one (the gen-2 rule of CPython 3.11). A
cohort chunk builds millions of long-lived objects (5,000 profiles of 55 records, their models,
facts and evidence), so the heap grows by a quarter many times over while one chunk is read and
screened, and each of those full collections walks the whole heap: about half the run time of
long tables (``benchmarks/long_tables.py``; 20 full collections for 10,000 patients, none of
which found garbage). The collector's count is of objects allocated less those freed, so
garbage freed by reference counting (nearly all of a run's) does not advance it: with a
first-generation threshold of 1,000,000 instead of 700, a collection comes after a million more
objects are alive than at the last one, a few times per chunk, and older generations' in step
(``benchmarks/long_tables.py`` counts and times the passes: 4 instead of 8,034 for 10,000
patients, at the same peak memory). Garbage cycles, which cohort runs make few of, are freed a
little later.

The setting is the interpreter's, so it is in effect only inside :func:`fewer_collections`
(nested or in several threads at once: the first entry sets it, the last exit restores what was
there), and a process that disabled the collector or set a larger threshold is left as it is.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

BATCH_THRESHOLD = 1_000_000  # first-generation threshold (CPython's default is 700)

_lock = threading.Lock()
_entered = 0
_restore: tuple[int, ...] | None = None  # the thresholds to put back, when this module changed them


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the block with the collector paced for batch work (see the module's docstring)."""
    global _entered, _restore
    with _lock:
        if _entered == 0:
            current = gc.get_threshold()
            _restore = current if 0 < current[0] < BATCH_THRESHOLD else None
            if _restore is not None:
                gc.set_threshold(BATCH_THRESHOLD, *current[1:])
        _entered += 1
    try:
        yield
    finally:
        with _lock:
            _entered -= 1
            if _entered == 0 and _restore is not None:
                if gc.get_threshold()[0] == BATCH_THRESHOLD:  # unless the block set thresholds of its own
                    gc.set_threshold(*_restore)
                _restore = None
