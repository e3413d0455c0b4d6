"""Load: 2,000 requests from 32 concurrent clients, all answered without error, and the server's resident
memory flat afterwards (no per-request leak). Speed is measured in bench/bench_server.py, not here."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import psutil
import pytest
import torch

from helpers.trace_server import AUTH, TinyTraceNet, export_onnx, random_image, start_server, trace_body, write_token

pytestmark = pytest.mark.integration

SIDE_PX = 16
CONCURRENCY = 32
N_REQUESTS = 2000
WARM_UP_REQUESTS = 200
MAX_RSS_GROWTH_BYTES = 16 * 1024 * 1024  # well below one leaked image per request (2000 x 48 kB decoded)


def run_clients(url: str, n_requests: int, bodies: list[dict]) -> list[int]:
    """``n_requests`` requests from ``CONCURRENCY`` clients that each send one request after another."""
    statuses: list[int] = []

    async def client_loop(client: httpx.AsyncClient, start: int) -> None:
        for i in range(start, n_requests, CONCURRENCY):
            try:
                response = await client.post("/v1/trace", json=bodies[i % len(bodies)])
                statuses.append(response.status_code)
            except httpx.TransportError as err:
                statuses.append(-1)
                print(f"request {i}: {err!r}")

    async def main() -> None:
        limits = httpx.Limits(max_connections=CONCURRENCY)
        async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60.0, limits=limits) as client:
            await asyncio.gather(*(client_loop(client, k) for k in range(CONCURRENCY)))

    asyncio.run(main())
    return statuses


def test_2000_requests_at_concurrency_32_without_errors_or_memory_growth(procs, tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = export_onnx(TinyTraceNet().eval(), tmp_path / "tiny.onnx", SIDE_PX, SIDE_PX)
    server = start_server(procs, "load", "onnx", model, write_token(tmp_path), "--max-batch-size", "32",
                          "--max-queue", "64")
    bodies = [trace_body(random_image(SIDE_PX, SIDE_PX, i)) for i in range(64)]
    process = psutil.Process(server.process.pid)

    warm = run_clients(server.url, WARM_UP_REQUESTS, bodies)
    assert warm == [200] * WARM_UP_REQUESTS
    rss_before = process.memory_info().rss
    statuses = run_clients(server.url, N_REQUESTS, bodies)
    rss_after = process.memory_info().rss

    assert statuses.count(200) == N_REQUESTS, {s: statuses.count(s) for s in set(statuses)}
    metrics = server.metrics()
    assert metrics[("spatial_trace_requests_total", (("outcome", "ok"),))] == WARM_UP_REQUESTS + N_REQUESTS
    assert metrics[("spatial_trace_in_flight_requests", ())] == 0
    growth = rss_after - rss_before
    assert growth < MAX_RSS_GROWTH_BYTES, f"server RSS grew by {growth / 2**20:.1f} MiB over {N_REQUESTS} requests"
    print(f"RSS {rss_before / 2**20:.1f} -> {rss_after / 2**20:.1f} MiB; "
          f"{metrics[('spatial_trace_batch_size_count', ())]:.0f} batches")
