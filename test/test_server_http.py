"""The trace server through its real HTTP stack (uvicorn in a child process, httpx client): answers match
calling the model directly for every backend, batches form under concurrency, and bad requests are
refused with a reason while the server stays up."""

from __future__ import annotations

import asyncio
import base64
import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from helpers.trace_server import (
    AUTH,
    TOKEN,
    ColorOnlyTraceNet,
    RunningServer,
    TinyTraceNet,
    depth_png_b64,
    export_onnx,
    export_program,
    export_torchscript,
    random_image,
    run_direct,
    start_server,
    trace_body,
    write_token,
)
from spatial_trace_ros.testing.processes import ProcessGroup

pytestmark = pytest.mark.integration

WIDTH, HEIGHT = 48, 32
MAX_BODY_BYTES = 300_000


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server_http")


@pytest.fixture(scope="module")
def model(workdir: Path) -> TinyTraceNet:
    torch.manual_seed(3)
    return TinyTraceNet().eval()


@pytest.fixture(scope="module")
def group(workdir: Path) -> Iterator[ProcessGroup]:
    with ProcessGroup(workdir / "procs") as procs:
        yield procs
        print(procs.logs())


@pytest.fixture(scope="module")
def onnx_server(group: ProcessGroup, workdir: Path, model: TinyTraceNet) -> RunningServer:
    path = export_onnx(model, workdir / "tiny.onnx", WIDTH, HEIGHT)
    return start_server(group, "onnx", "onnx", path, write_token(workdir), "--max-batch-size", "8",
                        "--max-batch-wait-ms", "40", "--max-body-bytes", str(MAX_BODY_BYTES),
                        "--model-version", "7.1")


def expected_points(model: torch.nn.Module, rgb: np.ndarray, depth_m: np.ndarray | None,
                    width: int, height: int) -> np.ndarray:
    """What the contract says the server must answer: the direct call's u, v scaled to the client's image
    size, depth NaN where the model's depth is not positive."""
    out = run_direct(model, rgb, depth_m)
    d = np.where(out[:, 2] > 0, out[:, 2], np.nan)
    return np.column_stack([out[:, 0] * width, out[:, 1] * height, d])


def answered_points(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    (sample,) = response.json()["samples"]
    return np.array([[u, v, np.nan if d is None else d] for u, v, d in sample["points"]], dtype=float)


def post(server: RunningServer, body: dict | None = None, **kwargs: object) -> httpx.Response:
    kwargs.setdefault("headers", AUTH)
    return httpx.post(server.url + "/v1/trace", json=body, timeout=30.0, **kwargs)


# -- correct answers ---------------------------------------------------------------------------------
def test_onnx_answers_match_the_model_called_directly(onnx_server: RunningServer, model: TinyTraceNet) -> None:
    for seed in range(3):
        rgb = random_image(WIDTH, HEIGHT, seed)
        depth_mm = np.random.default_rng(seed).integers(300, 2000, (HEIGHT, WIDTH)).astype(np.uint16)
        with_depth = post(onnx_server, trace_body(rgb, depth_mm))
        expected = expected_points(model, rgb, depth_mm.astype(np.float32) * 0.001, WIDTH, HEIGHT)
        np.testing.assert_allclose(answered_points(with_depth), expected, rtol=1e-4, atol=1e-4)
        without_depth = post(onnx_server, trace_body(rgb))
        expected = expected_points(model, rgb, None, WIDTH, HEIGHT)
        np.testing.assert_allclose(answered_points(without_depth), expected, rtol=1e-4, atol=1e-4)
    body = with_depth.json()
    assert body["model"] == {"name": "tiny.onnx", "version": "7.1", "backend": "onnx"}
    assert body["samples"][0]["text"] is None
    timings = body["timings_ms"]
    assert all(timings[k] >= 0 for k in ("decode", "queue", "inference"))
    assert timings["total"] >= timings["decode"]


def test_other_image_sizes_are_resized_and_answered_in_the_clients_pixels(
    onnx_server: RunningServer, model: TinyTraceNet
) -> None:
    rgb = random_image(WIDTH * 3, HEIGHT * 3, 11)
    depth_mm = np.full((HEIGHT * 3, WIDTH * 3), 900, np.uint16)
    depth_mm[: HEIGHT * 3 // 2] = 1500
    response = post(onnx_server, trace_body(rgb, depth_mm))
    small = cv2.resize(rgb, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    small_depth = cv2.resize(depth_mm, (WIDTH, HEIGHT), interpolation=cv2.INTER_NEAREST).astype(np.float32) * 0.001
    expected = expected_points(model, small, small_depth, WIDTH * 3, HEIGHT * 3)
    np.testing.assert_allclose(answered_points(response), expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("suffix", [".pt", ".pt2"])
def test_torch_backends_serve_the_same_model(group: ProcessGroup, workdir: Path, model: TinyTraceNet,
                                             suffix: str) -> None:
    path = workdir / f"tiny{suffix}"
    (export_torchscript if suffix == ".pt" else export_program)(model, path, WIDTH, HEIGHT)
    server = start_server(group, f"torch{suffix}", "torch", path, write_token(workdir),
                          "--input-size", f"{WIDTH}x{HEIGHT}", "--warmup-batches", "1")
    try:
        rgb = random_image(WIDTH, HEIGHT, 5)
        depth_mm = np.random.default_rng(5).integers(300, 2000, (HEIGHT, WIDTH)).astype(np.uint16)
        expected = expected_points(model, rgb, depth_mm.astype(np.float32) * 0.001, WIDTH, HEIGHT)
        response = post(server, trace_body(rgb, depth_mm))
        np.testing.assert_allclose(answered_points(response), expected, rtol=1e-5, atol=1e-5)
        assert response.json()["model"]["backend"] == "torch"
    finally:
        server.process.stop()


def test_model_without_depth_input(group: ProcessGroup, workdir: Path) -> None:
    torch.manual_seed(4)
    color_only = ColorOnlyTraceNet().eval()
    path = export_onnx(color_only, workdir / "color_only.onnx", WIDTH, HEIGHT, takes_depth=False)
    server = start_server(group, "color-only", "onnx", path, write_token(workdir), "--warmup-batches", "1")
    try:
        rgb = random_image(WIDTH, HEIGHT, 8)
        depth_mm = np.full((HEIGHT, WIDTH), 700, np.uint16)
        points = answered_points(post(server, trace_body(rgb, depth_mm)))
        direct = run_direct(color_only, rgb, None)
        np.testing.assert_allclose(points[:, :2], direct[:, :2] * [WIDTH, HEIGHT], rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(points[:, 2], 1.0)
    finally:
        server.process.stop()


# -- batching ----------------------------------------------------------------------------------------
def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(
    onnx_server: RunningServer, model: TinyTraceNet
) -> None:
    n = 32
    images = [random_image(WIDTH, HEIGHT, 100 + i) for i in range(n)]
    before = onnx_server.metrics()

    async def fire() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=n)
        async with httpx.AsyncClient(base_url=onnx_server.url, headers=AUTH, timeout=30.0, limits=limits) as client:
            return await asyncio.gather(*(client.post("/v1/trace", json=trace_body(rgb)) for rgb in images))

    responses = asyncio.run(fire())
    for rgb, response in zip(images, responses):
        np.testing.assert_allclose(answered_points(response), expected_points(model, rgb, None, WIDTH, HEIGHT),
                                   rtol=1e-4, atol=1e-4)
    after = onnx_server.metrics()

    def delta(name: str, labels: tuple = ()) -> float:
        return after[(name, labels)] - before.get((name, labels), 0.0)

    assert delta("spatial_trace_batch_size_sum") == n
    batches = delta("spatial_trace_batch_size_count")
    assert batches < n, "every request ran alone: no batch formed"
    assert delta("spatial_trace_batch_size_bucket", (("le", "1.0"),)) < batches
    assert delta("spatial_trace_batch_size_bucket", (("le", "8.0"),)) == batches  # never above --max-batch-size
    assert sum(r.json()["timings_ms"]["inference"] > 0 for r in responses) == n
    assert delta("spatial_trace_requests_total", (("outcome", "ok"),)) == n


# -- authentication ----------------------------------------------------------------------------------
def test_requests_without_the_right_token_are_refused(onnx_server: RunningServer) -> None:
    body = trace_body(random_image(WIDTH, HEIGHT, 1))
    cases = {
        "none": {},
        "wrong": {"Authorization": "Bearer not-the-token-at-all-000"},
        "prefix": {"Authorization": f"Bearer {TOKEN[:-1]}"},
        "longer": {"Authorization": f"Bearer {TOKEN}x"},
        "scheme": {"Authorization": f"Basic {TOKEN}"},
    }
    before = onnx_server.metrics()[("spatial_trace_requests_total", (("outcome", "unauthorized"),))]
    for name, headers in cases.items():
        response = post(onnx_server, body, headers=headers)
        assert response.status_code == 401, name
        assert response.headers["www-authenticate"] == "Bearer"
        assert "token" in response.json()["detail"] or "Bearer" in response.json()["detail"]
        assert TOKEN not in response.text
    assert httpx.get(onnx_server.url + "/metrics").status_code == 401
    assert httpx.get(onnx_server.url + "/healthz").json() == {"status": "alive"}
    assert httpx.get(onnx_server.url + "/readyz").status_code == 200
    assert post(onnx_server, body).status_code == 200
    after = onnx_server.metrics()[("spatial_trace_requests_total", (("outcome", "unauthorized"),))]
    assert after - before == len(cases)
    assert TOKEN not in onnx_server.process.output()


# -- bad requests ------------------------------------------------------------------------------------
def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(
        b"IEND", b""
    )


def _encoded(image: Image.Image, fmt: str) -> str:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return base64.b64encode(buffer.getvalue()).decode()


def test_malformed_requests_get_4xx_with_a_reason_and_the_server_stays_up(onnx_server: RunningServer) -> None:
    rgb = random_image(WIDTH, HEIGHT, 2)
    good = trace_body(rgb)
    png = base64.b64decode(good["image_b64"])
    depth8 = np.full((HEIGHT, WIDTH), 90, np.uint8)
    depth_rgb16 = np.full((HEIGHT, WIDTH, 3), 900, np.uint16)
    cases: list[tuple[str, dict, int, str]] = [
        ("truncated png", {**good, "image_b64": base64.b64encode(png[: len(png) // 2]).decode()}, 400, "truncated"),
        ("not an image", {**good, "image_b64": base64.b64encode(b"hello, not a picture" * 9).decode()}, 400,
         "not a PNG or JPEG"),
        ("gif", {**good, "image_b64": _encoded(Image.fromarray(rgb), "GIF")}, 400, "not a PNG or JPEG"),
        ("bad base64", {**good, "image_b64": "@@not base64@@"}, 400, "base64"),
        ("8-bit depth", {**good, "depth_png_b64": depth_png_b64(depth8)}, 400, "16-bit"),
        ("rgb16 depth", {**good, "depth_png_b64": depth_png_b64(depth_rgb16)}, 400, "single-channel"),
        ("jpeg depth", {**good, "depth_png_b64": _encoded(Image.fromarray(depth8), "JPEG")}, 400, "not a PNG"),
        ("depth size", {**good, "depth_png_b64": depth_png_b64(np.zeros((HEIGHT, WIDTH + 1), np.uint16))}, 400,
         "aligned"),
        ("intrinsics size", {**good, "intrinsics": {"fx": 50, "fy": 50, "cx": 24, "cy": 16, "width": 64,
                                                    "height": 48}}, 400, "intrinsics"),
        ("claims 5000 px", {**good, "image_b64": base64.b64encode(_png_claiming(5000, 20)).decode()}, 413,
         "px per side"),
        ("claims 10 gigapixels", {**good, "image_b64": base64.b64encode(_png_claiming(100_000, 100_000)).decode()},
         413, "px per side"),
        ("missing instruction", {"image_b64": good["image_b64"]}, 422, "instruction: Field required"),
        ("blank instruction", {**good, "instruction": "   "}, 422, "blank"),
        ("n_samples type", {**good, "n_samples": "three"}, 422, "n_samples"),
        ("n_samples range", {**good, "n_samples": 99}, 422, "less than or equal to 16"),
        ("unknown field", {**good, "depth_b64": "AAAA"}, 422, "depth_b64: Extra inputs are not permitted"),
        ("negative scale", {**good, "depth_scale_m": -1}, 422, "depth_scale_m"),
    ]
    for name, body, status, reason in cases:
        response = post(onnx_server, body)
        assert response.status_code == status, f"{name}: {response.status_code} {response.text}"
        detail = response.json()["detail"]
        assert isinstance(detail, str) and reason in detail, f"{name}: {detail!r}"

    not_json = httpx.post(onnx_server.url + "/v1/trace", content=b'{"instruction": "x", ',
                          headers={**AUTH, "Content-Type": "application/json"})
    assert not_json.status_code == 422 and "not valid JSON" in not_json.json()["detail"]
    not_declared = httpx.post(onnx_server.url + "/v1/trace", content=b"instruction=x", headers=AUTH)
    assert not_declared.status_code == 422 and "Content-Type: application/json" in not_declared.json()["detail"]

    big = {**good, "instruction": "x", "image_b64": good["image_b64"] + "A" * MAX_BODY_BYTES}
    declared = post(onnx_server, big)
    assert declared.status_code == 413 and "larger than 300000 bytes" in declared.json()["detail"]
    payload = httpx.Request("POST", "/", json=big).content

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while streaming
        for start in range(0, len(payload), 65536):
            yield payload[start:start + 65536]

    streamed = httpx.post(onnx_server.url + "/v1/trace", content=chunks(),
                          headers={**AUTH, "Content-Type": "application/json"})
    assert streamed.status_code == 413 and "larger than" in streamed.json()["detail"]

    assert httpx.get(onnx_server.url + "/healthz").status_code == 200
    assert post(onnx_server, good).status_code == 200
    counts = onnx_server.metrics()
    assert counts[("spatial_trace_requests_total", (("outcome", "too_large"),))] >= 4
    assert counts[("spatial_trace_requests_total", (("outcome", "bad_request"),))] >= len(cases) - 2


def test_openapi_document_publishes_the_wire_format(onnx_server: RunningServer) -> None:
    document = httpx.get(onnx_server.url + "/openapi.json").json()
    operation = document["paths"]["/v1/trace"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/TraceRequest")
    assert {"401", "413", "422", "503", "504"} <= set(operation["responses"])
    schemas = document["components"]["schemas"]
    assert {"instruction", "image_b64", "depth_png_b64", "depth_scale_m", "intrinsics", "n_samples", "temperature",
            "max_new_tokens", "seed", "prompt", "enable_spatial"} == set(schemas["TraceRequest"]["properties"])
    assert {"samples", "model", "timings_ms"} == set(schemas["TraceResponse"]["properties"])
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
