"""MicroBatcher on its own: batches form under concurrency within the size limit, every caller gets its
own result, a full queue refuses at once, failures reach every caller of the batch, and callers that
gave up are dropped before the model sees them."""

from __future__ import annotations

import asyncio
import threading

import pytest

from spatial_trace_ros.server.batching import MicroBatcher, QueueFullError
from spatial_trace_ros.server.metrics import ServerMetrics


class RecordingModel:
    """A stand-in model (the batcher is under test, not the model): doubles each payload, remembers batches,
    and can be held inside a call to keep the worker busy."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def __call__(self, payloads: list[int]) -> list[int]:
        self.batches.append(list(payloads))
        self.entered.set()
        assert self.release.wait(10.0), "test never released the model"
        return [p * 2 for p in payloads]


async def _until(predicate: object, timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


def test_concurrent_submissions_form_batches_and_results_go_to_their_callers() -> None:
    model = RecordingModel()
    metrics = ServerMetrics()

    async def scenario() -> list[int]:
        batcher = MicroBatcher(model, max_batch_size=8, max_wait_ms=50.0, max_queue=64, metrics=metrics)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit(i) for i in range(20)))
        await batcher.stop()
        return results

    results = asyncio.run(scenario())
    assert [r for r, _ in results] == [i * 2 for i in range(20)]
    assert sorted(p for batch in model.batches for p in batch) == list(range(20))
    assert max(len(b) for b in model.batches) == 8
    assert len(model.batches) == 3  # 20 callers arriving together: 8 + 8 + 4
    for _, timing in results:
        assert timing.batch_size in (4, 8) and timing.queue_s >= 0 and timing.inference_s >= 0
    sizes = {s.name: s.value for m in metrics.registry.collect() for s in m.samples if m.name.endswith("batch_size")}
    assert sizes["spatial_trace_batch_size_sum"] == 20 and sizes["spatial_trace_batch_size_count"] == 3


def test_batch_size_one_runs_each_request_alone() -> None:
    model = RecordingModel()

    async def scenario() -> None:
        batcher = MicroBatcher(model, max_batch_size=1, max_wait_ms=50.0, max_queue=64)
        batcher.start()
        await asyncio.gather(*(batcher.submit(i) for i in range(6)))
        await batcher.stop()

    asyncio.run(scenario())
    assert [len(b) for b in model.batches] == [1] * 6


def test_full_queue_refuses_immediately() -> None:
    model = RecordingModel()
    model.release.clear()

    async def scenario() -> None:
        batcher = MicroBatcher(model, max_batch_size=1, max_wait_ms=0.0, max_queue=2)
        batcher.start()
        running = asyncio.ensure_future(batcher.submit(0))
        await asyncio.to_thread(model.entered.wait, 10.0)  # the worker holds request 0
        queued = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2)]
        await asyncio.sleep(0)
        with pytest.raises(QueueFullError, match="2 requests are already waiting"):
            await batcher.submit(3)
        assert batcher.queue_depth == 2
        model.release.set()
        assert [r for r, _ in await asyncio.gather(running, *queued)] == [0, 2, 4]
        await batcher.stop()

    asyncio.run(scenario())


def test_a_failing_batch_fails_its_callers_and_the_batcher_carries_on() -> None:
    calls: list[list[int]] = []

    def flaky(payloads: list[int]) -> list[int]:
        calls.append(payloads)
        if len(calls) == 1:
            raise ValueError("model exploded")
        return payloads

    async def scenario() -> None:
        batcher = MicroBatcher(flaky, max_batch_size=4, max_wait_ms=20.0, max_queue=8)
        batcher.start()
        outcomes = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
        assert all(isinstance(o, ValueError) and "exploded" in str(o) for o in outcomes)
        assert (await batcher.submit(7))[0] == 7
        await batcher.stop()

    asyncio.run(scenario())


def test_wrong_number_of_results_is_an_error_not_a_mixup() -> None:
    async def scenario() -> None:
        batcher = MicroBatcher(lambda payloads: payloads[:1], max_batch_size=4, max_wait_ms=20.0, max_queue=8)
        batcher.start()
        outcomes = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
        assert all(isinstance(o, RuntimeError) and "1 results for a batch of 3" in str(o) for o in outcomes)
        await batcher.stop()

    asyncio.run(scenario())


def test_callers_that_gave_up_are_dropped_before_the_model_sees_them() -> None:
    model = RecordingModel()
    model.release.clear()

    async def scenario() -> None:
        batcher = MicroBatcher(model, max_batch_size=4, max_wait_ms=0.0, max_queue=8)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(0))
        await asyncio.to_thread(model.entered.wait, 10.0)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(batcher.submit(1), 0.05)
        kept = asyncio.ensure_future(batcher.submit(2))
        await asyncio.sleep(0)
        model.release.set()
        assert (await first)[0] == 0 and (await kept)[0] == 4
        await batcher.stop()

    asyncio.run(scenario())
    assert model.batches == [[0], [2]]


def test_stop_fails_requests_still_queued() -> None:
    model = RecordingModel()
    model.release.clear()

    async def scenario() -> None:
        batcher = MicroBatcher(model, max_batch_size=1, max_wait_ms=0.0, max_queue=8)
        batcher.start()
        running = asyncio.ensure_future(batcher.submit(0))
        await asyncio.to_thread(model.entered.wait, 10.0)
        queued = asyncio.ensure_future(batcher.submit(1))
        await _until(lambda: batcher.queue_depth == 1)
        stopping = asyncio.ensure_future(batcher.stop())
        await asyncio.sleep(0.05)
        model.release.set()
        await stopping
        for request in (running, queued):
            with pytest.raises(RuntimeError, match="shutting down"):
                await request

    asyncio.run(scenario())


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        MicroBatcher(lambda p: p, max_batch_size=0, max_wait_ms=1.0, max_queue=1)
