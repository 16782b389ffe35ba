"""Keep the cyclic garbage collector off the learner's start-up heap.

A learner process holds a few hundred thousand long-lived objects (Dagster, MLflow, Kafka and
River modules, plus a resumed model). Every full collection walks all of them: about 0.2 s
each, some 3% of eta's learning time (the ARF regressor allocates enough to trigger them).
`frozen_heap` collects once, then moves everything alive into the permanent generation for the
run (`gc.freeze`), so collections only walk what learning allocates. It also spares forked
capture children copy-on-write faults on those objects' GC headers.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def frozen_heap() -> Iterator[bool]:
    """Freeze the heap for the block, unfreeze after; yields whether it froze (it leaves a
    heap someone else already froze alone)."""
    if gc.get_freeze_count():
        yield False
        return
    gc.collect()
    gc.freeze()
    try:
        yield True
    finally:
        gc.unfreeze()
