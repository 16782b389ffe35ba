"""frozen_heap: the start-up heap leaves the cyclic GC's reach for the block, and only then."""

from __future__ import annotations

import gc
import weakref

from coelho_pipelines.incremental.heap import frozen_heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def _cycle() -> weakref.ref:
    return weakref.ref(_Node())


def test_freezes_the_live_heap_for_the_block_and_unfreezes_after() -> None:
    assert gc.get_freeze_count() == 0
    with frozen_heap() as froze:
        assert froze
        assert gc.get_freeze_count() > 1000  # modules, functions, this test's objects
    assert gc.get_freeze_count() == 0


def test_garbage_from_before_is_collected_not_frozen() -> None:
    dead = _cycle()
    with frozen_heap():
        assert dead() is None


def test_garbage_made_inside_stays_collectable() -> None:
    with frozen_heap():
        inside = _cycle()
        assert inside() is not None
        gc.collect()
        assert inside() is None


def test_a_heap_frozen_by_someone_else_is_left_alone() -> None:
    gc.freeze()
    try:
        count = gc.get_freeze_count()
        with frozen_heap() as froze:
            assert not froze
        assert gc.get_freeze_count() == count  # not unfrozen by the inner block
    finally:
        gc.unfreeze()
