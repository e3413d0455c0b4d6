"""What the RoboTracer relay adds to a request beyond the model server's own time.

Prints one JSON object. A fake RoboTracer spatial-encoder server (answers at once, without reading the
files, so its time is only HTTP) runs on 127.0.0.1 behind ``spatial-trace serve --backend
robotracer-relay``. For 640x480 and 1280x720 frames (JPEG color as the robotracer client sends it,
16-bit depth PNG) it times, one request at a time:

- ``direct_ms``: the spatial-encoder request (paths + intrinsics) straight to the fake, files already on disk;
- ``relay_ms``: the client's ``POST /v1/trace`` to the relay, which decodes and checks the images, writes
  them to the spool folder, forwards the paths, removes the files and parses the answer.

``overhead_ms`` = median relay - median direct: the relay's cost per request (target < 15 ms),
including moving the images over loopback HTTP. Machines here are shared; medians of many requests.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from spatial_trace_ros.testing.fake_model_servers import start_fake_model_server
from spatial_trace_ros.testing.processes import ProcessGroup, free_port, wait_for
from spatial_trace_ros.trace.backends.spatial_files import intrinsics_matrix, spatial_request, spool_frame
from spatial_trace_ros.trace.encoding import encode_color, encode_depth_png

TOKEN = "bench-token-0123456789abcdef"
ANSWER = "[(250, 500, 1.0), (500, 500, 1.1), (750, 500, 1.2)]"


def frame(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """A camera-like frame: smooth gradients plus noise (JPEG sizes like a real scene), depth 0.5-2.5 m."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // width, yy * 255 // height, (xx + yy) * 127 // (width + height)], axis=2)
    color = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    depth = (500 + 2000 * yy / height + rng.normal(0, 5, (height, width))).astype(np.uint16)
    return color, depth


def start_relay(group: ProcessGroup, upstream: str, spool: Path, token_file: Path) -> str:
    port = free_port()
    argv = [sys.executable, "-m", "spatial_trace_ros.cli", "serve", "--backend", "robotracer-relay", "--upstream",
            upstream, "--spool", str(spool), "--port", str(port), "--token-file", str(token_file),
            "--no-access-log", "--log-level", "warning", "--warmup-batches", "1"]
    proc = group.start("relay", argv)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(url + "/readyz", timeout=2.0).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(ready, 60.0, "the relay to be ready", interval_s=0.1, on_timeout=proc.tail)
    return url


def timed(client: httpx.Client, url: str, body: bytes, headers: dict, repeats: int) -> tuple[list[float], list]:
    """Round-trip times [ms] and the replies' ``timings_ms`` (server-side split), warm-up requests left out."""
    out, server = [], []
    for _ in range(repeats + 2):
        t0 = time.perf_counter()
        resp = client.post(url, content=body, headers=headers)
        out.append((time.perf_counter() - t0) * 1e3)
        if resp.status_code != 200:
            raise RuntimeError(f"{url} answered {resp.status_code}: {resp.text[:300]}")
        server.append(resp.json().get("timings_ms"))
    return out[2:], server[2:]  # the first two warm the connection and caches


def measure(client: httpx.Client, upstream: str, relay: str, spool: Path, width: int, height: int,
            repeats: int) -> dict:
    color, depth = frame(width, height)
    jpeg, png = encode_color(color, "jpeg", 90), encode_depth_png(depth, 1)
    k = intrinsics_matrix(0.9 * width, 0.9 * width, width / 2, height / 2)
    files = spool_frame(spool, jpeg, ".jpg", depth_png16_mm_bytes=png)
    direct = json.dumps(spatial_request(str(files.image_path), str(files.depth_path), k, True, "bench")).encode()
    relay_body = json.dumps({
        "instruction": "put the cup on the plate", "image_b64": base64.b64encode(jpeg).decode(),
        "depth_png_b64": base64.b64encode(png).decode(), "depth_scale_m": 0.001, "prompt": "bench",
        "intrinsics": {"fx": k[0][0], "fy": k[1][1], "cx": k[0][2], "cy": k[1][2], "width": width, "height": height},
    }).encode()
    headers = {"Content-Type": "application/json"}
    direct_ms, _ = timed(client, upstream + "/query", direct, headers, repeats)
    relay_ms, split = timed(client, relay + "/v1/trace", relay_body, {**headers, "Authorization": f"Bearer {TOKEN}"},
                     repeats)
    files.remove()
    d, r = float(np.median(direct_ms)), float(np.median(relay_ms))
    return {"width": width, "height": height, "jpeg_kb": round(len(jpeg) / 1024, 1),
            "depth_png_kb": round(len(png) / 1024, 1), "direct_ms": round(d, 2), "relay_ms": round(r, 2),
            "relay_p90_ms": round(float(np.percentile(relay_ms, 90)), 2), "overhead_ms": round(r - d, 2),
            "relay_server_ms": {k: round(float(np.median([t[k] for t in split])), 2) for k in split[0]},
            "spool_left": len(list(spool.iterdir()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=60, help="timed requests per size (60)")
    parser.add_argument("--quick", action="store_true", help="15 requests per size")
    args = parser.parse_args()
    repeats = 15 if args.quick else args.repeats
    with tempfile.TemporaryDirectory() as tmp, ProcessGroup(Path(tmp) / "procs") as group:
        token_file = Path(tmp) / "token"
        token_file.write_text(TOKEN)
        token_file.chmod(0o600)
        upstream, _ = start_fake_model_server(group, free_port(), answers=[ANSWER], validate_requests=False)
        spool = Path(tmp) / "spool"
        relay = start_relay(group, upstream, spool, token_file)
        with httpx.Client(timeout=30.0, trust_env=False) as client:
            sizes = [measure(client, upstream, relay, spool, w, h, repeats) for w, h in ((640, 480), (1280, 720))]
    print(json.dumps({"bench": "relay", "repeats": repeats, "target_overhead_ms": 15.0, "sizes": sizes,
                      "meets_target": all(s["overhead_ms"] < 15.0 for s in sizes)}))


if __name__ == "__main__":
    main()
