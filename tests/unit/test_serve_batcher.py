"""The dynamic batcher of ``nmt.serve``: grouping, bounds, overload, failures, cancellation.

Each test drives the batcher from one event loop with a plain Python ``run`` that records
the batches it gets; no model and no timing assertion (a timeout only guards against hangs).
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from nmt.serve.batcher import Batcher, QueueFull

GUARD = 30  # seconds: a hang, not a slow machine


class Recorder:
    """A ``run`` that returns ``text.upper()`` and records each batch and its thread;
    it can be held on a gate to keep the worker busy."""

    def __init__(self, gated: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.threads: set[int] = set()
        self.gate = threading.Event()
        self.started = threading.Event()
        if not gated:
            self.gate.set()

    def __call__(self, texts: list[str]) -> list[str]:
        self.threads.add(threading.get_ident())
        self.started.set()
        self.gate.wait(GUARD)
        self.batches.append(list(texts))
        return [text.upper() for text in texts]


def run(coroutine):
    async def guarded():
        return await asyncio.wait_for(coroutine, GUARD)

    return asyncio.run(guarded())


async def wait_until(condition) -> None:
    while not condition():
        await asyncio.sleep(0.001)


def test_concurrent_requests_with_the_same_key_are_run_as_one_batch():
    batcher, recorder = Batcher(max_batch=32, max_wait=0.0), Recorder()

    async def main():
        return await asyncio.gather(*(batcher.submit("k", recorder, [f"a{i}", f"b{i}"]) for i in range(5)))

    results = run(main())
    assert results == [[f"A{i}", f"B{i}"] for i in range(5)]
    assert recorder.batches == [[f"{x}{i}" for i in range(5) for x in "ab"]]
    assert batcher.stats.batches == 1 and batcher.stats.largest_batch == 10


def test_no_batch_holds_more_than_max_batch_texts_and_results_stay_in_order():
    batcher, recorder = Batcher(max_batch=4, max_wait=0.0), Recorder()

    async def main():
        return await asyncio.gather(
            batcher.submit("k", recorder, [str(i) for i in range(7)]),
            batcher.submit("k", recorder, ["x", "y", "z"]),
        )

    first, second = run(main())
    assert first == [str(i) for i in range(7)] and second == ["X", "Y", "Z"]
    assert [len(b) for b in recorder.batches] == [4, 4, 2]
    assert sum(recorder.batches, []) == [*map(str, range(7)), "x", "y", "z"]  # oldest first


def test_requests_with_different_keys_never_share_a_batch():
    batcher, recorder = Batcher(max_batch=32, max_wait=0.0), Recorder()

    async def main():
        return await asyncio.gather(*(batcher.submit(("beam", i % 3), recorder, [f"{i % 3}:{i}"]) for i in range(12)))

    run(main())
    assert len(recorder.batches) == 3
    for batch in recorder.batches:
        assert len({text.split(":")[0] for text in batch}) == 1 and len(batch) == 4


def test_a_full_batch_starts_without_waiting_for_max_wait():
    batcher, recorder = Batcher(max_batch=3, max_wait=3600.0), Recorder()
    assert run(batcher.submit("k", recorder, ["a", "b", "c"])) == ["A", "B", "C"]


def test_a_lone_text_is_run_after_max_wait():
    batcher, recorder = Batcher(max_batch=8, max_wait=0.01), Recorder()
    assert run(batcher.submit("k", recorder, ["alone"])) == ["ALONE"]
    assert recorder.batches == [["alone"]]


def test_texts_arriving_while_a_batch_runs_form_the_next_batch_together():
    batcher, recorder = Batcher(max_batch=32, max_wait=0.0), Recorder(gated=True)

    async def main():
        first = asyncio.ensure_future(batcher.submit("k", recorder, ["first"]))
        await wait_until(recorder.started.is_set)
        later = [asyncio.ensure_future(batcher.submit("k", recorder, [f"t{i}"])) for i in range(6)]
        await wait_until(lambda: batcher.waiting == 6)
        recorder.gate.set()
        return await first, await asyncio.gather(*later)

    first, later = run(main())
    assert first == ["FIRST"] and later == [[f"T{i}"] for i in range(6)]
    assert recorder.batches == [["first"], [f"t{i}" for i in range(6)]]


def test_inference_runs_on_a_worker_thread_while_the_event_loop_keeps_answering():
    batcher, recorder = Batcher(max_wait=0.0), Recorder(gated=True)

    async def main():
        pending = asyncio.ensure_future(batcher.submit("k", recorder, ["x"]))
        await wait_until(recorder.started.is_set)
        # The loop is free while the batch runs: this coroutine runs and releases it.
        await asyncio.sleep(0)
        recorder.gate.set()
        return await pending

    assert run(main()) == ["X"]
    assert threading.get_ident() not in recorder.threads


def test_a_full_queue_refuses_requests_and_recovers_when_it_drains():
    batcher, recorder = Batcher(max_batch=1, max_wait=0.0, max_queue=2), Recorder(gated=True)

    async def main():
        running = asyncio.ensure_future(batcher.submit("k", recorder, ["r"]))
        await wait_until(lambda: batcher.running == 1)
        queued = asyncio.ensure_future(batcher.submit("k", recorder, ["q1", "q2"]))
        await wait_until(lambda: batcher.waiting == 2)
        with pytest.raises(QueueFull, match="retry"):
            await batcher.submit("k", recorder, ["one too many"])
        with pytest.raises(QueueFull):
            await batcher.submit("other key", recorder, ["also refused"])
        recorder.gate.set()
        results = await running, await queued
        return results, await batcher.submit("k", recorder, ["after"])

    (running, queued), after = run(main())
    assert running == ["R"] and queued == ["Q1", "Q2"] and after == ["AFTER"]
    assert batcher.stats.rejected_requests == 2
    assert "one too many" not in sum(recorder.batches, [])


def test_a_request_larger_than_the_whole_queue_is_refused():
    batcher = Batcher(max_queue=3)
    with pytest.raises(QueueFull):
        run(batcher.submit("k", Recorder(), ["a", "b", "c", "d"]))


def test_a_failing_batch_fails_only_its_own_requests():
    batcher, recorder = Batcher(max_wait=0.0), Recorder()

    def broken(texts):
        raise RuntimeError("model exploded")

    async def main():
        return await asyncio.gather(
            batcher.submit("bad", broken, ["a"]), batcher.submit("good", recorder, ["b"]), return_exceptions=True
        )

    bad, good = run(main())
    assert isinstance(bad, RuntimeError) and good == ["B"]
    assert run(batcher.submit("bad", recorder, ["again"])) == ["AGAIN"]
    assert batcher.stats.failed_batches == 1


def test_a_run_that_returns_the_wrong_number_of_results_is_an_error_not_a_hang():
    batcher = Batcher(max_wait=0.0)
    with pytest.raises(RuntimeError, match="2 texts gave 1 results"):
        run(batcher.submit("k", lambda texts: texts[:1], ["a", "b"]))


def test_a_cancelled_request_leaves_the_queue_and_is_never_run():
    batcher, recorder = Batcher(max_batch=32, max_wait=0.0), Recorder(gated=True)

    async def main():
        running = asyncio.ensure_future(batcher.submit("k", recorder, ["running"]))
        await wait_until(lambda: batcher.running == 1)
        gone = asyncio.ensure_future(batcher.submit("k", recorder, ["gone1", "gone2"]))
        kept = asyncio.ensure_future(batcher.submit("k", recorder, ["kept"]))
        await wait_until(lambda: batcher.waiting == 3)
        gone.cancel()
        await wait_until(gone.done)
        waiting_after_cancel = batcher.waiting
        recorder.gate.set()
        return waiting_after_cancel, await running, await kept

    waiting, running, kept = run(main())
    assert waiting == 1 and running == ["RUNNING"] and kept == ["KEPT"]
    assert recorder.batches == [["running"], ["kept"]]


@pytest.mark.parametrize("bad", [dict(max_batch=0), dict(max_queue=0), dict(max_wait=-1)])
def test_invalid_bounds_are_refused(bad):
    with pytest.raises(ValueError):
        Batcher(**bad)
