"""The server's core, free of HTTP: a validated ``TraceRequest`` in, a ``TraceResponse`` out.

It owns the model's life (warm-up before ready, draining at shutdown) and the path of one request:
decode and preprocess in a worker thread, wait for a batch slot, run, convert to pixels of the
client's image. Every refusal is a ``RequestError`` carrying its HTTP status.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from spatial_trace_ros.errors import TraceParseError
from spatial_trace_ros.server.backends.base import Backend, TextQuery
from spatial_trace_ros.server.batching import MicroBatcher, QueueFullError
from spatial_trace_ros.server.errors import RequestError
from spatial_trace_ros.server.images import DecodedFrame, decode_request, to_model_input, trace_to_pixels
from spatial_trace_ros.server.metrics import ServerMetrics
from spatial_trace_ros.server.schema import ModelInfo, Timings, TraceRequest, TraceResponse, TraceSample
from spatial_trace_ros.server.settings import ServerSettings

log = logging.getLogger(__name__)
_RETRY = {"Retry-After": "1"}


class TraceService:
    """One model behind a micro-batcher. States: starting → warming_up → ready → draining (or failed)."""

    def __init__(self, backend: Backend, settings: ServerSettings, metrics: ServerMetrics) -> None:
        self.backend = backend
        self.settings = settings
        self.metrics = metrics
        batch = 1
        if backend.kind == "tensor":
            batch = min(settings.max_batch_size, backend.batch_limit or settings.max_batch_size)
        self.batcher = MicroBatcher(self._run_batch, batch, settings.max_batch_wait_ms, settings.max_queue, metrics)
        self.state = "starting"
        self.failure = ""
        self.in_flight = 0
        self.on_fatal: Callable[[str], None] = lambda reason: None
        self._warmup_task: asyncio.Task | None = None
        identity = backend.identity
        self.model_info = ModelInfo(name=identity.name, version=identity.version, backend=identity.backend)
        metrics.model_info.info({"name": identity.name, "version": identity.version, "backend": identity.backend,
                                 "device": backend.device, "max_batch_size": str(batch)})
        readers = backend.gpu_memory_readers()
        if readers is not None:
            metrics.watch_gpu_memory(*readers)

    # -- life cycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start batching and warm the model up in the background; /readyz turns ready when done."""
        self.batcher.start()
        self.state = "warming_up"
        self._warmup_task = asyncio.get_running_loop().create_task(self._warm_up(), name="warm-up")

    async def _warm_up(self) -> None:
        started = time.perf_counter()
        try:
            for _ in range(self.settings.warmup_batches):
                await self.batcher.call_in_worker(self._warm_up_once)
        except Exception as err:  # reported and fatal: a model that cannot run must not serve
            self.state, self.failure = "failed", f"warm-up failed: {err.__class__.__name__}: {err}"
            log.exception("model warm-up failed; stopping the server")
            self.on_fatal(self.failure)
            return
        if self.state == "warming_up":
            self.state = "ready"
            self.metrics.ready.set(1)
            log.info("ready: %s, warmed up in %.2f s", self.backend.describe(), time.perf_counter() - started)

    def _warm_up_once(self) -> None:
        backend = self.backend
        if backend.kind == "tensor":
            for size in sorted({self.batcher.max_batch_size, 1}, reverse=True):
                shape = (size, 3, backend.input_height, backend.input_width)
                backend.infer(np.zeros(shape, np.float32), np.zeros((size, 1, *shape[2:]), np.float32),
                              ["warm up"] * size)
        else:
            backend.warm_up()

    def begin_drain(self) -> None:
        """Refuse new requests from now on; the ones in flight finish."""
        if self.state != "draining":
            log.info("draining: new requests are refused, %d in flight finish", self.in_flight)
        self.state = "draining"
        self.metrics.ready.set(0)

    async def stop(self) -> None:
        self.begin_drain()
        if self._warmup_task is not None and not self._warmup_task.done():
            self._warmup_task.cancel()
        await self.batcher.stop()

    def readiness(self) -> tuple[bool, str]:
        reasons = {
            "starting": "the server is starting",
            "warming_up": "the model is warming up",
            "draining": "the server is shutting down",
            "failed": self.failure,
        }
        return self.state == "ready", reasons.get(self.state, "ready")

    # -- one request -----------------------------------------------------------------------------
    async def trace(self, request: TraceRequest) -> TraceResponse:
        ready, reason = self.readiness()
        if not ready:
            raise RequestError(503, f"{reason}; retry when /readyz answers 200", "not_ready", _RETRY)
        problem = self.backend.sampling_problem(request.n_samples, request.temperature)
        if problem:
            raise RequestError(400, problem)
        started = time.perf_counter()
        self.in_flight += 1
        self.metrics.in_flight.set(self.in_flight)
        try:
            frame, payload = await asyncio.to_thread(self._prepare, request)
            decoded = time.perf_counter()
            try:
                result, timing = await self.batcher.submit(payload)
            except QueueFullError as err:
                raise RequestError(
                    503, f"the server is busy ({err}); retry shortly, or raise --max-queue", "queue_full", _RETRY
                ) from None
            except RequestError:
                raise
            except Exception as err:  # the model failed on this batch; the server stays up
                log.exception("model call failed")
                raise RequestError(500, f"the model failed: {err.__class__.__name__}: {err}", "error") from None
            samples = self._samples(result, frame)
            done = time.perf_counter()
            timings = Timings(
                decode=(decoded - started) * 1e3,
                queue=timing.queue_s * 1e3,
                inference=timing.inference_s * 1e3,
                total=(done - started) * 1e3,
            )
            return TraceResponse(samples=samples, model=self.model_info, timings_ms=timings)
        finally:
            self.in_flight -= 1
            self.metrics.in_flight.set(self.in_flight)

    def _prepare(self, request: TraceRequest) -> tuple[DecodedFrame, Any]:
        frame = decode_request(request, self.settings.max_image_side_px, self.backend.needs_pixels)
        backend = self.backend
        if backend.kind == "tensor":
            return frame, (*to_model_input(frame, backend.input_width, backend.input_height), request.instruction)
        query = TextQuery(frame.rgb, request.instruction, request.n_samples, request.temperature,
                          request.max_new_tokens, request.seed, request.prompt, frame, request.intrinsics,
                          request.enable_spatial)
        return frame, query

    def _run_batch(self, payloads: Sequence[Any]) -> list[Any]:
        backend = self.backend
        if backend.kind == "text":
            return [backend.generate(p) for p in payloads]
        images = np.stack([p[0] for p in payloads])
        depths = np.stack([p[1] for p in payloads])
        traces = backend.infer(images, depths, [p[2] for p in payloads])
        if traces.ndim != 3 or traces.shape[0] != len(payloads) or traces.shape[2] != 3:
            raise ValueError(f"the model returned shape {list(traces.shape)} for a batch of {len(payloads)}; "
                             "the contract is [B, K, 3]")
        return list(traces)

    def _samples(self, result: Any, frame: DecodedFrame) -> list[TraceSample]:
        if self.backend.kind == "tensor":
            return [TraceSample(points=trace_to_pixels(result, frame.width, frame.height), text=None)]
        from spatial_trace_ros.trace.parser import parse_answer

        samples = []
        for text in result:
            try:
                parsed = parse_answer(text, self.backend.convention, frame.width, frame.height)
            except TraceParseError as err:
                log.info("answer not parsed (returned as text only): %s", err)
                samples.append(TraceSample(points=[], text=text))
                continue
            points = [
                (float(u), float(v), float(d) if np.isfinite(d) else None)
                for (u, v), d in zip(parsed.uv, parsed.depth_m)
            ]
            samples.append(TraceSample(points=points, text=text))
        return samples
