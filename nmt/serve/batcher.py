"""Dynamic batching: texts of concurrent requests that share a key are run together.

A request is split into its texts (items). Items wait in one FIFO queue per *key* -- the
model and every option that changes the output (strategy, beam size, seed, ...), so that
only requests that could have been one request share a batch. One worker thread runs the
batches, off the event loop, which keeps answering (``/health``, new requests, 503s)
while a batch is decoded. A batch is started when the worker is free and some key

* has ``max_batch`` items waiting (bounded batch), or
* has an item that has waited ``max_wait`` seconds (bounded wait; 0 = start at once),

taking that key's oldest items, at most ``max_batch`` of them; among ready keys, the one
whose oldest item arrived first goes first. Items arriving while a batch runs make the
next batch larger, so batches grow with the load by themselves.

At most ``max_queue`` items wait in all (the running batch not included): a request that
would go beyond raises :class:`QueueFull` (HTTP 503) instead of making the queue, memory
and waiting times grow without bound. A request whose client goes away before its batch
starts is taken out of the queue and never run. The decoders' results do not depend on
the batch a text is decoded in (``tests/unit/test_decoding.py``), so batching changes no
output.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

RunBatch = Callable[[list[str]], Sequence[Any]]
"""Runs one batch of texts (in the worker thread); returns one result per text, in order."""


class QueueFull(RuntimeError):
    """The queue cannot take a request's texts: the server is overloaded (HTTP 503)."""


@dataclass
class _Item:
    text: str
    future: asyncio.Future
    arrived: float  # the event loop's clock, seconds


@dataclass
class _KeyQueue:
    run: RunBatch
    items: deque[_Item] = field(default_factory=deque)


@dataclass
class BatcherStats:
    """Counters since start, for ``GET /health`` and the load test."""

    batches: int = 0
    texts: int = 0
    largest_batch: int = 0
    rejected_requests: int = 0
    failed_batches: int = 0

    def as_dict(self) -> dict[str, float]:
        mean = self.texts / self.batches if self.batches else 0.0
        return {**self.__dict__, "mean_batch": round(mean, 2)}


class Batcher:
    """Groups texts by key into batches and runs them on one worker thread.

    :param max_batch: most texts in one batch (>= 1).
    :param max_wait: seconds the oldest waiting text may wait for others to join its batch.
    :param max_queue: most texts waiting in all keys together.
    """

    def __init__(self, max_batch: int = 32, max_wait: float = 0.005, max_queue: int = 1024) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait < 0:
            raise ValueError("max_batch and max_queue must be >= 1 and max_wait >= 0")
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.stats = BatcherStats()
        self._queues: dict[Hashable, _KeyQueue] = {}
        self._waiting = 0
        self._running = 0
        self._wakeup: asyncio.Event | None = None
        self._drainer: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nmt-inference")

    @property
    def waiting(self) -> int:
        """Texts queued, not yet in a running batch."""
        return self._waiting

    @property
    def running(self) -> int:
        """Texts in the batch being run (0 when the worker is idle)."""
        return self._running

    async def submit(self, key: Hashable, run: RunBatch, texts: Sequence[str]) -> list[Any]:
        """Queue ``texts`` under ``key`` and wait for their results, in order.

        :param run: how to run a batch of this key (the first request's ``run`` serves the
            key while it has texts waiting; requests with equal keys must run alike).
        :raises QueueFull: the queue has no room for all of ``texts``.
        :raises Exception: whatever ``run`` raised for the batch.
        """
        if self._waiting + len(texts) > self.max_queue:
            self.stats.rejected_requests += 1
            raise QueueFull(
                f"the server is busy: {self._waiting} texts are waiting and this request adds {len(texts)} "
                f"(the queue holds {self.max_queue}); retry in a moment"
            )
        loop = asyncio.get_running_loop()
        now = loop.time()
        items = [_Item(text, loop.create_future(), now) for text in texts]
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _KeyQueue(run)
        queue.items.extend(items)
        self._waiting += len(items)
        self._start_drainer()
        try:
            results = await asyncio.gather(*(item.future for item in items), return_exceptions=True)
        except asyncio.CancelledError:
            self._withdraw(key, items)
            raise
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results

    def close(self) -> None:
        """Stop the worker thread; texts still waiting are not run."""
        if self._drainer is not None:
            self._drainer.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _withdraw(self, key: Hashable, items: list[_Item]) -> None:
        """Take a cancelled request's texts out of the queue (those not yet running)."""
        queue = self._queues.get(key)
        if queue is None:
            return
        mine = {id(item) for item in items}
        kept = deque(item for item in queue.items if id(item) not in mine)
        self._waiting -= len(queue.items) - len(kept)
        queue.items = kept
        if not kept:
            del self._queues[key]

    def _start_drainer(self) -> None:
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        self._wakeup.set()
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    def _next_ready(self, now: float) -> tuple[Hashable | None, float]:
        """The key to run now (oldest first among ready ones), or None and the seconds
        until the first one becomes ready."""
        best, best_arrival, delay = None, float("inf"), float("inf")
        for key, queue in self._queues.items():
            oldest = queue.items[0].arrived
            ready_in = oldest + self.max_wait - now
            if len(queue.items) >= self.max_batch or ready_in <= 0:
                if oldest < best_arrival:
                    best, best_arrival = key, oldest
            else:
                delay = min(delay, ready_in)
        return best, delay

    async def _drain(self) -> None:
        """Run batches until nothing waits (then end; the next request starts a new drainer)."""
        loop = asyncio.get_running_loop()
        while self._waiting:
            key, delay = self._next_ready(loop.time())
            if key is None:
                assert self._wakeup is not None  # made by the first submit, which started this drainer
                self._wakeup.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), delay)
                continue
            queue = self._queues[key]
            batch = [queue.items.popleft() for _ in range(min(self.max_batch, len(queue.items)))]
            self._waiting -= len(batch)
            if not queue.items:
                del self._queues[key]
            await self._run(queue.run, batch)

    async def _run(self, run: RunBatch, batch: list[_Item]) -> None:
        self._running = len(batch)
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self._executor, run, [item.text for item in batch]
            )
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} texts gave {len(results)} results")
        except Exception as error:  # the batch's requests fail; the server goes on
            self.stats.failed_batches += 1
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(error)
        else:
            self.stats.batches += 1
            self.stats.texts += len(batch)
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
            for item, result in zip(batch, results):
                if not item.future.done():
                    item.future.set_result(result)
        finally:
            self._running = 0
