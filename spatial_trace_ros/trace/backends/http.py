"""The project's own trace server (``spatial-trace serve``): ``POST /v1/trace``.

The wire format is ``spatial_trace_ros.server.schema`` (shared with the server): color image and
optional 16-bit depth PNG in base64, intrinsics, instruction and sampling settings; the reply holds
samples as pixel points [u, v, d|null] (and the raw text for text models), model name/version and
server timings. All samples travel in one request; the server batches them. A bearer token comes
from ``api_key``, ``api_key_env`` or, like the server itself, ``SPATIAL_TRACE_SERVER_TOKEN``.
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, ValidationError

from spatial_trace_ros.errors import ConfigError, ModelError
from spatial_trace_ros.server.schema import TRACE_PATH, Intrinsics, TraceRequest, TraceResponse
from spatial_trace_ros.trace.backends.base import (
    DEPTH_PLACEHOLDER,
    IMAGE_PLACEHOLDER,
    EncodedFrame,
    HttpBackendOptions,
    HttpTraceModel,
)
from spatial_trace_ros.trace.model import ModelAnswer, TraceQuery

SERVER_TOKEN_ENV = "SPATIAL_TRACE_SERVER_TOKEN"


def server_request(query: TraceQuery, encoded: EncodedFrame, send_intrinsics: bool, what: str,
                   **fields: Any) -> TraceRequest:
    """Our server's request for ``query``: the frame's blobs as placeholders (``encoded.blobs()`` travel
    beside), its intrinsics when asked, and ``fields`` (sampling, prompt); a value the schema refuses is a
    ``ConfigError`` naming the field."""
    intr = query.frame.intrinsics
    try:
        return TraceRequest(
            instruction=query.instruction,
            image_b64=IMAGE_PLACEHOLDER,
            depth_png_b64=DEPTH_PLACEHOLDER if encoded.depth_b64 is not None else None,
            depth_scale_m=encoded.depth_scale_m,
            intrinsics=Intrinsics(fx=intr.fx, fy=intr.fy, cx=intr.cx, cy=intr.cy, width=intr.width,
                                  height=intr.height) if send_intrinsics else None,
            **fields,
        )
    except ValidationError as err:
        first = err.errors()[0]
        raise ConfigError(f"cannot ask {what}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


class TraceServerOptions(HttpBackendOptions):
    base_url: str = Field("http://127.0.0.1:8500", description="trace server, e.g. http://gpu-host:8500")
    send_depth: bool = Field(True, description="send the aligned depth image when the frame has one")
    send_intrinsics: bool = Field(True, description="send the color camera intrinsics")
    seed: int | None = Field(None, ge=0, description="sampling seed sent to the server (reproducible samples)")
    max_new_tokens: int = Field(512, ge=1, le=4096, description="longest text answer of text models [tokens]")


class TraceServerBackend(HttpTraceModel):
    """Client of a ``spatial-trace serve`` server."""

    Options = TraceServerOptions
    name: ClassVar[str] = "http"
    default_convention: ClassVar[str] = "robotracer"
    samples_per_request = True

    def _read_token(self) -> str:
        return super()._read_token() or os.environ.get(SERVER_TOKEN_ENV, "")

    async def _sample(self, query: TraceQuery, count: int, first_index: int = 0) -> list[ModelAnswer]:
        opts = self.options
        encoded = await self.encode_frame(query, opts.send_depth)
        request = server_request(query, encoded, opts.send_intrinsics, "the trace server", n_samples=count,
                                 temperature=query.temperature, seed=opts.seed, max_new_tokens=opts.max_new_tokens)
        payload: dict[str, Any] = request.model_dump(exclude_none=True)
        reply, timings = await self.post_json(TRACE_PATH, payload, "trace server", encoded.blobs())
        t0 = time.perf_counter()
        try:
            response = TraceResponse.model_validate(reply)
        except ValidationError as err:
            raise ModelError(
                f"trace server at {opts.base_url} replied with an unexpected body ({err.error_count()} problems, "
                f"first: {err.errors()[0]['msg']} at {'.'.join(map(str, err.errors()[0]['loc']))}): "
                f"{str(reply)[:200]!r}"
            ) from None
        model = f"{response.model.name}:{response.model.version}"
        timings["decode_ms"] += (time.perf_counter() - t0) * 1e3
        meta = {
            "encode_ms": encoded.encode_s * 1e3,
            **timings,
            "server_timings_ms": response.timings_ms.model_dump(),
            "server_backend": response.model.backend,
        }
        answers = []
        for sample in response.samples:
            points = None
            if sample.points:
                points = np.array([[u, v, np.nan if d is None else d] for u, v, d in sample.points], dtype=float)
            answers.append(ModelAnswer(sample.text or "", self.convention, model, timings["round_trip_ms"] / 1e3,
                                       points, dict(meta)))
        return answers
