"""The transformers backend serving a local VLM checkpoint (a tiny LLaVA made offline in the test) through
the real HTTP stack: the RoboTracer prompt goes in, the text answer comes back parsed into pixels."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from helpers.tiny_vlm import build_tiny_vlm
from helpers.trace_server import AUTH, RunningServer, random_image, start_server, trace_body, write_token
from spatial_trace_ros import cli
from spatial_trace_ros.server.backends.base import ModelIdentity, TextBackend, TextQuery
from spatial_trace_ros.server.metrics import ServerMetrics
from spatial_trace_ros.server.schema import TraceRequest
from spatial_trace_ros.server.service import TraceService
from spatial_trace_ros.server.settings import build_settings
from spatial_trace_ros.testing.processes import ProcessGroup

ANSWER = "The cup goes right. [(500, 250, 1.5), (620, 300, 1.25)]"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny_vlm") / "checkpoint", ANSWER)


@pytest.fixture(scope="module")
def server(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    directory = tmp_path_factory.mktemp("vlm_server")
    with ProcessGroup(directory / "procs") as group:
        yield start_server(group, "vlm", "transformers", checkpoint, write_token(directory), "--warmup-batches", "1",
                           "--model-name", "tiny-llava")
        print(group.logs())


@pytest.mark.integration
def test_greedy_request_returns_one_parsed_answer(server: RunningServer) -> None:
    rgb = random_image(64, 48, 0)
    response = httpx.post(server.url + "/v1/trace", json=trace_body(rgb, np.full((48, 64), 900, np.uint16)),
                          headers=AUTH, timeout=60.0)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["name"] == "tiny-llava" and body["model"]["backend"] == "transformers"
    (sample,) = body["samples"]
    assert sample["text"] == ANSWER
    # RoboTracer's 0-1000 scale in pixels of the 64x48 image, depth as the model wrote it
    np.testing.assert_allclose(np.array(sample["points"], dtype=float), [[32.0, 12.0, 1.5], [39.68, 14.4, 1.25]])


@pytest.mark.integration
def test_sampling_returns_n_samples(server: RunningServer) -> None:
    body = trace_body(random_image(40, 30, 1), n_samples=3, temperature=0.7, max_new_tokens=16)
    response = httpx.post(server.url + "/v1/trace", json=body, headers=AUTH, timeout=60.0)
    assert response.status_code == 200, response.text
    samples = response.json()["samples"]
    assert len(samples) == 3 and all(s["text"] == ANSWER and len(s["points"]) == 2 for s in samples)


class FixedText(TextBackend):
    """A text model that always answers ``text``, to exercise the service's handling of answers."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.convention = "robotracer"
        self.device = "cpu"
        self.identity = ModelIdentity("fixed", "1", "transformers")

    def generate(self, query: TextQuery) -> list[str]:
        return [self.text] * (query.n_samples if query.temperature > 0 else 1)


@pytest.mark.parametrize(
    ("text", "points"),
    [
        ("I cannot see a cup here.", []),
        ("[(100, 500), (900, 500)]", [[20.0, 50.0, None], [180.0, 50.0, None]]),
    ],
)
def test_unparsable_answers_come_back_as_text_and_2d_answers_without_depth(text: str, points: list) -> None:
    settings = build_settings(backend="transformers", model_path="unused", allow_no_auth=True)

    async def scenario() -> dict:
        service = TraceService(FixedText(text), settings, ServerMetrics())
        await service.start()
        while service.readiness()[0] is False:
            await asyncio.sleep(0.01)
        image = trace_body(random_image(200, 100, 2))["image_b64"]
        request = TraceRequest(instruction="pick up the cup", image_b64=image)
        response = await service.trace(request)
        await service.stop()
        return response.model_dump()

    response = asyncio.run(scenario())
    assert response["samples"] == [{"points": [tuple(p) for p in points], "text": text}]


def test_missing_transformers_is_a_clear_startup_error(checkpoint: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # what an install without it looks like to import
    code = cli.main(["serve", "--backend", "transformers", "--model", str(checkpoint),
                     "--token-file", str(write_token(tmp_path))])
    err = capsys.readouterr().err
    assert code == 2 and "needs transformers==" in err and "pip install" in err and "Traceback" not in err


# -- a Qwen2.5-VL checkpoint: the processor path of RoboBrain 2.x, Qwen3-VL and RoboTracer's base ------------


@pytest.fixture(scope="module")
def qwen_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    from helpers.tiny_vlm import build_tiny_qwen_vl

    directory = tmp_path_factory.mktemp("qwen_server")
    checkpoint = build_tiny_qwen_vl(directory / "checkpoint", ANSWER)
    with ProcessGroup(directory / "procs") as group:
        yield start_server(group, "qwen", "transformers", checkpoint, write_token(directory), "--warmup-batches", "1",
                           "--model-name", "tiny-qwen2.5-vl")
        print(group.logs())


@pytest.mark.integration
def test_qwen_vl_checkpoint_answers_through_its_own_processor(qwen_server: RunningServer) -> None:
    response = httpx.post(qwen_server.url + "/v1/trace", json=trace_body(random_image(64, 48, 3)), headers=AUTH,
                          timeout=60.0)
    assert response.status_code == 200, response.text
    (sample,) = response.json()["samples"]
    assert sample["text"] == ANSWER
    np.testing.assert_allclose(np.array(sample["points"], dtype=float), [[32.0, 12.0, 1.5], [39.68, 14.4, 1.25]])
    seeded = trace_body(random_image(40, 30, 4), n_samples=2, temperature=0.7, seed=5, max_new_tokens=16,
                        prompt='Point the 2D object-centric visual trace for the task "x".')
    response = httpx.post(qwen_server.url + "/v1/trace", json=seeded, headers=AUTH, timeout=60.0)
    assert response.status_code == 200 and len(response.json()["samples"]) == 2
    greedy = trace_body(random_image(40, 30, 4), n_samples=2)
    response = httpx.post(qwen_server.url + "/v1/trace", json=greedy, headers=AUTH, timeout=60.0)
    assert response.status_code == 400 and "needs temperature > 0" in response.json()["detail"]
