"""Trace client overhead per request: encode + transport + decode, against an instant fake server.

The fake model server runs in its own process on loopback with request checking off, so it answers
as soon as it has read the body: what is left is the client's cost (JPEG/PNG encoding and base64 in
worker threads, JSON assembly, HTTP on loopback including the fake's body read, reply decoding).
Per case: the whole ``answer()`` call (p50, p95) and its parts (encode, serialize, round trip, decode).
Each backend is measured at 640x480 and
1280x720 with realistic-looking frames (smooth gradients with sensor-like noise). Prints one JSON
object with medians and 95th percentiles; the target is < 15 ms per request at 1280x720.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time

import numpy as np

from spatial_trace_ros.geometry.camera_model import CameraIntrinsics, RgbdFrame
from spatial_trace_ros.testing.fake_model_servers import start_fake_model_server
from spatial_trace_ros.testing.processes import ProcessGroup, free_port
from spatial_trace_ros.trace.encoding import depth_as_uint16, encode_color, encode_depth_png
from spatial_trace_ros.trace.model import TraceQuery, make_trace_model

RESOLUTIONS = ((640, 480), (1280, 720))
REQUESTS = 40
WARMUP = 5
TARGET_MS_1280x720 = 15.0


def make_frame(width: int, height: int) -> RgbdFrame:
    rng = np.random.default_rng(0)
    v, u = np.mgrid[0:height, 0:width]
    color = np.stack([u * 255 / width, v * 255 / height, (u + v) % 256], axis=-1)
    color = np.clip(color + rng.normal(0, 4, color.shape), 0, 255).astype(np.uint8)
    depth = np.clip(800 + v * 1.5 + rng.normal(0, 3, v.shape), 0, 65535).astype(np.uint16)
    intr = CameraIntrinsics(width, height, 0.9 * width, 0.9 * width, width / 2, height / 2)
    return RgbdFrame(color, depth, intr, 0.001, 1.0)


def backends(base_url: str) -> dict[str, dict]:
    common = {"max_retries": 0, "timeout_s": 10.0}
    return {
        "robotracer_color_jpeg_depth_png": {"name": "robotracer", "base_url": base_url, **common},
        "openai_color_jpeg": {"name": "openai", "base_url": base_url + "/v1", "model": "fake", **common},
        "http_color_jpeg_depth_png": {"name": "http", "base_url": base_url, **common},
        "http_color_jpeg_depth_png_level0": {"name": "http", "base_url": base_url, "depth_png_compression": 0,
                                             **common},
        "http_color_only": {"name": "http", "base_url": base_url, "send_depth": False, **common},
    }


async def measure(options: dict, frame: RgbdFrame) -> dict[str, float]:
    opts = dict(options)
    model = make_trace_model(opts.pop("name"), **opts)
    query = TraceQuery(frame, "move the red cube into the blue bowl")
    wall: list[float] = []
    parts: dict[str, list[float]] = {"encode_ms": [], "serialize_ms": [], "round_trip_ms": [], "decode_ms": []}
    try:
        for k in range(WARMUP + REQUESTS):
            t0 = time.perf_counter()
            answers = await model.answer(query)
            elapsed_ms = (time.perf_counter() - t0) * 1e3
            if k >= WARMUP:
                wall.append(elapsed_ms)
                for key, values in parts.items():
                    values.append(answers[0].metadata[key])
    finally:
        await model.aclose()
    wall.sort()
    out = {"p50_ms": round(statistics.median(wall), 2), "p95_ms": round(wall[int(0.95 * (len(wall) - 1))], 2)}
    out.update({f"{key[:-3]}_p50_ms": round(statistics.median(values), 2) for key, values in parts.items()})
    return out


def payload_sizes(frame: RgbdFrame) -> dict[str, int]:
    depth, _ = depth_as_uint16(frame)
    return {
        "color_jpeg_bytes": len(encode_color(frame.color, "jpeg", 90)),
        "depth_png_level1_bytes": len(encode_depth_png(depth, 1)),
        "depth_png_level0_bytes": len(encode_depth_png(depth, 0)),
    }


def main() -> None:
    results: dict[str, dict] = {}
    with ProcessGroup() as group:
        base_url, _ = start_fake_model_server(group, free_port(), validate_requests=False)
        for width, height in RESOLUTIONS:
            frame = make_frame(width, height)
            key = f"{width}x{height}"
            results[key] = {"payload": payload_sizes(frame)}
            for label, options in backends(base_url).items():
                results[key][label] = asyncio.run(measure(options, frame))
    hd = results["1280x720"]
    worst = max(v["p50_ms"] for k, v in hd.items() if k != "payload")
    print(json.dumps({
        "benchmark": "trace_client_overhead",
        "requests_per_case": REQUESTS,
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "results": results,
        "target_ms_1280x720": TARGET_MS_1280x720,
        "worst_p50_ms_1280x720": worst,
        "meets_target_1280x720": worst < TARGET_MS_1280x720,
    }, indent=2))


if __name__ == "__main__":
    main()
