"""RoboTracer's spatial-encoder API (paths on the model server's disk) from the robotracer backend: on a
shared folder and through the relay (``spatial-trace serve --backend robotracer-relay``), against a fake
spatial-encoder server in its own process that reads the files and records what they hold."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from helpers.trace_server import AUTH, TOKEN, RunningServer, start_server, trace_body, write_token
from spatial_trace_ros.errors import ConfigError, ModelError
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics, RgbdFrame
from spatial_trace_ros.server.settings import build_settings
from spatial_trace_ros.testing.fake_model_servers import FakeConfig, configure_fake, fake_requests
from spatial_trace_ros.testing.processes import ProcessGroup
from spatial_trace_ros.trace.model import TraceModel, TraceQuery, make_trace_model
from spatial_trace_ros.trace.pipeline import build_trace

pytestmark = pytest.mark.integration

INTR = CameraIntrinsics(64, 48, 55.5, 56.25, 31.5, 23.75)
K = [[55.5, 0.0, 31.5], [0.0, 56.25, 23.75], [0.0, 0.0, 1.0]]
ANSWER = "<think>left to right</think>[(250, 500, 1.0), (500, 500, 1.1), (750, 500, 1.2)]"
INSTRUCTION = "put the cup on the plate"
# RoboTracer's task phrasings (Evaluation/test_benchmark.py), written out here so a drift in prompts.py fails.
PROMPT_3D = (
    'Point the 3D object-centric visual trace for the task "put the cup on the plate". Your answer should be '
    "formatted as a list of tuples, i.e., [(x1, y1, d1), (x2, y2, d2), ...], where each tuple contains the x and "
    "y coordinates of the point, and d is the depth of the point."
)
PROMPT_2D = (
    'Point the 2D object-centric visual trace for the task "put the cup on the plate". Your answer should be '
    "formatted as a list of tuples, i.e., [(x1, y1), (x2, y2), ...], where each tuple contains the x and y "
    "coordinates of the point."
)


def make_frame() -> RgbdFrame:
    rng = np.random.default_rng(7)
    color = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    depth = rng.integers(400, 3000, (48, 64), dtype=np.uint16)
    depth[0, :5] = 0  # no reading stays 0 in the files
    return RgbdFrame(color, depth, INTR, 0.001, 1.0)


def sha1(arr: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(arr).tobytes()).hexdigest()


FRAME = make_frame()
COLOR_SHA1 = sha1(FRAME.color)
DEPTH_MM_SHA1 = sha1(FRAME.depth)


def ask(model: TraceModel, n_samples: int = 1, temperature: float = 0.0) -> list:
    async def run() -> list:
        try:
            return await model.answer(TraceQuery(FRAME, INSTRUCTION, n_samples, temperature))
        finally:
            await model.aclose()

    return asyncio.run(run())


@pytest.fixture
def fake(fake_model_server: str) -> str:
    configure_fake(fake_model_server, **FakeConfig(answers=[ANSWER]).model_dump())
    return fake_model_server


def spatial(base_url: str, **options: object) -> TraceModel:
    return make_trace_model("robotracer", base_url=base_url, api="spatial", image_format="png", max_retries=0,
                            retry_backoff_s=0.01, **options)


# The four RoboTracer modes (test_benchmark.py: _Intrinsics_Depth, _Intrinsics, plain, _RGB), and the .npy depth.
MODES = {
    "intrinsics_depth": ({}, 1, True, True),
    "intrinsics_depth_npy": ({"depth_format": "npy_m"}, 1, True, True),
    "intrinsics": ({"send_depth": False}, 1, True, False),
    "rgb_spatial_encoder": ({"send_depth": False, "send_intrinsics": False}, 1, False, False),
    "rgb_only": ({"enable_spatial": False}, 0, False, False),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_shared_folder_modes_send_exact_files_intrinsics_and_prompt(fake: str, tmp_path: Path, mode: str) -> None:
    options, enable, with_k, with_depth = MODES[mode]
    answers = ask(spatial(fake, spool_dir=str(tmp_path), **options))
    (seen,) = fake_requests(fake)
    assert seen["api"] == "spatial" and seen["text"] == PROMPT_3D and seen["enable_spatial"] == enable
    assert seen["color_sha1"] == COLOR_SHA1  # the file decodes to the frame sent, pixel for pixel
    assert seen["intrinsics"] == (K if with_k else None)
    assert seen["depth_mm_sha1"] == (DEPTH_MM_SHA1 if with_depth else None)
    if with_depth:
        assert seen["depth_path"].endswith(".npy" if "npy" in mode else ".png")
    assert Path(seen["image_path"]).parent == tmp_path.resolve()
    assert list(tmp_path.iterdir()) == []  # removed after the answer
    assert answers[0].text == ANSWER and answers[0].metadata["api"] == "spatial"
    outcome = build_trace(answers, FRAME)
    assert outcome.ok, outcome.reason


def test_shared_folder_under_another_mount_point_and_2d_prompt(fake: str, tmp_path: Path) -> None:
    configure_fake(fake, answers=["[(250, 500), (750, 500)]"], path_map={"/mnt/robot_spool": str(tmp_path)})
    ask(spatial(fake, spool_dir=str(tmp_path), server_spool_dir="/mnt/robot_spool", trace_dim="2d"))
    (seen,) = fake_requests(fake)
    assert seen["text"] == PROMPT_2D and seen["color_sha1"] == COLOR_SHA1
    assert seen["image_path"].startswith(str(tmp_path))  # mapped back from /mnt/robot_spool by the fake


def test_shared_folder_is_cleaned_after_a_failed_request(fake: str, tmp_path: Path) -> None:
    configure_fake(fake, mode="failing")
    with pytest.raises(ModelError, match="HTTP 500"):
        ask(spatial(fake, spool_dir=str(tmp_path)))
    assert len(fake_requests(fake)) == 1  # the files were there when the server read them
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"api": "query", "spool_dir": "/tmp"}, "spool_dir apply only to the spatial-encoder API"),
        ({"api": "spatial", "enable_spatial": False, "send_depth": True}, "enable_spatial=false turns off"),
        ({"api": "spatial", "send_intrinsics": False}, "send_depth without send_intrinsics"),
        ({"api": "spatial", "server_spool_dir": "/mnt/x"}, "set spool_dir too"),
        ({"api": "spatial", "depth_format": "tiff"}, "depth_format"),
        ({"api": "spatial", "spool_dir": "/proc/no_such_dir"}, "not a writable folder"),
    ],
)
def test_inconsistent_spatial_options_are_refused_with_the_fix(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_trace_model("robotracer", **options)


def test_greedy_robotracer_server_refuses_several_samples() -> None:
    model = make_trace_model("robotracer", api="spatial")
    with pytest.raises(ConfigError, match="decode greedily"):
        model.check_sampling(3, 0.7)
    make_trace_model("robotracer", server_samples=True).check_sampling(3, 0.7)
    with pytest.raises(ConfigError, match="decode greedily"):
        ask(model, n_samples=2, temperature=0.7)  # and per request, not only at start-up


# -- through the relay -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def relay_spool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("relay_spool")


@pytest.fixture(scope="module")
def relay(fake_model_server: str, relay_spool: Path, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[RunningServer]:
    directory = tmp_path_factory.mktemp("relay")
    with ProcessGroup(directory / "procs") as group:
        yield start_server(group, "relay", "robotracer-relay", None, write_token(directory),
                           "--upstream", fake_model_server, "--spool", str(relay_spool), "--warmup-batches", "1",
                           "--request-timeout-s", "20")
        print(group.logs())


@pytest.mark.parametrize("mode", ["intrinsics_depth", "intrinsics", "rgb_only"])
def test_relay_writes_the_frame_forwards_and_cleans_up(fake: str, relay: RunningServer, relay_spool: Path,
                                                       mode: str) -> None:
    options, enable, with_k, with_depth = MODES[mode]
    answers = ask(spatial(relay.url, api_key=TOKEN, **options))
    (seen,) = fake_requests(fake)
    assert seen["text"] == PROMPT_3D and seen["enable_spatial"] == enable
    assert seen["color_sha1"] == COLOR_SHA1 and seen["intrinsics"] == (K if with_k else None)
    assert seen["depth_mm_sha1"] == (DEPTH_MM_SHA1 if with_depth else None)
    assert Path(seen["image_path"]).parent == relay_spool.resolve()
    assert list(relay_spool.iterdir()) == []
    assert answers[0].text == ANSWER
    assert build_trace(answers, FRAME).ok


def test_relay_writes_npy_depth_in_metres(fake_model_server: str, tmp_path: Path) -> None:
    configure_fake(fake_model_server, **FakeConfig(answers=[ANSWER]).model_dump())
    spool = tmp_path / "spool"
    with ProcessGroup(tmp_path / "procs") as group:
        server = start_server(group, "relay_npy", "robotracer-relay", None, write_token(tmp_path),
                              "--upstream", fake_model_server, "--spool", str(spool), "--depth-format", "npy_m",
                              "--warmup-batches", "0")
        ask(spatial(server.url, api_key=TOKEN))
    (seen,) = fake_requests(fake_model_server)
    assert seen["depth_path"].endswith(".npy") and seen["depth_mm_sha1"] == DEPTH_MM_SHA1
    assert list(spool.iterdir()) == []


def test_relay_cleans_up_after_an_upstream_failure_and_says_why(fake: str, relay: RunningServer,
                                                                relay_spool: Path) -> None:
    configure_fake(fake, mode="failing")
    with pytest.raises(ModelError, match=r"RoboTracer server at .* answered HTTP 500"):
        ask(spatial(relay.url, api_key=TOKEN))
    assert len(fake_requests(fake)) == 1
    assert list(relay_spool.iterdir()) == []


def test_relay_needs_the_token_and_refuses_several_samples(fake: str, relay: RunningServer) -> None:
    with pytest.raises(ModelError, match="HTTP 401"):
        ask(spatial(relay.url, api_key="wrong-token"))
    body = trace_body(FRAME.color, n_samples=3, temperature=0.7)
    response = httpx.post(relay.url + "/v1/trace", json=body, headers=AUTH, timeout=10.0)
    assert response.status_code == 400 and "decodes greedily" in response.json()["detail"]
    assert fake_requests(fake) == []


def test_relay_metrics_count_requests(fake: str, relay: RunningServer) -> None:
    before = relay.metrics().get(("spatial_trace_requests_total", (("outcome", "ok"),)), 0.0)
    ask(spatial(relay.url, api_key=TOKEN))
    after = relay.metrics()[("spatial_trace_requests_total", (("outcome", "ok"),))]
    assert after == before + 1


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"backend": "robotracer-relay", "spool_dir": "/tmp/s"}, "needs --upstream"),
        ({"backend": "robotracer-relay", "upstream_url": "http://x:1", "spool_dir": "/tmp/s", "model_path": "m"},
         "drop --model"),
        ({"backend": "onnx", "model_path": "m.onnx", "upstream_url": "http://x:1"}, "apply only to --backend"),
        ({"backend": "onnx"}, "needs --model"),
        ({"backend": "robotracer-relay", "upstream_url": "x:1", "spool_dir": "/tmp/s"}, "--upstream: .*http://"),
    ],
)
def test_relay_settings_are_checked(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_settings(allow_no_auth=True, **values)


# -- spatial-trace eval against a RoboTracer server ---------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from spatial_trace_ros.eval.synth import generate_dataset, make_config

    out = tmp_path_factory.mktemp("spatial_eval") / "data"
    generate_dataset(make_config(n_scenes=1, seed=3, width=160, height=120), out, progress=False)
    return out


def _eval(capsys: pytest.CaptureFixture[str], dataset: Path, out: Path, base_url: str, *extra: str
          ) -> tuple[int, str]:
    from spatial_trace_ros.cli import main

    code = main(["eval", "--dataset", str(dataset), "--backend", "robotracer", "--base-url", base_url,
                 "--option", "api=spatial", "--n-samples", "2", "--out", str(out), "--no-plots", "--no-progress",
                 "--json", *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _dataset_k(dataset: Path) -> list[list[float]]:
    import json

    record = json.loads((dataset / "samples.jsonl").read_text().splitlines()[0])
    return [[float(v) for v in row[:3]] for row in record["gt_depth_intrinsics"][:3]]


def test_eval_on_a_shared_folder_and_through_the_relay(fake: str, relay: RunningServer, dataset: Path,
                                                       tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    spool = tmp_path / "spool"
    code, text = _eval(capsys, dataset, tmp_path / "shared", fake, "--option", f"spool_dir={spool}")
    assert code == 0, text
    seen = fake_requests(fake)
    assert len(seen) == 2 and all(r["api"] == "spatial" and r["enable_spatial"] == 1 for r in seen)
    assert all(r["depth_mm_sha1"] and r["text"].startswith("Point the 3D object-centric") for r in seen)
    np.testing.assert_allclose(seen[0]["intrinsics"], _dataset_k(dataset))
    assert list(spool.iterdir()) == []

    configure_fake(fake, **FakeConfig(answers=[ANSWER]).model_dump())
    monkeypatch.setenv("RELAY_TOKEN", TOKEN)
    code, text = _eval(capsys, dataset, tmp_path / "relay", relay.url, "--api-key-env", "RELAY_TOKEN",
                       "--option", "send_depth=false")
    assert code == 0, text
    seen = fake_requests(fake)
    assert len(seen) == 2 and all(r["depth_path"] is None and r["intrinsics"] for r in seen)

    code, text = _eval(capsys, dataset, tmp_path / "samples", fake, "--option", f"spool_dir={spool}",
                       "--model-samples", "3", "--temperature", "0.7")
    assert code == 2 and "decode greedily" in text


def test_relay_checks_the_files_it_passes_on(fake: str, relay: RunningServer, relay_spool: Path) -> None:
    body = trace_body(FRAME.color, FRAME.depth)
    import base64

    png = base64.b64decode(body["image_b64"])
    broken = png[:60] + bytes([png[60] ^ 0xFF]) + png[61:]  # a flipped byte: the chunk checksum fails
    cases = [
        ({**body, "image_b64": base64.b64encode(broken).decode()}, "truncated or corrupt"),
        ({**body, "depth_png_b64": trace_body(FRAME.color)["image_b64"]}, "single-channel 16-bit PNG"),
        (trace_body(FRAME.color, np.zeros((10, 10), np.uint16)), "depth is 10x10 px but the color image is 64x48"),
    ]
    for case, message in cases:
        response = httpx.post(relay.url + "/v1/trace", json=case, headers=AUTH, timeout=10.0)
        assert response.status_code == 400 and message in response.json()["detail"], response.text
    assert fake_requests(fake) == [] and list(relay_spool.iterdir()) == []
