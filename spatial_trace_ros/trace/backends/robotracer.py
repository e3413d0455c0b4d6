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
from spatial_trace_ros.trace.backends.base import HttpBackendOptions, HttpTraceModel
from spatial_trace_ros.trace.encoding import b64
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
        color, depth, _, encode_s = await self.encode_frame(query, self.options.send_depth)
        payload = {
            "image_url": [b64(color)],
            "depth_url": [b64(depth)] if depth is not None else [],
            "enable_depth": int(depth is not None),
            "text": prompt,
        }
        reply, elapsed_s = await self.post_json("/query", payload, "RoboTracer server")
        answer = reply.get("answer") if isinstance(reply, dict) else None
        if not isinstance(answer, str):
            raise ModelError(
                f"RoboTracer server at {self.options.base_url} replied without an 'answer' text: {str(reply)[:200]!r}"
            )
        meta = {"encode_ms": encode_s * 1e3, "round_trip_ms": elapsed_s * 1e3, "prompt": prompt}
        return [ModelAnswer(answer, self.convention, "robotracer", elapsed_s, metadata=meta)]
