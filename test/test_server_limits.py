"""The server under pressure, with a deliberately slow model (~0.2 s per frame): a full queue answers 503,
slow answers 504, warm-up answers 503 until ready, and a stop signal lets requests in flight finish
while new ones are refused."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch

from helpers.trace_server import (
    AUTH,
    RunningServer,
    SlowTraceNet,
    export_onnx,
    metric_samples,
    random_image,
    start_server,
    trace_body,
    write_token,
)
from spatial_trace_ros.testing.processes import ProcessGroup, wait_for

pytestmark = pytest.mark.integration

WIDTH, HEIGHT = 48, 32


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("server_limits")
    return export_onnx(SlowTraceNet().eval(), directory / "slow.onnx", WIDTH, HEIGHT)


@pytest.fixture
def group(tmp_path: Path) -> Iterator[ProcessGroup]:
    with ProcessGroup(tmp_path / "procs") as procs:
        yield procs
        print(procs.logs())


def fire(server: RunningServer, n: int) -> list[httpx.Response]:
    """``n`` requests at once, each on its own connection."""

    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=n)
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=60.0, limits=limits) as client:
            bodies = [trace_body(random_image(WIDTH, HEIGHT, i)) for i in range(n)]
            return await asyncio.gather(*(client.post("/v1/trace", json=b) for b in bodies))

    return asyncio.run(run())


def count(server: RunningServer, outcome: str) -> float:
    return server.metrics()[("spatial_trace_requests_total", (("outcome", outcome),))]


def test_full_queue_answers_503_and_batching_off_runs_one_at_a_time(
    group: ProcessGroup, tmp_path: Path, slow_model: Path
) -> None:
    server = start_server(group, "queue", "onnx", slow_model, write_token(tmp_path), "--max-batch-size", "1",
                          "--max-queue", "2", "--warmup-batches", "1")
    responses = fire(server, 10)
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) == {200, 503}, statuses
    for r in responses:
        if r.status_code == 503:
            assert "busy" in r.json()["detail"] and "--max-queue" in r.json()["detail"]
            assert r.headers["retry-after"] == "1"
        else:
            assert len(r.json()["samples"][0]["points"]) == 2
    assert count(server, "queue_full") == statuses[503]
    assert count(server, "ok") == statuses[200]
    metrics = server.metrics()
    assert metrics[("spatial_trace_batch_size_bucket", (("le", "1.0"),))] == metrics[
        ("spatial_trace_batch_size_count", ())] == statuses[200]
    assert metrics[("spatial_trace_queue_depth", ())] == 0
    assert fire(server, 1)[0].status_code == 200  # the server recovered


def test_requests_slower_than_the_timeout_get_504_and_are_dropped(
    group: ProcessGroup, tmp_path: Path, slow_model: Path
) -> None:
    server = start_server(group, "timeout", "onnx", slow_model, write_token(tmp_path), "--max-batch-size", "1",
                          "--request-timeout-s", "1", "--warmup-batches", "1")
    responses = fire(server, 12)
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 504} and statuses[504] >= 1, statuses
    timed_out = next(r for r in responses if r.status_code == 504)
    assert "no answer within 1 s" in timed_out.json()["detail"]
    assert count(server, "timeout") == statuses[504]
    wait_for(lambda: server.metrics()[("spatial_trace_in_flight_requests", ())] == 0, 30.0, "the queue to drain")
    metrics = server.metrics()
    # requests that gave up while queued never reached the model
    assert metrics[("spatial_trace_batch_size_count", ())] < len(responses)
    assert httpx.get(server.url + "/readyz").status_code == 200  # the server stayed up


def test_warm_up_then_graceful_shutdown_with_requests_in_flight(
    group: ProcessGroup, tmp_path: Path, slow_model: Path
) -> None:
    server = start_server(group, "lifecycle", "onnx", slow_model, write_token(tmp_path), "--max-batch-size", "1",
                          "--warmup-batches", "10", wait_path="/healthz")
    warming = httpx.get(server.url + "/readyz")
    assert warming.status_code == 503 and "warming up" in warming.json()["detail"]
    early = httpx.post(server.url + "/v1/trace", json=trace_body(random_image(WIDTH, HEIGHT, 0)), headers=AUTH)
    assert early.status_code == 503 and "warming up" in early.json()["detail"]
    wait_for(lambda: httpx.get(server.url + "/readyz").status_code == 200, 120.0, "the warm-up to finish")

    n = 4

    async def scenario() -> tuple[list[httpx.Response], object]:
        limits = httpx.Limits(max_connections=n + 2)
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=60.0, limits=limits) as client:
            in_flight = [asyncio.create_task(client.post("/v1/trace", json=trace_body(random_image(WIDTH, HEIGHT, i))))
                         for i in range(n)]
            while True:  # every request accepted and being served before the signal
                scrape = metric_samples((await client.get("/metrics")).text)
                if scrape[("spatial_trace_in_flight_requests", ())] == n:
                    break
                await asyncio.sleep(0.02)
            server.process.popen.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=10.0) as late_client:
                try:
                    late: object = (await late_client.post("/v1/trace", json=trace_body(random_image(8, 8, 9))))
                except httpx.TransportError as err:
                    late = err
            return await asyncio.gather(*in_flight), late

    finished, late = asyncio.run(scenario())
    assert [r.status_code for r in finished] == [200] * n
    assert all(len(r.json()["samples"][0]["points"]) == 2 for r in finished)
    if isinstance(late, httpx.Response):
        assert late.status_code == 503 and "shutting down" in late.json()["detail"]
    else:
        assert isinstance(late, httpx.ConnectError), repr(late)
    wait_for(lambda: not server.process.alive(), 30.0, "the server to exit")
    assert server.process.popen.returncode in (0, -signal.SIGTERM)
    log = server.process.output()
    assert "draining" in log and "Application shutdown complete" in log
