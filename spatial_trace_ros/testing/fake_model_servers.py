"""Fake trace model servers that speak the real protocols over loopback, for tests and benchmarks.

One process serves all three APIs the trace backends talk to:

- RoboTracer/RoboRefer Flask API: ``POST /query`` (base64 ``image_url``/``depth_url``, ``enable_depth``,
  ``text``) -> ``{"answer": ...}``
- RoboTracer's spatial-encoder API on the same path: ``POST /query`` with ``image_paths``,
  ``depth_z_paths``, ``intrinsics``, ``enable_spatial``, ``text``; the files are read from disk (16-bit PNG
  in mm or float32 ``.npy`` in metres for depth) and what they hold is recorded
- OpenAI chat completions: ``POST /v1/chat/completions`` (image as a base64 data URL) -> ``choices``
- the project's trace server: ``POST /v1/trace`` (validated with the real ``server.schema`` models)

Requests are checked the way a real server would read them (images must decode, fields must exist);
a malformed request gets 400/422, so a client that drifts from the protocol fails its tests. Each
request is recorded (``GET /_fake/requests``) and the behaviour can be switched at run time
(``POST /_fake/config``): ``normal``, ``slow`` (wait ``delay_s``), ``failing`` (HTTP 500),
``flaky`` (503 for the first ``fail_first`` requests), ``garbage`` (well-formed replies whose answer is
nonsense), ``malformed`` (JSON replies of the wrong shape) and ``not_json`` (a 200 reply that is not JSON).

Run: ``python -m spatial_trace_ros.testing.fake_model_servers --port 8765 --answer "[(100, 200, 1.2), ...]"``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import itertools
import json
import threading
import time
from typing import Any, Literal

import cv2
import httpx
import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field, ValidationError

from spatial_trace_ros.server.schema import TRACE_PATH, TraceRequest
from spatial_trace_ros.testing.processes import ManagedProcess, ProcessGroup, wait_for

DEFAULT_ANSWER = "[(250, 250, 1.0), (500, 500, 1.1), (750, 750, 1.2)]"
GARBAGE_ANSWER = "I am sorry, I cannot see the object you describe. Maybe (the left one)?"

Mode = Literal["normal", "slow", "failing", "flaky", "garbage", "malformed", "not_json"]


class FakeConfig(BaseModel):
    """How the fake behaves; every field can be changed at run time with ``POST /_fake/config``."""

    mode: Mode = "normal"
    answers: list[str] = Field(default_factory=lambda: [DEFAULT_ANSWER])
    trace_points: list[list[list[float | None]]] = Field(
        default_factory=list, description="per sample [u, v, d|null] rows for /v1/trace; empty: 3 fixed points"
    )
    delay_s: float = 1.0
    fail_first: int = 2
    token: str = ""
    validate_requests: bool = Field(
        True, description="read and check each request body; off = answer as soon as the body is in (benchmarks)"
    )
    model_name: str = "fake-vlm"
    path_map: dict[str, str] = Field(
        default_factory=dict, description="spatial API: path prefixes as the server sees them -> local prefixes "
        "(a shared folder mounted elsewhere)"
    )


class FakeState:
    def __init__(self, config: FakeConfig) -> None:
        self.config = config
        self.requests: list[dict[str, Any]] = []
        self.counter = itertools.count()
        self.lock = threading.Lock()

    def next_answers(self, count: int) -> list[str]:
        answers = self.config.answers or [DEFAULT_ANSWER]
        return [answers[next(self.counter) % len(answers)] for _ in range(count)]


_DEFAULT_POINTS: list[list[float | None]] = [[100.0, 100.0, 1.0], [200.0, 150.0, 1.1], [300.0, 200.0, 1.2]]


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise HTTPException(400, "body is not JSON") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "body must be a JSON object")
    return body


def _completion(model: str, texts: list[str]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                    for i, t in enumerate(texts)],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _trace_reply(cfg: FakeConfig, samples: list[tuple[list, str]], t0: float) -> dict[str, Any]:
    return {
        "samples": [{"points": points, "text": text} for points, text in samples],
        "model": {"name": cfg.model_name, "version": "0", "backend": "fake"},
        "timings_ms": {"decode": 0.0, "queue": 0.0, "inference": 0.0, "total": (time.perf_counter() - t0) * 1e3},
    }


def _b64_bytes(data: str, what: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (ValueError, TypeError):
        raise HTTPException(400, f"{what} is not valid base64") from None


def _decode_image(data: bytes, what: str, depth: bool = False) -> np.ndarray:
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED if depth else cv2.IMREAD_COLOR)
    if arr is None:
        raise HTTPException(400, f"{what} does not decode as an image")
    if depth and (arr.dtype != np.uint16 or arr.ndim != 2):
        raise HTTPException(400, f"{what} must be a single-channel 16-bit PNG, got {arr.dtype} {arr.shape}")
    return arr


def _image_summary(color: np.ndarray | None, depth: np.ndarray | None) -> dict[str, Any]:
    out: dict[str, Any] = {"image_shape": None, "depth_shape": None, "depth_sha1": None, "color_mean_rgb": None}
    if color is not None:
        out["image_shape"] = list(color.shape)
        out["color_mean_rgb"] = color[:, :, ::-1].reshape(-1, 3).mean(axis=0).round(2).tolist()
    if depth is not None:
        out["depth_shape"] = list(depth.shape)
        out["depth_sha1"] = hashlib.sha1(np.ascontiguousarray(depth).tobytes()).hexdigest()
    return out


def _path_list(body: dict[str, Any], key: str, required: bool = False) -> list[str]:
    value = body.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list) or not value or not all(isinstance(p, str) for p in value):
        raise HTTPException(400, f"{key} must be a non-empty list of paths" + ("" if required else " or null"))
    return value


def _local_path(path: str, path_map: dict[str, str]) -> str:
    for server_prefix, local_prefix in path_map.items():
        if path.startswith(server_prefix):
            return local_prefix + path[len(server_prefix):]
    return path


def _is_intrinsics(k: object) -> bool:
    if not (isinstance(k, list) and len(k) == 3 and all(isinstance(r, list) and len(r) == 3 for r in k)):
        return False
    m = np.array(k, dtype=float)
    return bool(m[0, 0] > 0 and m[1, 1] > 0 and m[0, 1] == m[1, 0] == m[2, 0] == m[2, 1] == 0 and m[2, 2] == 1)


def _read_image_file(path: str) -> np.ndarray:
    arr = cv2.imread(path, cv2.IMREAD_COLOR)
    if arr is None:
        raise HTTPException(400, f"image file {path} is missing or not an image")
    return arr


def _read_depth_file(path: str) -> np.ndarray:
    """A depth file as uint16 millimetres: a 16-bit PNG as it is, a float32 .npy in metres rounded to mm."""
    if path.endswith(".npy"):
        try:
            metres = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            raise HTTPException(400, f"depth file {path} is missing or not a .npy array") from None
        if metres.dtype != np.float32 or metres.ndim != 2:
            raise HTTPException(400, f"depth file {path} must be float32 (H, W) metres, got {metres.dtype} "
                                f"{metres.shape}")
        return np.rint(metres * 1000.0).astype(np.uint16)
    arr = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16 or arr.ndim != 2:
        raise HTTPException(400, f"depth file {path} is missing or not a single-channel 16-bit PNG")
    return arr


def build_app(state: FakeState) -> FastAPI:
    app = FastAPI(title="fake trace model servers")

    async def behave(api: str) -> Response | None:
        """Apply the failure modes shared by all APIs; None means answer normally."""
        cfg = state.config
        with state.lock:
            n = len(state.requests)
        if cfg.mode == "slow":
            await asyncio.sleep(cfg.delay_s)
        if cfg.mode == "failing":
            if api == "robotracer":  # Flask's default error page
                return Response("<!doctype html><title>500 Internal Server Error</title>", 500, media_type="text/html")
            return JSONResponse({"detail": "fake model crashed (mode=failing)"}, 500)
        if cfg.mode == "flaky" and n <= cfg.fail_first:
            return JSONResponse({"detail": f"fake model warming up ({n}/{cfg.fail_first})"}, 503)
        if cfg.mode == "malformed":
            return JSONResponse({"unexpected": "shape", "api": api}, 200)
        if cfg.mode == "not_json":
            return PlainTextResponse("<<not json>>", 200)
        return None

    def record(entry: dict[str, Any]) -> None:
        entry["t_s"] = time.time()
        with state.lock:
            state.requests.append(entry)

    def check_auth(request: Request, api: str) -> None:
        if state.config.token and request.headers.get("authorization") != f"Bearer {state.config.token}":
            record({"api": api, "auth": "refused"})
            raise HTTPException(401, "missing or wrong bearer token")

    @app.get("/_fake/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/_fake/requests")
    async def list_requests() -> list[dict[str, Any]]:
        with state.lock:
            return list(state.requests)

    @app.post("/_fake/config")
    async def set_config(update: dict[str, Any]) -> dict[str, Any]:
        merged = {**state.config.model_dump(), **update}
        state.config = FakeConfig.model_validate(merged)
        with state.lock:
            state.requests.clear()
            state.counter = itertools.count()
        return state.config.model_dump()

    async def spatial_query(body: dict[str, Any]) -> Response:
        paths = [_local_path(p, state.config.path_map) for p in _path_list(body, "image_paths", required=True)]
        depth_paths = [_local_path(p, state.config.path_map) for p in _path_list(body, "depth_z_paths")]
        intrinsics = body.get("intrinsics")
        if body.get("enable_spatial") not in (0, 1) or isinstance(body.get("enable_spatial"), bool):
            raise HTTPException(400, "enable_spatial must be the integer 0 or 1")
        if not isinstance(body.get("text"), str) or not body["text"].strip():
            raise HTTPException(400, "text must be a non-empty string")
        if intrinsics is not None and not _is_intrinsics(intrinsics):
            raise HTTPException(400, "intrinsics must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]")
        if depth_paths and intrinsics is None:
            raise HTTPException(400, "depth_z_paths need intrinsics")
        if len(paths) != 1 or len(depth_paths) > 1:
            raise HTTPException(400, "expected one image path and at most one depth path")
        color = _read_image_file(paths[0])
        depth_mm = _read_depth_file(depth_paths[0]) if depth_paths else None
        if depth_mm is not None and depth_mm.shape != color.shape[:2]:
            raise HTTPException(400, f"depth {depth_mm.shape} is not aligned to color {color.shape[:2]}")
        record({"api": "spatial", "text": body["text"], "enable_spatial": body["enable_spatial"],
                "intrinsics": intrinsics, "image_path": paths[0], "depth_path": depth_paths[0] if depth_paths else None,
                "color_sha1": hashlib.sha1(np.ascontiguousarray(color[:, :, ::-1]).tobytes()).hexdigest(),
                "depth_mm_sha1": hashlib.sha1(depth_mm.tobytes()).hexdigest() if depth_mm is not None else None,
                "image_shape": list(color.shape)})
        failure = await behave("robotracer")
        if failure is not None:
            return failure
        answer = GARBAGE_ANSWER if state.config.mode == "garbage" else state.next_answers(1)[0]
        return JSONResponse({"answer": answer})

    @app.post("/query")
    async def robotracer_query(request: Request) -> Response:
        raw = await request.body()
        if not state.config.validate_requests:
            record({"api": "robotracer", "bytes": len(raw)})
            return JSONResponse({"answer": state.next_answers(1)[0]})
        body = _json_object(raw)
        if "image_paths" in body:
            return await spatial_query(body)
        for key, kind in (("image_url", list), ("depth_url", list), ("enable_depth", int), ("text", str)):
            if not isinstance(body.get(key), kind):
                raise HTTPException(400, f"field {key!r} missing or not a {kind.__name__}")
        if len(body["image_url"]) != 1 or not body["text"].strip():
            raise HTTPException(400, "expected exactly one image and a non-empty text")
        if body["enable_depth"] not in (0, 1) or (body["enable_depth"] == 1) != bool(body["depth_url"]):
            raise HTTPException(400, "enable_depth must be 1 exactly when depth_url holds an image")
        color = _decode_image(_b64_bytes(body["image_url"][0], "image_url[0]"), "image_url[0]")
        depth = None
        if body["depth_url"]:
            depth = _decode_image(_b64_bytes(body["depth_url"][0], "depth_url[0]"), "depth_url[0]", depth=True)
            if depth.shape != color.shape[:2]:
                raise HTTPException(400, f"depth {depth.shape} is not aligned to color {color.shape[:2]}")
        record({"api": "robotracer", "text": body["text"], "enable_depth": body["enable_depth"],
                **_image_summary(color, depth)})
        failure = await behave("robotracer")
        if failure is not None:
            return failure
        answer = GARBAGE_ANSWER if state.config.mode == "garbage" else state.next_answers(1)[0]
        return JSONResponse({"answer": answer})

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        check_auth(request, "openai")
        raw = await request.body()
        if not state.config.validate_requests:
            record({"api": "openai", "bytes": len(raw)})
            return JSONResponse(_completion(state.config.model_name, state.next_answers(1)))
        body = _json_object(raw)
        if not isinstance(body.get("model"), str) or not isinstance(body.get("messages"), list):
            raise HTTPException(400, "model and messages are required")
        user = [m for m in body["messages"] if isinstance(m, dict) and m.get("role") == "user"]
        if not user or not isinstance(user[-1].get("content"), list):
            raise HTTPException(400, "expected a user message with a list of content parts")
        parts = user[-1]["content"]
        texts = [p["text"] for p in parts if p.get("type") == "text" and isinstance(p.get("text"), str)]
        urls = [p["image_url"]["url"] for p in parts if p.get("type") == "image_url"
                and isinstance(p.get("image_url"), dict) and isinstance(p["image_url"].get("url"), str)]
        if len(texts) != 1 or len(urls) != 1 or not urls[0].startswith("data:image/"):
            raise HTTPException(400, "expected one text part and one image_url part with a data:image/ URL")
        n = body.get("n", 1)
        if not isinstance(n, int) or n < 1:
            raise HTTPException(400, "n must be a positive integer")
        header, _, data = urls[0].partition(",")
        if not header.endswith(";base64"):
            raise HTTPException(400, "image data URL must be base64")
        color = _decode_image(_b64_bytes(data, "image_url"), "image_url")
        record({"api": "openai", "text": texts[0], "model": body["model"], "n": n,
                "temperature": body.get("temperature"), "max_tokens": body.get("max_tokens"),
                "system": [m.get("content") for m in body["messages"] if m.get("role") == "system"],
                "extra": {k: v for k, v in body.items() if k not in ("model", "messages", "n", "temperature",
                                                                       "max_tokens")},
                **_image_summary(color, None)})
        failure = await behave("openai")
        if failure is not None:
            return failure
        texts_out = [GARBAGE_ANSWER] * n if state.config.mode == "garbage" else state.next_answers(n)
        return JSONResponse(_completion(body["model"], texts_out))

    @app.post(TRACE_PATH)
    async def trace(request: Request) -> Response:
        t0 = time.perf_counter()
        check_auth(request, "trace")
        raw = await request.body()
        cfg = state.config
        if not cfg.validate_requests:
            record({"api": "trace", "bytes": len(raw)})
            return JSONResponse(_trace_reply(cfg, [(_DEFAULT_POINTS, state.next_answers(1)[0])], t0))
        try:
            body = TraceRequest.model_validate_json(raw)
        except ValidationError as err:
            return JSONResponse({"detail": err.errors(include_url=False, include_input=False)}, 422)
        color = _decode_image(_b64_bytes(body.image_b64, "image_b64"), "image_b64")
        depth = None
        if body.depth_png_b64 is not None:
            depth = _decode_image(_b64_bytes(body.depth_png_b64, "depth_png_b64"), "depth_png_b64", depth=True)
        record({"api": "trace", "instruction": body.instruction, "n_samples": body.n_samples,
                "temperature": body.temperature, "max_new_tokens": body.max_new_tokens,
                "depth_scale_m": body.depth_scale_m, "seed": body.seed, "prompt": body.prompt,
                "intrinsics": body.intrinsics.model_dump() if body.intrinsics else None,
                **_image_summary(color, depth)})
        failure = await behave("trace")
        if failure is not None:
            return failure
        samples = []
        for k, text in enumerate(state.next_answers(body.n_samples)):
            points = cfg.trace_points[k % len(cfg.trace_points)] if cfg.trace_points else _DEFAULT_POINTS
            if cfg.mode == "garbage":
                points, text = [[-50.0, 1e6, None], [3.0, 4.0, None]], GARBAGE_ANSWER
            samples.append((points, text))
        return JSONResponse(_trace_reply(cfg, samples, t0))

    return app


# -- helpers for tests and benchmarks -----------------------------------------------------------------


def start_fake_model_server(
    group: ProcessGroup, port: int, name: str = "fake_model_server", timeout_s: float = 30.0, **config: Any
) -> tuple[str, ManagedProcess]:
    """Start the fake in its own process (``config`` as FakeConfig fields); wait until it answers."""
    cfg = FakeConfig(**config)
    proc = group.start_python(
        name, "spatial_trace_ros.testing.fake_model_servers",
        ["--port", str(port), "--config-json", cfg.model_dump_json()],
    )
    base_url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if not proc.alive():
            raise RuntimeError(f"fake model server exited early:\n{proc.tail()}")
        try:
            return httpx.get(f"{base_url}/_fake/health", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(ready, timeout_s, f"the fake model server on port {port}", interval_s=0.1, on_timeout=proc.tail)
    return base_url, proc


def configure_fake(base_url: str, **update: Any) -> dict[str, Any]:
    """Change a running fake's behaviour (and clear its request log)."""
    resp = httpx.post(f"{base_url}/_fake/config", json=update, timeout=5.0)
    resp.raise_for_status()
    return resp.json()


def fake_requests(base_url: str) -> list[dict[str, Any]]:
    """What the fake received since it was last configured."""
    resp = httpx.get(f"{base_url}/_fake/requests", timeout=5.0)
    resp.raise_for_status()
    return resp.json()


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="fake trace model servers (RoboTracer, OpenAI, /v1/trace)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=list(Mode.__args__), default=None)
    parser.add_argument("--answer", action="append", default=None, help="answer text (repeat to cycle)")
    parser.add_argument("--delay-s", type=float, default=None)
    parser.add_argument("--config-json", default="{}", help="FakeConfig fields as JSON")
    args = parser.parse_args(argv)
    values = json.loads(args.config_json)
    for key, value in (("mode", args.mode), ("answers", args.answer), ("delay_s", args.delay_s)):
        if value is not None:
            values[key] = value
    app = build_app(FakeState(FakeConfig(**values)))
    # Slow-mode replies still sleeping must not hold up a test's teardown.
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=1)


if __name__ == "__main__":
    main()
