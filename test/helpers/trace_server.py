"""Small trace models that follow the server's tensor-model contract, and helpers to run the real server.

The models are made here (random weights, fixed seed) and exported to ONNX, TorchScript and
torch.export, so tests compare what the server answers with calling the same torch module directly.
"""

from __future__ import annotations

import base64
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import httpx
import numpy as np
import torch
from prometheus_client.parser import text_string_to_metric_families

from spatial_trace_ros.testing.processes import ManagedProcess, ProcessGroup, free_port, wait_for

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class TinyTraceNet(torch.nn.Module):
    """image [B,3,H,W] + depth [B,1,H,W] → trace [B,K,3]: u, v in (0, 1), d near the mean input depth
    (negative, i.e. "no depth", for some points when the depth input is all zero)."""

    def __init__(self, n_points: int = 6) -> None:
        super().__init__()
        self.n_points = n_points
        self.conv = torch.nn.Conv2d(4, 8, 3, stride=2, padding=1)
        self.head = torch.nn.Linear(8, n_points * 3)

    def forward(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        features = torch.relu(self.conv(torch.cat([image * 4.0, depth], dim=1))).mean(dim=(2, 3))
        raw = self.head(features).reshape(-1, self.n_points, 3)
        uv = torch.sigmoid(raw[..., :2] * 4.0)
        d = depth.mean(dim=(1, 2, 3)).reshape(-1, 1, 1) + 0.2 * torch.tanh(raw[..., 2:])
        return torch.cat([uv, d], dim=2)


class ColorOnlyTraceNet(torch.nn.Module):
    """The contract without the optional depth input: image [B,3,H,W] → trace [B,K,3], d always 1 m."""

    def __init__(self, n_points: int = 4) -> None:
        super().__init__()
        self.n_points = n_points
        self.conv = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.head = torch.nn.Linear(4, n_points * 2)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        raw = self.head(torch.relu(self.conv(image * 4.0)).mean(dim=(2, 3))).reshape(-1, self.n_points, 2)
        return torch.cat([torch.sigmoid(raw * 4.0), torch.ones_like(raw[..., :1])], dim=2)


class SlowTraceNet(torch.nn.Module):
    """Deliberately heavy (convolutions on an upsampled image) so that requests stay in flight a while."""

    def __init__(self, side_px: int = 320, layers: int = 24) -> None:  # ~0.2 s per frame on one core
        super().__init__()
        self.side_px = side_px
        self.lift = torch.nn.Conv2d(4, 24, 3, padding=1)
        self.body = torch.nn.ModuleList(torch.nn.Conv2d(24, 24, 3, padding=1) for _ in range(layers))
        self.head = torch.nn.Linear(24, 6)

    def forward(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.interpolate(torch.cat([image, depth], 1), size=(self.side_px, self.side_px))
        x = torch.relu(self.lift(x))
        for conv in self.body:
            x = torch.relu(conv(x))
        return torch.sigmoid(self.head(x.mean(dim=(2, 3)))).reshape(-1, 2, 3)


def export_onnx(module: torch.nn.Module, path: Path, width: int, height: int, takes_depth: bool = True) -> Path:
    image = torch.rand(2, 3, height, width)
    args: tuple = (image, torch.rand(2, 1, height, width)) if takes_depth else (image,)
    names = ["image", "depth"] if takes_depth else ["image"]
    axes = {name: {0: "batch"} for name in [*names, "trace"]}
    with warnings.catch_warnings():  # the TorchScript-based exporter is deprecated but needs no onnxscript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module, args, str(path), input_names=names, output_names=["trace"], dynamic_axes=axes,
                          dynamo=False)
    return path


def export_torchscript(module: torch.nn.Module, path: Path, width: int, height: int) -> Path:
    with warnings.catch_warnings():  # deprecated in favour of torch.export, still what many models ship as
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(module, (torch.rand(2, 3, height, width), torch.rand(2, 1, height, width)))
    traced.save(str(path))
    return path


def export_program(module: torch.nn.Module, path: Path, width: int, height: int) -> Path:
    batch = torch.export.Dim("batch", min=1, max=256)
    program = torch.export.export(
        module, (torch.rand(2, 3, height, width), torch.rand(2, 1, height, width)),
        dynamic_shapes={"image": {0: batch}, "depth": {0: batch}},
    )
    torch.export.save(program, str(path))
    return path


def run_direct(module: torch.nn.Module, rgb: np.ndarray, depth_m: np.ndarray | None) -> np.ndarray:
    """The module called in-process on one frame already at the model's input size: (K, 3)."""
    image = torch.from_numpy(rgb.transpose(2, 0, 1)[None].astype(np.float32) / 255.0)
    depth = torch.zeros(1, 1, *rgb.shape[:2]) if depth_m is None else torch.from_numpy(depth_m[None, None])
    with torch.no_grad():
        out = module(image, depth) if isinstance(module, (TinyTraceNet, SlowTraceNet)) else module(image)
    return out[0].numpy().astype(np.float64)


# -- requests ------------------------------------------------------------------------------------
def png_b64(rgb: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return base64.b64encode(buf.tobytes()).decode()


def depth_png_b64(depth_u16: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", depth_u16)
    assert ok
    return base64.b64encode(buf.tobytes()).decode()


def random_image(width: int, height: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def trace_body(rgb: np.ndarray, depth_u16: np.ndarray | None = None, **fields: object) -> dict:
    body: dict = {"instruction": "put the cup on the plate", "image_b64": png_b64(rgb)}
    if depth_u16 is not None:
        body["depth_png_b64"] = depth_png_b64(depth_u16)
        body["depth_scale_m"] = 0.001
    body.update(fields)
    return body


def metric_samples(text: str) -> dict[tuple[str, tuple], float]:
    """Prometheus exposition text → {(sample name, sorted labels): value}."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


# -- the real server in a child process ---------------------------------------------------------
@dataclass
class RunningServer:
    url: str
    process: ManagedProcess

    def metrics(self) -> dict[tuple[str, tuple], float]:
        response = httpx.get(self.url + "/metrics", headers=AUTH, timeout=10.0)
        response.raise_for_status()
        return metric_samples(response.text)


def write_token(directory: Path) -> Path:
    path = directory / "token"
    path.write_text(TOKEN + "\n")
    os.chmod(path, 0o600)
    return path


def start_server(group: ProcessGroup, name: str, backend: str, model: Path | None, token_file: Path, *extra: str,
                 ready_timeout_s: float = 120.0, wait_path: str = "/readyz") -> RunningServer:
    """``spatial-trace serve`` on a free port of 127.0.0.1, waited on until ``wait_path`` answers 200
    (``model`` None: a backend without a model file, the robotracer relay)."""
    port = free_port()
    model_args = ["--model", str(model)] if model is not None else []
    argv = [sys.executable, "-m", "spatial_trace_ros.cli", "serve", "--backend", backend, *model_args,
            "--host", "127.0.0.1", "--port", str(port), "--token-file", str(token_file), "--cpu-threads", "1",
            "--no-access-log", *extra]
    proc = group.start(name, argv, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if not proc.alive():
            raise RuntimeError(f"server {name} exited with {proc.popen.returncode}:\n{proc.tail()}")
        try:
            return httpx.get(url + wait_path, timeout=2.0).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(ready, ready_timeout_s, f"server {name} to be ready", interval_s=0.1, on_timeout=proc.tail)
    return RunningServer(url, proc)

