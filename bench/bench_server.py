"""Trace server throughput and latency vs concurrency, batching on and off, and its overhead over calling
the model in-process.

Prints one JSON object. A small convolutional trace model (contract: image [B,3,96,128] + depth →
trace [B,8,3]) is exported to ONNX, served by ``spatial-trace serve`` on 127.0.0.1, and hit with
640x480 JPEG + 16-bit depth requests (what the robot's http client sends) from 1, 8 and 32 concurrent
clients. The in-process figures come from the same run on the same machine: the model call alone on a
preprocessed tensor, and decode + preprocess + model call, so the overhead ratios are the claim rather
than absolute times (machines here are shared and noisy). Pass ``--device cuda`` on a GPU host.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import httpx
import numpy as np
import torch
from prometheus_client.parser import text_string_to_metric_families

from spatial_trace_ros.server.images import decode_request, to_model_input
from spatial_trace_ros.server.schema import TraceRequest
from spatial_trace_ros.testing.processes import ProcessGroup, free_port, wait_for

TOKEN = "bench-token-0123456789abcdef"
WIDTH, HEIGHT = 128, 96


class BenchTraceNet(torch.nn.Module):
    """About 0.6 GFLOP per frame: a small convolutional encoder and a linear head."""

    def __init__(self, n_points: int = 8) -> None:
        super().__init__()
        self.n_points = n_points
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(4, 64, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(64, 64, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(64, 128, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(128, 128, 3, stride=2, padding=1), torch.nn.ReLU(),
        )
        self.head = torch.nn.Linear(128, n_points * 3)

    def forward(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        x = self.features(torch.cat([image, depth], dim=1)).mean(dim=(2, 3))
        return torch.sigmoid(self.head(x)).reshape(-1, self.n_points, 3)


def export(path: Path) -> Path:
    torch.manual_seed(0)
    args = (torch.rand(2, 3, HEIGHT, WIDTH), torch.rand(2, 1, HEIGHT, WIDTH))
    axes = {name: {0: "batch"} for name in ("image", "depth", "trace")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(BenchTraceNet().eval(), args, str(path), input_names=["image", "depth"],
                          output_names=["trace"], dynamic_axes=axes, dynamo=False)
    return path


def make_body() -> dict:
    rng = np.random.default_rng(0)
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), (9, 9), 3)
    rows = np.linspace(600, 2400, 480)[:, None] + np.zeros((1, 640))  # a tilted table, with sensor noise
    depth = (rows + rng.normal(0, 4, (480, 640))).astype(np.uint16)
    _, jpeg = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 90])
    _, png = cv2.imencode(".png", depth, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return {"instruction": "put the cup on the plate", "image_b64": base64.b64encode(jpeg.tobytes()).decode(),
            "depth_png_b64": base64.b64encode(png.tobytes()).decode(), "depth_scale_m": 0.001}


def percentile_ms(samples_s: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples_s) * 1e3, q))


def in_process(model_path: Path, body: dict, device: str, repeats: int, model_s: list[float],
               pipeline_s: list[float]) -> None:
    """Append in-process timings: the model call alone, and decode + preprocess + model call."""
    import onnxruntime as ort

    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
    session = ort.InferenceSession(str(model_path), providers=providers)
    request = TraceRequest.model_validate(body)

    def prepare() -> tuple[np.ndarray, np.ndarray]:
        image, depth = to_model_input(decode_request(request, 4096), WIDTH, HEIGHT)
        return image[None], depth[None]

    image, depth = prepare()
    for _ in range(20):
        session.run(None, {"image": image, "depth": depth})
    for _ in range(repeats):
        t0 = time.perf_counter()
        session.run(None, {"image": image, "depth": depth})
        model_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        i, d = prepare()
        session.run(None, {"image": i, "depth": d})
        pipeline_s.append(time.perf_counter() - t0)


async def hammer(url: str, body: dict, concurrency: int, n_requests: int) -> dict:
    latencies: list[float] = []
    server_s: list[float] = []
    errors = 0

    async def client_loop(client: httpx.AsyncClient, start: int) -> None:
        nonlocal errors
        for _ in range(start, n_requests, concurrency):
            t0 = time.perf_counter()
            response = await client.post("/v1/trace", json=body)
            latencies.append(time.perf_counter() - t0)
            if response.status_code == 200:
                server_s.append(response.json()["timings_ms"]["total"] / 1e3)
            else:
                errors += 1

    headers = {"Authorization": f"Bearer {TOKEN}"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60.0, limits=limits) as client:
        await asyncio.gather(*(client_loop(client, k) for k in range(min(concurrency, 8))))  # warm connections
        latencies.clear()
        server_s.clear()
        t0 = time.perf_counter()
        await asyncio.gather(*(client_loop(client, k) for k in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return {"concurrency": concurrency, "requests": n_requests, "errors": errors,
            "throughput_rps": n_requests / elapsed, "p50_ms": percentile_ms(latencies, 50),
            "p99_ms": percentile_ms(latencies, 99), "server_side_p50_ms": percentile_ms(server_s, 50)}


def start(group: ProcessGroup, model_path: Path, token_file: Path, device: str, max_batch_size: int) -> str:
    port = free_port()
    argv = [sys.executable, "-m", "spatial_trace_ros.cli", "serve", "--backend", "onnx", "--model", str(model_path),
            "--port", str(port), "--token-file", str(token_file), "--device", device, "--no-access-log",
            "--log-level", "warning", "--max-batch-size", str(max_batch_size), "--max-batch-wait-ms", "2",
            "--max-queue", "256"]
    proc = group.start(f"server-b{max_batch_size}", argv)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(url + "/readyz", timeout=2.0).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(ready, 120.0, "the server to be ready", interval_s=0.1, on_timeout=proc.tail)
    return url


def batch_totals(url: str) -> tuple[float, float]:
    """(requests batched, batches) so far, from the server's /metrics."""
    text = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    return values["spatial_trace_batch_size_sum"], values["spatial_trace_batch_size_count"]


def measure(url: str, body: dict, concurrency: int, n_requests: int) -> dict:
    before = batch_totals(url)
    level = asyncio.run(hammer(url, body, concurrency, n_requests))
    after = batch_totals(url)
    level["mean_batch_size"] = (after[0] - before[0]) / max(after[1] - before[1], 1.0)
    return level


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--requests", type=int, default=300, help="requests per concurrency level")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_server_") as tmp:
        directory = Path(tmp)
        model_path = export(directory / "bench.onnx")
        token_file = directory / "token"
        token_file.write_text(TOKEN)
        os.chmod(token_file, 0o600)
        body = make_body()
        model_s: list[float] = []
        pipeline_s: list[float] = []
        in_process(model_path, body, args.device, 100, model_s, pipeline_s)
        with ProcessGroup(directory / "procs") as group:
            urls = {size: start(group, model_path, token_file, args.device, size) for size in (8, 1)}
            levels: dict[int, list[dict]] = {8: [], 1: []}
            for concurrency in (1, 8, 32):  # alternate the two servers so drifting machine load hits both alike
                for size, url in urls.items():
                    levels[size].append(measure(url, body, concurrency, args.requests))
        in_process(model_path, body, args.device, 100, model_s, pipeline_s)  # before and after: same load
    baseline = {"model_call_p50_ms": percentile_ms(model_s, 50),
                "decode_and_model_p50_ms": percentile_ms(pipeline_s, 50)}
    batching_on = {"max_batch_size": 8, "max_batch_wait_ms": 2, "levels": levels[8]}
    batching_off = {"max_batch_size": 1, "levels": levels[1]}
    single = batching_off["levels"][0]["p50_ms"]
    result = {
        "device": args.device,
        "cpu_count": os.cpu_count(),
        "request": f"640x480 JPEG q90 + 16-bit depth PNG, {len(json.dumps(body)) // 1024} KiB JSON; "
        f"model input {WIDTH}x{HEIGHT}",
        "in_process": baseline,
        "batching_on": batching_on,
        "batching_off": batching_off,
        "server_p50_at_concurrency_1_ms": single,
        "overhead_ratio_vs_model_call": single / baseline["model_call_p50_ms"],
        "overhead_ratio_vs_decode_and_model": single / baseline["decode_and_model_p50_ms"],
        "server_side_ratio_vs_decode_and_model": batching_off["levels"][0]["server_side_p50_ms"]
        / baseline["decode_and_model_p50_ms"],
        "throughput_gain_from_batching_at_32": batching_on["levels"][2]["throughput_rps"]
        / batching_off["levels"][2]["throughput_rps"],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
