"""``--backend robotracer-relay``: a RoboTracer spatial-encoder server behind the trace server's front door.

RoboTracer's own model reads its images from files (``POST /query`` with ``image_paths``,
``depth_z_paths``, ``intrinsics``, ``enable_spatial``, ``text``; reply ``{"answer": text}``), so a robot
PC cannot send it a frame directly. The relay runs on the GPU host beside it: clients send frames to
``POST /v1/trace`` as to any ``spatial-trace serve`` (bearer token, body and image limits, metrics);
the relay writes the color image as it arrived (PNG or JPEG) and the metric depth (``--depth-format``:
16-bit PNG in millimetres or float32 ``.npy`` in metres) into ``--spool``, forwards the paths, the
intrinsics and the prompt to ``--upstream``, and removes the files after the answer or the failure.
The answer text is parsed like any text model's.

The request decides the mode: depth is forwarded when it carries depth, intrinsics when it carries
them, ``enable_spatial`` when it sets it (else ``--enable-spatial``). The prompt is the request's
``prompt`` (the robotracer client sends RoboTracer's exact phrasing), else ``--prompt-template``.
RoboTracer's server decodes greedily, so ``n_samples`` > 1 is refused.
"""

from __future__ import annotations

import logging

import cv2
import httpx
import numpy as np

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.server.backends.base import ModelIdentity, TextBackend, TextQuery, model_identity
from spatial_trace_ros.server.errors import RequestError
from spatial_trace_ros.server.settings import ServerSettings
from spatial_trace_ros.trace.backends.spatial_files import (
    check_spool_dir,
    intrinsics_matrix,
    spatial_request,
    spool_frame,
)

log = logging.getLogger(__name__)
_MM = 0.001


class RoboTracerRelay(TextBackend):
    """Writes each frame to the spool folder and asks the RoboTracer server about the files."""

    needs_pixels = False  # the files go on as they came; only depth in another unit or format is decoded

    def __init__(self, settings: ServerSettings) -> None:
        from spatial_trace_ros.trace.conventions import get_convention
        from spatial_trace_ros.trace.prompts import resolve_prompt

        assert settings.upstream_url is not None and settings.spool_dir is not None  # ServerSettings checks
        self.upstream_url = settings.upstream_url
        self.spool_dir = check_spool_dir(settings.spool_dir, "--spool")
        self.depth_format = settings.depth_format
        self.enable_spatial = settings.enable_spatial
        self._template = resolve_prompt(settings.prompt_template)
        self.convention = get_convention(settings.convention).name
        self.device = "upstream"
        self.identity: ModelIdentity = model_identity(settings)
        self._client = httpx.Client(timeout=httpx.Timeout(settings.upstream_timeout_s, connect=5.0), trust_env=False)

    def describe(self) -> str:
        return (f"relay to the RoboTracer server at {self.upstream_url} (files in {self.spool_dir}, depth as "
                f"{self.depth_format}), answers parsed as {self.convention}")

    def gpu_memory_readers(self) -> None:
        return None

    def sampling_problem(self, n_samples: int, temperature: float) -> str:
        if n_samples > 1:
            return (f"n_samples = {n_samples}: the RoboTracer server behind this relay decodes greedily, so it would "
                    f"give one answer {n_samples} times, not independent samples; ask for n_samples 1")
        return ""

    def warm_up(self) -> None:
        """Check the spool folder is still writable; the upstream model is warmed up by its own server."""
        check_spool_dir(self.spool_dir, "--spool")
        try:
            self._client.get(self.upstream_url + "/", timeout=2.0)
        except httpx.HTTPError as err:
            log.warning("the RoboTracer server at %s does not answer yet (%s); requests fail until it does",
                        self.upstream_url, err.__class__.__name__)

    def generate(self, query: TextQuery) -> list[str]:
        from spatial_trace_ros.trace.prompts import render_prompt

        frame = query.frame
        if frame is None:
            raise ConfigError("the relay needs the decoded request (TextQuery.frame)")
        ready_png = None
        if self.depth_format == "png16_mm" and frame.depth_png is not None and abs(frame.depth_scale_m - _MM) < 1e-12:
            ready_png = frame.depth_png  # already millimetres: write the client's PNG as it came
        depth_m = None
        if frame.depth_png is not None and ready_png is None:
            raw = cv2.imdecode(np.frombuffer(frame.depth_png, np.uint8), cv2.IMREAD_UNCHANGED)
            depth_m = raw.astype(np.float32) * np.float32(frame.depth_scale_m)
        spooled = spool_frame(
            self.spool_dir, frame.color_file, frame.color_suffix, depth_m=depth_m, depth_format=self.depth_format,
            depth_png16_mm_bytes=ready_png,
        )
        try:
            intr = query.intrinsics
            body = spatial_request(
                str(spooled.image_path.resolve()),
                str(spooled.depth_path.resolve()) if spooled.depth_path is not None else None,
                intrinsics_matrix(intr.fx, intr.fy, intr.cx, intr.cy) if intr is not None else None,
                self.enable_spatial if query.enable_spatial is None else query.enable_spatial,
                query.prompt or render_prompt(self._template, query.instruction),
            )
            answer = self._ask(body)
        finally:
            spooled.remove()
        return [answer]

    def _ask(self, body: dict) -> str:
        url = self.upstream_url + "/query"
        try:
            resp = self._client.post(url, json=body)
        except httpx.TimeoutException:
            raise RequestError(504, f"the RoboTracer server at {url} gave no answer in time (--upstream-timeout-s)",
                               "timeout") from None
        except httpx.TransportError as err:
            raise RequestError(502, f"the RoboTracer server at {url} cannot be reached ({err.__class__.__name__}); "
                               "is it running, and is --upstream right?", "error") from None
        if resp.status_code != 200:
            raise RequestError(502, f"the RoboTracer server at {url} answered HTTP {resp.status_code}: "
                               f"{resp.text.strip()[:300]!r}", "error")
        try:
            reply = resp.json()
        except ValueError:
            raise RequestError(502, f"the RoboTracer server at {url} answered with a body that is not JSON: "
                               f"{resp.text[:200]!r}", "error") from None
        answer = reply.get("answer") if isinstance(reply, dict) else None
        if not isinstance(answer, str):
            raise RequestError(502, f"the RoboTracer server at {url} replied without an 'answer' text: "
                               f"{str(reply)[:200]!r}", "error")
        return answer
