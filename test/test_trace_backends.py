"""The three HTTP trace backends, through httpx, against fake servers in their own process that speak
the real APIs: normal, slow, failing, flaky, garbage and malformed servers, auth, retries,
concurrent samples and cancellation."""

from __future__ import annotations

import asyncio
import hashlib

import numpy as np
import pytest

from spatial_trace_ros.errors import ConfigError, ModelError
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics, RgbdFrame
from spatial_trace_ros.testing.fake_model_servers import (
    FakeConfig,
    configure_fake,
    fake_requests,
)
from spatial_trace_ros.testing.processes import free_port, wait_for
from spatial_trace_ros.trace.model import TraceModel, TraceQuery, make_trace_model
from spatial_trace_ros.trace.pipeline import build_trace

pytestmark = pytest.mark.integration

INTR = CameraIntrinsics(320, 240, 250.0, 250.0, 160.0, 120.0)
ANSWER = "[(250, 500, 1.0), (500, 500, 1.1), (750, 500, 1.2)]"


@pytest.fixture
def server(fake_model_server: str) -> str:
    """The module's fake, reset to defaults (and its request log cleared) for each test."""
    configure_fake(fake_model_server, **FakeConfig(answers=[ANSWER]).model_dump())
    return fake_model_server


def make_frame() -> RgbdFrame:
    rng = np.random.default_rng(1)
    color = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    depth = rng.integers(400, 3000, (240, 320), dtype=np.uint16)
    return RgbdFrame(color, depth, INTR, 0.001, 3.0)


def ask(model: TraceModel, n_samples: int = 1, temperature: float = 0.0, instruction: str = "put the cup away"):
    async def run() -> list:
        try:
            return await model.answer(TraceQuery(make_frame(), instruction, n_samples, temperature))
        finally:
            await model.aclose()

    return asyncio.run(run())


def backend(name: str, base_url: str, **options: object) -> TraceModel:
    url = base_url + "/v1" if name == "openai" else base_url
    defaults: dict[str, object] = {"model": "robobrain-2.5"} if name == "openai" else {}
    return make_trace_model(name, base_url=url, retry_backoff_s=0.01, **{**defaults, **options})


# -- each API, normal server ------------------------------------------------------------------------


def test_robotracer_sends_prompt_image_and_lossless_depth(server: str) -> None:
    (ans,) = ask(backend("robotracer", server))
    assert ans.text == ANSWER and ans.convention == "robotracer" and ans.points_uvd is None
    (req,) = fake_requests(server)
    assert req["text"].startswith('Point the 3D object-centric visual trace for the task "put the cup away".')
    assert req["enable_depth"] == 1 and req["image_shape"] == [240, 320, 3]
    assert req["depth_sha1"] == hashlib.sha1(make_frame().depth.tobytes()).hexdigest()
    assert np.allclose(req["color_mean_rgb"], make_frame().color.reshape(-1, 3).mean(axis=0), atol=2.0)


def test_robotracer_2d_prompt_and_no_depth(server: str) -> None:
    ask(backend("robotracer", server, trace_dim="2d", send_depth=False))
    (req,) = fake_requests(server)
    assert req["text"].startswith("Point the 2D object-centric visual trace") and "(x1, y1)" in req["text"]
    assert req["enable_depth"] == 0 and req["depth_shape"] is None


def test_openai_chat_completion_request_and_answer(server: str) -> None:
    model = backend("openai", server, prompt="Where should it go? {instruction}", convention="robobrain",
                    max_tokens=77, system_prompt="You are a robot.", extra_body={"top_p": 0.9})
    (ans,) = ask(model, temperature=0.3)
    assert ans.text == ANSWER and ans.convention == "robobrain" and ans.model == "robobrain-2.5"
    (req,) = fake_requests(server)
    assert req["text"] == "Where should it go? put the cup away"
    assert (req["model"], req["n"], req["temperature"], req["max_tokens"]) == ("robobrain-2.5", 1, 0.3, 77)
    assert req["system"] == ["You are a robot."] and req["extra"] == {"top_p": 0.9}
    assert req["image_shape"] == [240, 320, 3]


def test_openai_samples_as_concurrent_requests_or_one_request_with_n(server: str) -> None:
    configure_fake(server, answers=["[(1, 1), (2, 2)]", "[(3, 3), (4, 4)]", "[(5, 5), (6, 6)]"])
    answers = ask(backend("openai", server), n_samples=3, temperature=0.7)
    assert sorted(a.text for a in answers) == ["[(1, 1), (2, 2)]", "[(3, 3), (4, 4)]", "[(5, 5), (6, 6)]"]
    assert [r["n"] for r in fake_requests(server)] == [1, 1, 1]
    configure_fake(server)
    answers = ask(backend("openai", server, use_n=True), n_samples=3, temperature=0.7)
    assert len(answers) == 3 and [r["n"] for r in fake_requests(server)] == [3]


def test_trace_server_returns_pixel_points_and_gets_depth_and_intrinsics(server: str) -> None:
    points = [[[10.0, 20.0, 1.5], [30.0, 40.0, None]], [[11.0, 21.0, 1.4], [31.0, 41.0, 1.3]]]
    configure_fake(server, trace_points=points, answers=["a", "b"])
    answers = ask(backend("http", server, max_new_tokens=99), n_samples=2, temperature=0.5)
    np.testing.assert_array_equal(answers[0].points_uvd, [[10, 20, 1.5], [30, 40, np.nan]])
    np.testing.assert_array_equal(answers[1].points_uvd, points[1])
    assert [a.text for a in answers] == ["a", "b"] and answers[0].model == "fake-vlm:0"
    assert set(answers[0].metadata["server_timings_ms"]) == {"decode", "queue", "inference", "total"}
    (req,) = fake_requests(server)  # one request carries all samples
    assert (req["n_samples"], req["temperature"], req["max_new_tokens"]) == (2, 0.5, 99)
    assert req["intrinsics"] == {"fx": 250.0, "fy": 250.0, "cx": 160.0, "cy": 120.0, "width": 320, "height": 240}
    assert req["depth_sha1"] == hashlib.sha1(make_frame().depth.tobytes()).hexdigest()
    assert req["depth_scale_m"] == 0.001


def test_bearer_token_from_option_or_environment(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    configure_fake(server, token="s3cret")
    with pytest.raises(ModelError, match=r"HTTP 401: missing or wrong bearer token \(check api_key / api_key_env\)"):
        ask(backend("http", server, max_retries=3))
    assert [r["auth"] for r in fake_requests(server)] == ["refused"]  # a 401 is not retried
    assert len(ask(backend("http", server, api_key="s3cret"))) == 1
    monkeypatch.setenv("MY_TRACE_TOKEN", "s3cret")
    assert len(ask(backend("openai", server, api_key_env="MY_TRACE_TOKEN"))) == 1
    monkeypatch.setenv("SPATIAL_TRACE_SERVER_TOKEN", "s3cret")
    assert len(ask(backend("http", server))) == 1
    with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE"):
        backend("http", server, api_key_env="NOT_SET_ANYWHERE")


# -- misbehaving servers ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["robotracer", "openai", "http"])
def test_slow_server_times_out_after_the_retries(server: str, name: str) -> None:
    configure_fake(server, mode="slow", delay_s=3.0)
    with pytest.raises(ModelError, match=r"failed after 2 attempts: no reply within timeout_s = 0.3 s"):
        ask(backend(name, server, timeout_s=0.3, max_retries=1))
    assert len(fake_requests(server)) == 2


@pytest.mark.parametrize("name", ["robotracer", "openai", "http"])
def test_failing_server_is_retried_then_reported(server: str, name: str) -> None:
    configure_fake(server, mode="failing")
    detail = "Internal Server Error" if name == "robotracer" else "fake model crashed"
    with pytest.raises(ModelError, match=rf"failed after 3 attempts: HTTP 500: .*{detail}"):
        ask(backend(name, server, max_retries=2))
    assert len(fake_requests(server)) == 3


def test_flaky_server_succeeds_within_the_retries(server: str) -> None:
    configure_fake(server, mode="flaky", fail_first=2)
    assert [a.text for a in ask(backend("robotracer", server, max_retries=2))] == [ANSWER]
    assert len(fake_requests(server)) == 3
    configure_fake(server, mode="flaky", fail_first=2)
    with pytest.raises(ModelError, match="HTTP 503: fake model warming up"):
        ask(backend("robotracer", server, max_retries=1))


def test_some_failed_samples_still_give_the_others(server: str) -> None:
    configure_fake(server, mode="flaky", fail_first=1)
    answers = ask(backend("openai", server, max_retries=0), n_samples=3, temperature=0.5)
    assert len(answers) == 2 and all(a.metadata["failed_samples"] == 1 for a in answers)


@pytest.mark.parametrize(
    ("name", "mode", "message"),
    [
        ("robotracer", "malformed", "replied without an 'answer' text"),
        ("openai", "malformed", "replied without choices"),
        ("http", "malformed", "replied with an unexpected body"),
        ("robotracer", "not_json", "answered with a body that is not JSON: '<<not json>>'"),
        ("http", "not_json", "not JSON"),
    ],
)
def test_malformed_replies_are_model_errors(server: str, name: str, mode: str, message: str) -> None:
    configure_fake(server, mode=mode)
    with pytest.raises(ModelError, match=message):
        ask(backend(name, server))
    assert len(fake_requests(server)) == 1  # a broken reply is not retried


@pytest.mark.parametrize("name", ["robotracer", "openai", "http"])
def test_garbage_answers_reach_the_pipeline_and_are_refused_there(server: str, name: str) -> None:
    configure_fake(server, mode="garbage")
    answers = ask(backend(name, server))
    outcome = build_trace(answers, make_frame())
    assert not outcome.ok
    expected = "outside the 320x240 image" if name == "http" else "no list of points found"
    assert expected in outcome.reason


def test_server_down_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match=r"failed after 2 attempts: cannot reach the server \(ConnectError"):
        ask(backend("robotracer", f"http://127.0.0.1:{free_port()}", max_retries=1))


def test_cancellation_aborts_the_request_in_flight(server: str) -> None:
    configure_fake(server, mode="slow", delay_s=30.0)
    model = backend("robotracer", server, timeout_s=60.0)

    async def run() -> asyncio.Task:
        task = asyncio.create_task(model.answer(TraceQuery(make_frame(), "wait forever")))
        await asyncio.to_thread(wait_for, lambda: fake_requests(server), 10.0, "the request at the server")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await model.aclose()
        return task

    assert asyncio.run(run()).cancelled()
    assert len(fake_requests(server)) == 1  # cancelled, not retried


# -- options ------------------------------------------------------------------------------------------


def test_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match=r"invalid options for trace backend 'robotracer': timeout_s = -1: .*"
                                          r"greater than 0; colour = 'red': Extra inputs"):
        make_trace_model("robotracer", timeout_s=-1, colour="red")
    with pytest.raises(ConfigError, match=r"'openai': model is required \(model name as the server knows it"):
        make_trace_model("openai")
    with pytest.raises(ConfigError, match=r"model = '  ': .*name the served model"):
        make_trace_model("openai", model="  ")
    with pytest.raises(ConfigError, match=r"base_url = 'gpu:8000': .*must start with http://"):
        make_trace_model("http", base_url="gpu:8000")
    with pytest.raises(ConfigError, match="neither a known template"):
        make_trace_model("robotracer", prompt="describe the image")
    with pytest.raises(ConfigError, match="unknown trace backend 'triton'; available: http, openai, oracle"):
        make_trace_model("triton")
