"""TraceService: requests on a private event-loop thread against a fake model server process; one in
flight, cancel or queue, one final status per request with the fields of docs/interfaces.md."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from spatial_trace_ros.geometry.camera_model import CameraIntrinsics, RgbdFrame
from spatial_trace_ros.testing.fake_model_servers import (
    FakeConfig,
    configure_fake,
    fake_requests,
)
from spatial_trace_ros.testing.processes import wait_for
from spatial_trace_ros.trace.model import make_trace_model
from spatial_trace_ros.trace.service import ServiceSettings, TraceService

pytestmark = pytest.mark.integration

ANSWER = "[(250, 500, 1.0), (750, 500, 1.0)]"
STATUS_KEYS = {"request_id", "instruction", "state", "reason", "backend", "model", "latency_s", "n_samples",
               "agreement", "raw_answer", "n_points", "n_points_total", "frame_stamp_s"}


@pytest.fixture
def server(fake_model_server: str) -> str:
    """The module's fake, reset to defaults (and its request log cleared) for each test."""
    configure_fake(fake_model_server, **FakeConfig(answers=[ANSWER]).model_dump())
    return fake_model_server


class Recorder:
    def __init__(self) -> None:
        self.statuses: list[dict] = []
        self.results: list = []
        self.lock = threading.Lock()

    def on_status(self, status: dict) -> None:
        with self.lock:
            self.statuses.append(status)

    def on_result(self, job, outcome) -> None:
        with self.lock:
            self.results.append((job, outcome))

    def final(self, request_id: int) -> dict | None:
        with self.lock:
            return next((s for s in self.statuses if s["request_id"] == request_id and s["state"] != "running"), None)

    def wait_final(self, request_id: int, timeout_s: float = 20.0) -> dict:
        return wait_for(lambda: self.final(request_id), timeout_s, f"the final status of request {request_id}")


def make_frame() -> RgbdFrame:
    intr = CameraIntrinsics(320, 240, 250.0, 250.0, 160.0, 120.0)
    return RgbdFrame(np.zeros((240, 320, 3), np.uint8), np.full((240, 320), 1000, np.uint16), intr, stamp_s=42.0)


@pytest.fixture
def service_factory(server: str) -> Iterator:
    made: list[TraceService] = []

    def make(**settings: object) -> tuple[TraceService, Recorder]:
        rec = Recorder()
        # The fake answers differently per request, as a server that samples would.
        model = make_trace_model("robotracer", base_url=server, max_retries=0, timeout_s=10.0, server_samples=True)
        svc = TraceService(model, rec.on_status, rec.on_result, ServiceSettings(**settings))
        made.append(svc)
        return svc, rec

    yield make
    for svc in made:
        svc.close()


def test_a_request_ends_ok_with_a_complete_status(service_factory) -> None:
    svc, rec = service_factory()
    rid = svc.submit("put the cup away", make_frame())
    status = rec.wait_final(rid)
    assert set(status) == STATUS_KEYS
    assert status["state"] == "ok" and status["reason"] == "" and status["raw_answer"] == ANSWER
    assert (status["backend"], status["n_points"], status["n_samples"], status["frame_stamp_s"]) == (
        "robotracer", 2, 1, 42.0)
    assert status["agreement"] is None and status["latency_s"] > 0
    assert [s["state"] for s in rec.statuses] == ["running", "ok"]
    (job, outcome), = rec.results
    assert job.request_id == rid and outcome.trace.frame_id == "camera_color_optical_frame"


def test_a_new_instruction_cancels_the_running_one(service_factory, server: str) -> None:
    configure_fake(server, mode="slow", delay_s=1.0)
    svc, rec = service_factory(on_busy="cancel")
    first = svc.submit("first", make_frame())
    wait_for(lambda: fake_requests(server), 10.0, "the first request at the server")
    assert svc.busy() and rec.final(first) is None  # submit returned while the model is still thinking
    second = svc.submit("second", make_frame())
    assert rec.wait_final(first)["state"] == "refused"
    assert rec.final(first)["reason"] == f"cancelled: superseded by request {second}"
    assert rec.wait_final(second)["state"] == "ok"
    assert [job.instruction for job, _ in rec.results] == ["second"]


def test_queue_mode_runs_in_order_and_bounds_the_queue(service_factory, server: str) -> None:
    configure_fake(server, mode="slow", delay_s=0.5)
    svc, rec = service_factory(on_busy="queue", max_queue=1)
    ids = [svc.submit(name, make_frame()) for name in ("a", "b", "c")]
    assert rec.wait_final(ids[2])["state"] == "refused"
    assert "1 instructions are already waiting (max_queue = 1)" in rec.final(ids[2])["reason"]
    assert rec.wait_final(ids[0])["state"] == "ok" and rec.wait_final(ids[1])["state"] == "ok"
    assert [job.instruction for job, _ in rec.results] == ["a", "b"]
    assert [r["text"].split('"')[1] for r in fake_requests(server)] == ["a", "b"]


def test_model_errors_and_refusals_leave_the_service_working(service_factory, server: str) -> None:
    svc, rec = service_factory()
    configure_fake(server, mode="failing")
    status = rec.wait_final(svc.submit("fails", make_frame()))
    assert status["state"] == "error" and "HTTP 500" in status["reason"]
    configure_fake(server, mode="garbage")
    status = rec.wait_final(svc.submit("nonsense", make_frame()))
    assert status["state"] == "refused" and "no list of points found" in status["reason"]
    assert status["raw_answer"].startswith("I am sorry")
    rid = svc.refuse("no camera", "no color image received yet")
    assert rec.final(rid)["state"] == "refused" and rec.final(rid)["frame_stamp_s"] == 0.0
    configure_fake(server, mode="normal")
    assert rec.wait_final(svc.submit("works again", make_frame()))["state"] == "ok"


def test_new_settings_apply_to_the_next_request(service_factory, server: str) -> None:
    configure_fake(server, answers=[ANSWER, ANSWER, "[(250, 100, 1.0), (750, 100, 1.0)]"])
    svc, rec = service_factory()
    svc.update(ServiceSettings(n_samples=3, temperature=0.7))
    status = rec.wait_final(svc.submit("three samples", make_frame()))
    assert status["state"] == "ok" and status["n_samples"] == 3 and status["agreement"] == pytest.approx(2 / 3)
    assert len(fake_requests(server)) == 3


def test_close_cancels_the_running_request(service_factory, server: str) -> None:
    configure_fake(server, mode="slow", delay_s=30.0)
    svc, rec = service_factory()
    rid = svc.submit("never answered", make_frame())
    wait_for(lambda: fake_requests(server), 10.0, "the request at the server")
    svc.close()
    assert rec.final(rid)["state"] == "refused"
    assert rec.final(rid)["reason"] == "cancelled: the node is shutting down"
    assert not svc.loop_alive()
