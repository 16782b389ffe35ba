"""Opportunistic micro-batching: concurrent predictions for one model share one call.

A batch model's per-call cost grows far slower than its number of rows (one CatBoost call, one
KMeans label kernel over a matrix: `fast_predict`); scoring on the event loop would also stall
every other request.
So requests queue per model; one worker thread scores whatever has queued while the previous
call ran. A lone request waits for nobody (no timer); under load, calls grow to `max_batch`.
A model whose calls have proven cheaper than `inline_below_seconds` (a compiled champion
scores a row in ~0.2 ms, less than the hand-off to a thread and back) is scored on the event
loop instead, as the River models are, still one call per queued batch.
If a call fails, its rows are scored one by one so a bad row only fails its own request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any

Predict = Callable[[Sequence[Any]], Sequence[Any]]
INLINE_BELOW_SECONDS = 0.001
_COST_WEIGHT = 0.2  # of the newest call in the running mean of call times


class MicroBatcher:
    """`await batcher.submit(key, predict, item)`: `predict(items) -> outputs` runs in a thread,
    or on the event loop once its calls are known to cost under `inline_below_seconds`."""

    def __init__(
        self, max_batch: int = 64, inline_below_seconds: float = INLINE_BELOW_SECONDS
    ) -> None:
        self.max_batch = max_batch
        self.inline_below_seconds = inline_below_seconds
        self._pending: dict[Hashable, list[tuple[Any, asyncio.Future]]] = {}
        self._draining: set[Hashable] = set()
        self._cost: dict[Hashable, float] = {}  # running mean seconds per call, per key
        self.calls = 0
        self.inline_calls = 0

    async def submit(self, key: Hashable, predict: Predict, item: Any) -> Any:
        future = asyncio.get_running_loop().create_future()
        self._pending.setdefault(key, []).append((item, future))
        if key not in self._draining:
            self._draining.add(key)
            asyncio.create_task(self._drain(key, predict))
        return await future

    async def _drain(self, key: Hashable, predict: Predict) -> None:
        try:
            while self._pending.get(key):
                queue = self._pending[key]
                batch, self._pending[key] = queue[: self.max_batch], queue[self.max_batch :]
                await self._run(key, predict, batch)
        except BaseException as error:  # e.g. cancelled at shutdown: nobody waits forever
            for _, future in self._pending.pop(key, []):
                _deliver(future, error=RuntimeError(f"prediction abandoned: {error!r}"))
            raise
        finally:
            self._draining.discard(key)
            if not self._pending.get(key):
                self._pending.pop(key, None)

    async def _run(
        self, key: Hashable, predict: Predict, batch: list[tuple[Any, asyncio.Future]]
    ) -> None:
        items = [item for item, _ in batch]
        self.calls += 1
        try:
            outputs = await self._call(key, predict, items)
            if len(outputs) != len(items):
                raise RuntimeError(f"{len(outputs)} predictions for {len(items)} rows")
        except Exception as error:  # noqa: BLE001 - delivered to the waiting requests
            if len(batch) == 1:
                _deliver(batch[0][1], error=error)
                return
            for one in batch:  # isolate the row that fails
                await self._run(key, predict, [one])
            return
        for (_, future), output in zip(batch, outputs, strict=False):
            _deliver(future, result=output)

    async def _call(self, key: Hashable, predict: Predict, items: list[Any]) -> list[Any]:
        """Score `items` inline when this key's calls are cheap, else in a worker thread."""
        inline = self._cost.get(key, float("inf")) < self.inline_below_seconds
        self.inline_calls += inline
        started = time.perf_counter()
        outputs = list(predict(items)) if inline else list(await asyncio.to_thread(predict, items))
        seconds = time.perf_counter() - started
        previous = self._cost.get(key)
        self._cost[key] = (
            seconds if previous is None else previous + _COST_WEIGHT * (seconds - previous)
        )
        return outputs


def _deliver(future: asyncio.Future, result: Any = None, error: BaseException | None = None):
    if future.done():  # the client went away
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
