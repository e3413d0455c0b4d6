"""The RoboTracer / RoboRefer Flask server: ``POST /query``.

Request: ``{"image_url": [<base64 color>], "depth_url": [<base64 depth>] or [], "enable_depth": 0|1,
"text": <prompt>}``; reply: ``{"answer": <text>}``. The prompt is one of the two task phrasings the
model was trained on (3D trace with metric depth, or 2D trace); answers use the ``robotracer``
convention (x, y on 0-1000, d in metres). The server samples with its own generation settings, so
``n_samples`` > 1 sends that many requests at once and relies on the server sampling (temperature > 0).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from spatial_trace_ros.errors import ModelError
from spatial_trace_ros.trace.backends.base import (
    DEPTH_PLACEHOLDER,
    IMAGE_PLACEHOLDER,
    HttpBackendOptions,
    HttpTraceModel,
)
from spatial_trace_ros.trace.model import ModelAnswer, TraceQuery
from spatial_trace_ros.trace.prompts import render_prompt


class RoboTracerOptions(HttpBackendOptions):
    base_url: str = Field("http://127.0.0.1:25547", description="RoboTracer server, e.g. http://gpu-host:25547")
    send_depth: bool = Field(True, description="send the aligned depth image (enable_depth = 1) when the frame has one")


class RoboTracerBackend(HttpTraceModel):
    """Client of a RoboTracer/RoboRefer ``/query`` server."""

    Options = RoboTracerOptions
    name: ClassVar[str] = "robotracer"
    default_convention: ClassVar[str] = "robotracer"

    async def _sample(self, query: TraceQuery, count: int) -> list[ModelAnswer]:
        prompt = render_prompt(self.prompt_template, query.instruction)
        encoded = await self.encode_frame(query, self.options.send_depth)
        has_depth = encoded.depth_b64 is not None
        payload = {
            "image_url": [IMAGE_PLACEHOLDER],
            "depth_url": [DEPTH_PLACEHOLDER] if has_depth else [],
            "enable_depth": int(has_depth),
            "text": prompt,
        }
        reply, timings = await self.post_json("/query", payload, "RoboTracer server", encoded.blobs())
        answer = reply.get("answer") if isinstance(reply, dict) else None
        if not isinstance(answer, str):
            raise ModelError(
                f"RoboTracer server at {self.options.base_url} replied without an 'answer' text: {str(reply)[:200]!r}"
            )
        meta = {"encode_ms": encoded.encode_s * 1e3, **timings, "prompt": prompt}
        return [ModelAnswer(answer, self.convention, "robotracer", timings["round_trip_ms"] / 1e3, metadata=meta)]
