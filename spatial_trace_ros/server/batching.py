"""Dynamic micro-batching: concurrent requests share one model call.

The first request of a batch waits at most ``max_wait_ms`` for others; requests that queued while the
model was busy join the next batch at once. One worker thread calls the model, so the model sees one
batch at a time. The queue is bounded: when it is full, ``submit`` fails at once (the server answers
503) instead of letting latency grow without limit. A request that gave up (timed out) while queued
is dropped from its batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from spatial_trace_ros.server.metrics import ServerMetrics


class QueueFullError(Exception):
    """The batcher's queue holds ``max_queue`` requests already."""


@dataclass(frozen=True)
class BatchTiming:
    """What one request experienced: its wait in the queue and the model call of its batch."""

    queue_s: float
    inference_s: float
    batch_size: int


@dataclass
class _Pending:
    payload: Any
    future: asyncio.Future
    enqueued_s: float


class MicroBatcher:
    """Collects payloads into lists for ``run_batch(payloads) -> results`` (one result per payload, in order)."""

    def __init__(self, run_batch: Callable[[list[Any]], Sequence[Any]], max_batch_size: int, max_wait_ms: float,
                 max_queue: int, metrics: ServerMetrics | None = None) -> None:
        if max_batch_size < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch_size and max_queue must be >= 1 and max_wait_ms >= 0")
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self._max_wait_s = max_wait_ms / 1000.0
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=max_queue)
        self._metrics = metrics
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self._worker: asyncio.Task | None = None

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        """Start the batching loop on the running event loop."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._loop(), name="micro-batcher")

    async def submit(self, payload: Any) -> tuple[Any, BatchTiming]:
        """Queue one payload and wait for its result. Raises ``QueueFullError`` at once when full, and
        whatever ``run_batch`` raised if its batch failed. Cancelling the caller drops the payload."""
        if self._worker is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        pending = _Pending(payload, asyncio.get_running_loop().create_future(), time.perf_counter())
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            raise QueueFullError(f"{self._queue.maxsize} requests are already waiting") from None
        self._set_depth()
        return await pending.future

    def call_in_worker(self, fn: Callable[[], Any]) -> asyncio.Future:
        """Run ``fn`` on the model thread (warm-up), serialised with the batches."""
        return asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def stop(self) -> None:
        """Stop taking batches; requests still queued get ``RuntimeError`` (the server drains first)."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        while not self._queue.empty():
            _fail([self._queue.get_nowait()], RuntimeError("the server is shutting down"))
        await asyncio.to_thread(self._executor.shutdown, True)  # a model call in progress finishes

    def _set_depth(self) -> None:
        if self._metrics is not None:
            self._metrics.queue_depth.set(self._queue.qsize())

    async def _collect(self) -> list[_Pending]:
        batch = [await self._queue.get()]
        deadline = time.perf_counter() + self._max_wait_s
        while len(batch) < self.max_batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        self._set_depth()
        return [p for p in batch if not p.future.done()]

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            if not batch:
                continue
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self._run_batch, [p.payload for p in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"the model returned {len(results)} results for a batch of {len(batch)}")
            except asyncio.CancelledError:
                _fail(batch, RuntimeError("the server is shutting down"))
                raise
            except Exception as err:  # handed to every caller of this batch
                _fail(batch, err)
                continue
            inference_s = time.perf_counter() - started
            if self._metrics is not None:
                self._metrics.batch_size.observe(len(batch))
                self._metrics.inference.observe(inference_s)
            for p, result in zip(batch, results):
                queue_s = started - p.enqueued_s
                if self._metrics is not None:
                    self._metrics.queue_wait.observe(queue_s)
                if not p.future.done():
                    p.future.set_result((result, BatchTiming(queue_s, inference_s, len(batch))))


def _fail(batch: list[_Pending], err: BaseException) -> None:
    for p in batch:
        if not p.future.done():
            p.future.set_exception(err)
