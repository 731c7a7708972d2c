"""Garbage-collector pacing for cohort runs: in effect inside the block only, nested and across
threads; a process's own choice (collector disabled, a larger threshold) left as it is."""

from __future__ import annotations

import gc
import threading

import pytest

from screening.cohort import read_cohort, screen_cohort
from screening.cohort.collector import BATCH_THRESHOLD, fewer_collections

from .conftest import AS_OF, ROOT


@pytest.fixture
def thresholds():
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


@pytest.mark.parametrize(
    ("before", "inside"),
    [
        ((700, 10, 10), (BATCH_THRESHOLD, 10, 10)),  # CPython's default: paced
        ((2000, 5, 20), (BATCH_THRESHOLD, 5, 20)),  # older generations' thresholds kept
        ((0, 10, 10), (0, 10, 10)),  # a threshold of 0 disables collection: left so
        ((5_000_000, 10, 10), (5_000_000, 10, 10)),  # already collecting less often: left so
    ],
)
def test_the_block_runs_paced_and_the_thresholds_come_back(thresholds, before, inside):
    gc.set_threshold(*before)
    with fewer_collections():
        assert gc.get_threshold() == inside
    assert gc.get_threshold() == before


def test_nested_blocks_restore_once_the_outer_one_ends(thresholds):
    gc.set_threshold(700, 10, 10)
    with fewer_collections():
        with fewer_collections():
            pass
        assert gc.get_threshold()[0] == BATCH_THRESHOLD
    assert gc.get_threshold() == (700, 10, 10)


def test_an_error_in_the_block_restores_the_thresholds(thresholds):
    gc.set_threshold(700, 10, 10)
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("boom")
    assert gc.get_threshold() == (700, 10, 10)


def test_thresholds_the_block_set_itself_are_kept(thresholds):
    gc.set_threshold(700, 10, 10)
    with fewer_collections():
        gc.set_threshold(1234, 10, 10)
    assert gc.get_threshold() == (1234, 10, 10)


def test_overlapping_blocks_in_threads_restore_after_the_last_one(thresholds):
    gc.set_threshold(700, 10, 10)
    first_in, second_out = threading.Event(), threading.Event()
    seen = []

    def first():
        with fewer_collections():
            first_in.set()
            second_out.wait(5)
            seen.append(gc.get_threshold()[0])  # the other thread's exit did not restore

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(5)
    with fewer_collections():
        pass
    second_out.set()
    thread.join(5)
    assert seen == [BATCH_THRESHOLD]
    assert gc.get_threshold() == (700, 10, 10)


def test_a_cohort_run_is_paced_while_it_reads_and_screens_and_not_after(thresholds, rules):
    gc.set_threshold(700, 10, 10)
    seen = []

    def chunks():  # the reader runs inside the run: it is paced too
        for chunk in read_cohort(ROOT / "patients" / "cohorts" / "long", 5):
            seen.append(gc.get_threshold()[0])
            yield chunk

    frames = screen_cohort(chunks(), rules, AS_OF)
    next(frames)
    assert gc.get_threshold()[0] == BATCH_THRESHOLD  # the caller's code between frames too: it writes them
    for _ in frames:
        pass
    assert seen and set(seen) == {BATCH_THRESHOLD}
    assert gc.get_threshold() == (700, 10, 10)


def test_a_cohort_run_left_half_read_restores_the_thresholds_when_closed(thresholds, rules):
    gc.set_threshold(700, 10, 10)
    frames = screen_cohort(read_cohort(ROOT / "patients" / "cohorts" / "long", 5), rules, AS_OF)
    next(frames)
    frames.close()
    assert gc.get_threshold() == (700, 10, 10)
