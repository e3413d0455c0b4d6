"""Run trace requests without blocking the caller: a private asyncio loop in its own thread.

The ROS executor must keep serving camera frames and parameter changes while a model takes seconds
to answer, so requests run on an event loop in a dedicated thread. One request is in flight at a
time; a new instruction either cancels the running request (the model's answer to an old question
is useless once the operator has asked another) or waits in a bounded queue. Every request ends in
exactly one final status (ok, refused or error), published through the callbacks the owner gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from spatial_trace_ros.errors import ModelError
from spatial_trace_ros.geometry.camera_model import RgbdFrame
from spatial_trace_ros.trace.model import TraceModel, TraceQuery
from spatial_trace_ros.trace.pipeline import PipelineConfig, TraceOutcome, build_trace

_LOG = logging.getLogger("spatial_trace_ros.trace.service")
_MAX_RAW_ANSWER_CHARS = 4000


@dataclass(frozen=True)
class TraceJob:
    request_id: int
    instruction: str
    frame: RgbdFrame | None
    n_samples: int
    temperature: float
    pipeline: PipelineConfig


@dataclass(frozen=True)
class ServiceSettings:
    """What may change between requests (from ROS parameters)."""

    n_samples: int = 1
    temperature: float = 0.0
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    on_busy: Literal["cancel", "queue"] = "cancel"
    max_queue: int = 4


StatusCallback = Callable[[dict[str, Any]], None]
ResultCallback = Callable[[TraceJob, TraceOutcome], None]


class TraceService:
    """Owns the event loop thread, the model client and the request queue."""

    def __init__(
        self,
        model: TraceModel,
        on_status: StatusCallback,
        on_result: ResultCallback,
        settings: ServiceSettings | None = None,
    ) -> None:
        self.model = model
        self._on_status = on_status
        self._on_result = on_result
        self._settings = settings or ServiceSettings()
        self._lock = threading.Lock()
        self._next_id = 1
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="trace-service", daemon=True)
        self._current: asyncio.Task | None = None
        self._current_job: TraceJob | None = None
        self._queue: deque[TraceJob] = deque()
        self._superseded_by: dict[int, int] = {}
        self._closed = False
        self._thread.start()

    # -- called from any thread -----------------------------------------------------------------------
    def update(self, settings: ServiceSettings) -> None:
        """New settings for the next requests (the running one keeps its own)."""
        self._settings = settings

    def _new_job(self, instruction: str, frame: RgbdFrame | None) -> TraceJob:
        s = self._settings
        with self._lock:
            request_id = self._next_id
            self._next_id += 1
        return TraceJob(request_id, instruction, frame, s.n_samples, s.temperature, s.pipeline)

    def submit(self, instruction: str, frame: RgbdFrame) -> int:
        """Start (or queue) a request; returns its id at once."""
        if self._closed:
            raise ModelError("the trace service is shut down")
        job = self._new_job(instruction, frame)
        self._loop.call_soon_threadsafe(self._accept, job)
        return job.request_id

    def refuse(self, instruction: str, reason: str) -> int:
        """Record an instruction that cannot run (e.g. no camera frame) with a final 'refused' status."""
        job = self._new_job(instruction, None)
        self._emit(job, "refused", reason)
        return job.request_id

    def loop_alive(self) -> bool:
        """Whether the event loop thread still runs (False after ``close``)."""
        return self._thread.is_alive()

    def busy(self) -> bool:
        return self._current is not None and not self._current.done()

    def close(self, timeout_s: float = 5.0) -> None:
        """Cancel what is running, close the model client, stop the loop thread."""
        if self._closed:
            return
        self._closed = True
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        with contextlib.suppress(Exception):
            future.result(timeout_s)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout_s)

    # -- on the loop thread ---------------------------------------------------------------------------
    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        self._loop.close()

    def _accept(self, job: TraceJob) -> None:
        if not self.busy():
            self._start(job)
            return
        if self._settings.on_busy == "cancel":
            assert self._current is not None and self._current_job is not None
            self._superseded_by[self._current_job.request_id] = job.request_id
            self._current.cancel()
            self._start(job)
            return
        if len(self._queue) >= self._settings.max_queue:
            self._emit(job, "refused", f"{len(self._queue)} instructions are already waiting (max_queue = "
                                       f"{self._settings.max_queue}); wait for them or set on_busy to cancel")
            return
        self._queue.append(job)
        ahead = self._current_job.request_id if self._current_job else "?"
        self._emit(job, "running", f"queued behind request {ahead}")

    def _start(self, job: TraceJob) -> None:
        self._current_job = job
        self._current = self._loop.create_task(self._process(job))
        self._current.add_done_callback(lambda _t: self._next())

    def _next(self) -> None:
        if self.busy():
            return  # a newer request already took over (cancel mode)
        self._current, self._current_job = None, None
        if self._queue and not self._closed:
            self._start(self._queue.popleft())

    async def _process(self, job: TraceJob) -> None:
        t0 = time.perf_counter()
        try:
            await self._answer_and_publish(job, t0)
        except asyncio.CancelledError:
            newer = self._superseded_by.pop(job.request_id, None)
            reason = f"cancelled: superseded by request {newer}" if newer else "cancelled: the node is shutting down"
            self._emit(job, "refused", reason, latency_s=time.perf_counter() - t0)
            raise

    async def _answer_and_publish(self, job: TraceJob, t0: float) -> None:
        assert job.frame is not None
        self._emit(job, "running", "")
        query = TraceQuery(job.frame, job.instruction, job.n_samples, job.temperature)
        backend = getattr(self.model, "name", "?")
        try:
            answers = await self.model.answer(query)
        except ModelError as err:
            self._emit(job, "error", str(err), latency_s=time.perf_counter() - t0)
            return
        except Exception as err:  # a bug in a backend must not kill the node; report it instead
            _LOG.exception("trace backend %s failed", backend)
            self._emit(job, "error", f"internal error in the {backend} backend: {type(err).__name__}: {err}",
                       latency_s=time.perf_counter() - t0)
            return
        latency_s = time.perf_counter() - t0
        model_name = next((a.model for a in answers if a.model), "")
        try:
            outcome = await asyncio.to_thread(build_trace, answers, job.frame, job.pipeline, job.n_samples)
        except Exception as err:
            _LOG.exception("turning answers into a trace failed")
            self._emit(job, "error", f"internal error building the trace: {type(err).__name__}: {err}",
                       latency_s=latency_s, model=model_name)
            return
        if not outcome.ok:
            self._emit(job, "refused", outcome.reason, latency_s=latency_s, outcome=outcome, model=model_name)
            return
        try:
            self._on_result(job, outcome)
        except Exception as err:
            _LOG.exception("publishing the trace failed")
            self._emit(job, "error", f"publishing the trace failed: {type(err).__name__}: {err}",
                       latency_s=latency_s, outcome=outcome, model=model_name)
            return
        self._emit(job, "ok", "", latency_s=latency_s, outcome=outcome, model=model_name)

    async def _shutdown(self) -> None:
        self._queue.clear()
        task = self._current
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self.model.aclose()

    # -- status ---------------------------------------------------------------------------------------
    def _emit(
        self,
        job: TraceJob,
        state: str,
        reason: str,
        latency_s: float = 0.0,
        outcome: TraceOutcome | None = None,
        model: str = "",
    ) -> None:
        raw = outcome.raw_answer if outcome is not None else ""
        status = {
            "request_id": job.request_id,
            "instruction": job.instruction,
            "state": state,
            "reason": reason,
            "backend": getattr(self.model, "name", ""),
            "model": model,
            "latency_s": round(latency_s, 4),
            "n_samples": job.n_samples,
            "agreement": outcome.agreement if outcome is not None else None,
            "raw_answer": raw[:_MAX_RAW_ANSWER_CHARS],
            "n_points": int(outcome.trace.valid.sum()) if outcome is not None and outcome.trace is not None else 0,
            "n_points_total": len(outcome.trace) if outcome is not None and outcome.trace is not None else 0,
            "frame_stamp_s": job.frame.stamp_s if job.frame is not None else 0.0,
        }
        try:
            self._on_status(status)
        except Exception:
            _LOG.exception("publishing the trace status failed")
