"""Prometheus metrics of one server process, in a registry of its own (so tests can run several apps).

Names (all prefixed ``spatial_trace_``): ``requests_total{outcome}``, ``request_latency_seconds``,
``queue_wait_seconds``, ``inference_seconds`` (per batch), ``batch_size``, ``queue_depth``,
``in_flight_requests``, ``ready``, ``model_info``, and on CUDA ``gpu_memory_used_bytes`` /
``gpu_memory_total_bytes`` (whole device) and ``gpu_memory_allocated_bytes`` (torch allocator).
The standard ``process_*`` metrics (resident memory, CPU time, open files) come along.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

OUTCOMES = ("ok", "bad_request", "too_large", "unauthorized", "queue_full", "not_ready", "timeout", "error")
_LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256)


class ServerMetrics:
    def __init__(self) -> None:
        disable_created_metrics()  # the *_created series only add noise to every scrape
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "spatial_trace_requests", "Trace requests by outcome", ["outcome"], registry=r
        )
        for outcome in OUTCOMES:
            self.requests.labels(outcome)
        self.request_latency = Histogram(
            "spatial_trace_request_latency_seconds", "Time from request received to response ready, any outcome",
            buckets=_LATENCY_BUCKETS_S, registry=r,
        )
        self.queue_wait = Histogram(
            "spatial_trace_queue_wait_seconds", "Time a request waited for a batch slot",
            buckets=_LATENCY_BUCKETS_S, registry=r,
        )
        self.inference = Histogram(
            "spatial_trace_inference_seconds", "Model time per batch", buckets=_LATENCY_BUCKETS_S, registry=r
        )
        self.batch_size = Histogram(
            "spatial_trace_batch_size", "Requests per model call", buckets=_BATCH_BUCKETS, registry=r
        )
        self.queue_depth = Gauge("spatial_trace_queue_depth", "Requests waiting for a batch slot", registry=r)
        self.in_flight = Gauge(
            "spatial_trace_in_flight_requests", "Trace requests being decoded, queued or run", registry=r
        )
        self.ready = Gauge("spatial_trace_ready", "1 when the model is loaded and warmed up", registry=r)
        self.model_info = Info("spatial_trace_model", "The model this server hosts", registry=r)
        ProcessCollector(registry=r)

    def watch_gpu_memory(self, used_total_bytes: Callable[[], tuple[int, int]],
                         allocated_bytes: Callable[[], int] | None = None) -> None:
        """Gauges read at scrape time from the given callables (device-wide used/total, allocator bytes)."""
        used = Gauge("spatial_trace_gpu_memory_used_bytes", "GPU memory in use on the device", registry=self.registry)
        total = Gauge("spatial_trace_gpu_memory_total_bytes", "GPU memory on the device", registry=self.registry)
        used.set_function(lambda: used_total_bytes()[0])
        total.set_function(lambda: used_total_bytes()[1])
        if allocated_bytes is not None:
            allocated = Gauge(
                "spatial_trace_gpu_memory_allocated_bytes", "GPU memory held by torch tensors", registry=self.registry
            )
            allocated.set_function(allocated_bytes)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
