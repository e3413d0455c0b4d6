"""RoboTracer / RoboRefer model servers, through either of their two APIs (option ``api``).

``api=query`` (default; RoboRefer's server and RoboTracer's ``API/Qwen3VL.py``): ``POST /query`` with
``{"image_url": [<base64 color>], "depth_url": [<base64 depth>] or [], "enable_depth": 0|1, "text": prompt}``.

``api=spatial`` (RoboTracer's own model with its spatial encoder): ``POST /query`` with
``{"image_paths": [...], "depth_z_paths": [...] | null, "intrinsics": [[fx,0,cx],[0,fy,cy],[0,0,1]] | null,
"enable_spatial": 0|1, "text": prompt}``, where the paths are files on the model server's disk. Its four
modes are options: intrinsics + depth + RGB (default), intrinsics + RGB (``send_depth=false``), RGB
with the encoder (``send_depth=false send_intrinsics=false``), RGB without it (``enable_spatial=false``).
The frame reaches the server's disk in one of two ways:

- ``spool_dir`` set: a folder both machines mount; this client writes the files there (named as the
  server sees them with ``server_spool_dir``), posts their paths to ``base_url`` and removes them;
- ``spool_dir`` empty: ``base_url`` is a relay on the GPU host (``spatial-trace serve --backend
  robotracer-relay``), reached like any ``spatial-trace serve`` (``POST /v1/trace``, bearer token): it
  writes the files next to the model server and forwards the paths.

Both APIs reply ``{"answer": text}``; the prompt is one of the two phrasings RoboTracer was trained on
and the answer is read in the ``robotracer`` convention (x, y on 0-1000, d in metres). RoboTracer's
servers decode greedily, so ``n_samples`` > 1 is refused unless ``server_samples`` says the server
was changed to sample: N greedy answers are one answer N times, not a consensus.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError, model_validator

from spatial_trace_ros.errors import ConfigError, ModelError
from spatial_trace_ros.server.schema import TRACE_PATH, TraceResponse
from spatial_trace_ros.trace.backends.base import (
    DEPTH_PLACEHOLDER,
    IMAGE_PLACEHOLDER,
    HttpBackendOptions,
    HttpTraceModel,
)
from spatial_trace_ros.trace.backends.http import server_request
from spatial_trace_ros.trace.backends.spatial_files import (
    DepthFileFormat,
    check_spool_dir,
    intrinsics_matrix,
    server_path,
    spatial_request,
    spool_frame,
)
from spatial_trace_ros.trace.encoding import depth_as_uint16, encode_color, encode_depth_png
from spatial_trace_ros.trace.model import ModelAnswer, TraceQuery
from spatial_trace_ros.trace.prompts import render_prompt

RELAY_TOKEN_ENV = "SPATIAL_TRACE_SERVER_TOKEN"
_SPATIAL_ONLY = ("send_intrinsics", "enable_spatial", "spool_dir", "server_spool_dir", "depth_format")


class RoboTracerOptions(HttpBackendOptions):
    base_url: str = Field("http://127.0.0.1:25547", description="RoboTracer server or relay, e.g. http://gpu-host:25547")
    api: Literal["query", "spatial"] = Field(
        "query", description="query: base64 images (RoboRefer, RoboTracer's Qwen3VL server); spatial: RoboTracer's "
        "spatial-encoder API (files on the server's disk)")
    send_depth: bool = Field(True, description="send the aligned depth image when the frame has one")
    send_intrinsics: bool = Field(True, description="api=spatial: send the color camera intrinsics")
    enable_spatial: bool = Field(True, description="api=spatial: use the spatial encoder (false: RGB only)")
    spool_dir: str = Field("", description="api=spatial: folder shared with the model server; empty = base_url is "
                           "a robotracer-relay")
    server_spool_dir: str = Field("", description="api=spatial: spool_dir as the model server mounts it; empty = "
                                  "the same path")
    depth_format: DepthFileFormat = Field("png16_mm", description="api=spatial: depth file: png16_mm (16-bit PNG, "
                                          "millimetres) or npy_m (float32 .npy, metres)")
    server_samples: bool = Field(False, description="the server samples (temperature > 0); RoboTracer's own "
                                 "servers decode greedily, so n_samples > 1 is refused without this")

    @model_validator(mode="after")
    def _consistent_mode(self) -> RoboTracerOptions:
        given = self.model_fields_set
        if self.api == "query":
            wrong = [name for name in _SPATIAL_ONLY if name in given]
            if wrong:
                raise ValueError(f"{', '.join(wrong)} apply only to the spatial-encoder API; add api=spatial or "
                                 "drop them")
            return self
        if not self.enable_spatial:
            wrong = [name for name in ("send_depth", "send_intrinsics") if name in given and getattr(self, name)]
            if wrong:
                raise ValueError(f"{' and '.join(wrong)} feed the spatial encoder, which enable_spatial=false turns "
                                 "off; drop them, or set enable_spatial=true")
        elif self.send_depth and not self.send_intrinsics:
            raise ValueError("send_depth without send_intrinsics is not a RoboTracer mode (the encoder lifts depth "
                             "to 3D with the intrinsics); set send_intrinsics=true, or send_depth=false")
        if self.server_spool_dir and not self.spool_dir:
            raise ValueError("server_spool_dir names where spool_dir is mounted on the model server; set spool_dir "
                             "too (or neither, to go through a robotracer-relay)")
        return self

    @property
    def sends_depth(self) -> bool:
        return self.send_depth and (self.api == "query" or self.enable_spatial)

    @property
    def sends_intrinsics(self) -> bool:
        return self.api == "spatial" and self.enable_spatial and self.send_intrinsics


class RoboTracerBackend(HttpTraceModel):
    """Client of a RoboTracer/RoboRefer ``/query`` server (base64 or spatial-encoder API), direct or via a relay."""

    Options = RoboTracerOptions
    name: ClassVar[str] = "robotracer"
    default_convention: ClassVar[str] = "robotracer"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        opts = self.options
        self.spool_dir: Path | None = None
        if opts.api == "spatial" and opts.spool_dir:
            self.spool_dir = check_spool_dir(Path(opts.spool_dir), "spool_dir")
        self.via_relay = opts.api == "spatial" and not opts.spool_dir

    def _read_token(self) -> str:
        token = super()._read_token()
        if not token and self.options.api == "spatial" and not self.options.spool_dir:
            return os.environ.get(RELAY_TOKEN_ENV, "")
        return token

    def check_sampling(self, n_samples: int, temperature: float) -> None:
        if n_samples > 1 and not self.options.server_samples:
            raise ConfigError(
                f"n_samples = {n_samples}: RoboTracer's servers decode greedily, so {n_samples} requests would give "
                f"one answer {n_samples} times, not independent samples to agree on; use n_samples 1, or set the "
                "robotracer option server_samples=true if your server samples (temperature > 0)"
            )

    async def _sample(self, query: TraceQuery, count: int, first_index: int = 0) -> list[ModelAnswer]:
        prompt = render_prompt(self.prompt_template, query.instruction)
        if self.options.api == "query":
            text, meta = await self._ask_base64(query, prompt)
        elif self.via_relay:
            text, meta = await self._ask_relay(query, prompt)
        else:
            text, meta = await self._ask_shared_folder(query, prompt)
        meta["prompt"] = prompt
        meta["api"] = self.options.api
        return [ModelAnswer(text, self.convention, "robotracer", meta["round_trip_ms"] / 1e3, metadata=meta)]

    def _answer_of(self, reply: Any) -> str:
        answer = reply.get("answer") if isinstance(reply, dict) else None
        if not isinstance(answer, str):
            raise ModelError(
                f"RoboTracer server at {self.options.base_url} replied without an 'answer' text: {str(reply)[:200]!r}"
            )
        return answer

    async def _ask_base64(self, query: TraceQuery, prompt: str) -> tuple[str, dict[str, Any]]:
        encoded = await self.encode_frame(query, self.options.send_depth)
        has_depth = encoded.depth_b64 is not None
        payload = {
            "image_url": [IMAGE_PLACEHOLDER],
            "depth_url": [DEPTH_PLACEHOLDER] if has_depth else [],
            "enable_depth": int(has_depth),
            "text": prompt,
        }
        reply, timings = await self.post_json("/query", payload, "RoboTracer server", encoded.blobs())
        return self._answer_of(reply), {"encode_ms": encoded.encode_s * 1e3, **timings}

    async def _ask_shared_folder(self, query: TraceQuery, prompt: str) -> tuple[str, dict[str, Any]]:
        opts, frame = self.options, query.frame
        assert self.spool_dir is not None
        spool_dir = self.spool_dir
        with_depth = opts.sends_depth and frame.depth is not None

        def write() -> Any:
            color = encode_color(frame.color, opts.image_format, opts.jpeg_quality)
            suffix = ".jpg" if opts.image_format == "jpeg" else ".png"
            if not with_depth:
                return spool_frame(spool_dir, color, suffix)
            if opts.depth_format == "png16_mm" and frame.depth is not None and frame.depth.dtype.kind == "u" \
                    and abs(frame.depth_scale_m - 0.001) < 1e-12:
                raw, _ = depth_as_uint16(frame)
                return spool_frame(spool_dir, color, suffix, depth_format="png16_mm",
                                   depth_png16_mm_bytes=encode_depth_png(raw, opts.depth_png_compression))
            return spool_frame(spool_dir, color, suffix, depth_m=frame.depth_m, depth_format=opts.depth_format)

        spooled = await asyncio.to_thread(write)
        try:
            intr = frame.intrinsics
            payload = spatial_request(
                server_path(spooled.image_path, spool_dir, opts.server_spool_dir),
                server_path(spooled.depth_path, spool_dir, opts.server_spool_dir) if spooled.depth_path else None,
                intrinsics_matrix(intr.fx, intr.fy, intr.cx, intr.cy) if opts.sends_intrinsics else None,
                opts.enable_spatial, prompt,
            )
            reply, timings = await self.post_json("/query", payload, "RoboTracer spatial-encoder server")
        finally:
            spooled.remove()
        return self._answer_of(reply), timings

    async def _ask_relay(self, query: TraceQuery, prompt: str) -> tuple[str, dict[str, Any]]:
        opts = self.options
        encoded = await self.encode_frame(query, opts.sends_depth)
        request = server_request(query, encoded, opts.sends_intrinsics, "the relay", prompt=prompt,
                                 enable_spatial=opts.enable_spatial)
        reply, timings = await self.post_json(TRACE_PATH, request.model_dump(exclude_none=True),
                                              "RoboTracer relay (spool_dir is empty, so base_url must be a "
                                              "robotracer-relay)", encoded.blobs())
        try:
            response = TraceResponse.model_validate(reply)
        except ValidationError:
            raise ModelError(f"the RoboTracer relay at {opts.base_url} replied with an unexpected body: "
                             f"{str(reply)[:200]!r}") from None
        text = response.samples[0].text
        if text is None:
            raise ModelError(f"the server at {opts.base_url} answered with points but no text; it is not a "
                             "robotracer-relay (use the http backend for it)")
        meta = {"encode_ms": encoded.encode_s * 1e3, **timings, "server_timings_ms": response.timings_ms.model_dump()}
        return text, meta
