"""From model answers and the frame they were asked about to one camera-frame 3D ``Trace``.

Every backend's answers go through the same steps: parse (or take the server's pixel points),
choose a depth per point, deproject with the frame's intrinsics, and with several samples pick
the consensus. 3D answers carry the model's metric depth; 2D answers take depth from the aligned
depth image with robust window sampling. Where both exist the model's depth is checked against the
sensor by default, and points that disagree by more than a threshold are dropped (or only flagged):
by default a point counts as disagreeing when it lies behind the surface the sensor sees (inside an
object or hidden), since a trace through free space legitimately lies in front of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from spatial_trace_ros.errors import DepthError, TraceParseError
from spatial_trace_ros.geometry.camera_model import RgbdFrame, deproject, sample_depth
from spatial_trace_ros.geometry.trace import Trace
from spatial_trace_ros.trace.consensus import choose_consensus
from spatial_trace_ros.trace.model import ModelAnswer
from spatial_trace_ros.trace.parser import parse_answer


class PipelineConfig(BaseModel):
    """How answers become a trace. Units are in the names; ranges are enforced on construction."""

    model_config = ConfigDict(extra="forbid")

    depth_source: Literal["auto", "model", "sensor"] = Field(
        "auto", description="where point depth comes from: auto = the model's where it gave one, else the sensor's"
    )
    depth_window_px: int = Field(5, ge=1, le=51, description="side of the square window for sensor depth [px], odd")
    sensor_min_depth_m: float = Field(0.05, ge=0.0, le=10.0, description="nearest valid sensor depth [m]")
    sensor_max_depth_m: float = Field(10.0, gt=0.0, le=100.0, description="farthest valid sensor depth [m]")
    depth_check_threshold_m: float = Field(
        0.1, ge=0.0, le=10.0,
        description="check model depth against the sensor where the frame has depth: points further off than "
        "this fail [m]; 0 = no check",
    )
    depth_check_side: Literal["behind", "both"] = Field(
        "behind", description="which points fail the depth check: those behind the visible surface (behind), or "
        "also those in front of it (both: for traces that stay on surfaces)"
    )
    depth_mismatch_action: Literal["flag", "invalidate"] = Field(
        "invalidate", description="what to do with points that fail the depth check: drop them, or only report them"
    )
    min_valid_fraction: float = Field(
        0.5, ge=0.0, le=1.0, description="refuse a trace when fewer of its points have a usable depth [0-1]"
    )
    min_agreement: float = Field(
        0.5, ge=0.0, le=1.0, description="refuse a multi-sample trace below this agreement score [0-1]"
    )
    agreement_radius_m: float = Field(
        0.05, gt=0.0, le=5.0, description="samples within this DTW distance of the medoid agree with it [m]"
    )

    @field_validator("depth_window_px")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"must be odd so the window is centred on the pixel, got {v}")
        return v


@dataclass(frozen=True, eq=False)
class TraceOutcome:
    """The result of one request: a trace, or the reason there is none.

    ``failures`` lists why individual samples were dropped; ``agreement`` is None for one sample.
    """

    trace: Trace | None
    reason: str
    n_requested: int
    n_parsed: int
    agreement: float | None = None
    chosen_index: int | None = None
    failures: list[str] = field(default_factory=list)
    answers: list[ModelAnswer] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.trace is not None

    @property
    def raw_answer(self) -> str:
        """The answer that was used, or the first one when the trace was refused."""
        if self.chosen_index is not None and self.chosen_index < len(self.answers):
            return self.answers[self.chosen_index].text
        return self.answers[0].text if self.answers else ""


def _points_from_server(answer: ModelAnswer, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel points a server returned directly, checked like a parsed answer would be."""
    pts = np.asarray(answer.points_uvd, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise TraceParseError(f"the server returned points of shape {pts.shape}; expected N x 3 [u, v, d|NaN]")
    if len(pts) < 2:
        raise TraceParseError(f"a trace needs at least 2 points, the server returned {len(pts)}")
    uv, depth = pts[:, :2], pts[:, 2]
    if not np.all(np.isfinite(uv)):
        raise TraceParseError("the server returned non-finite pixel coordinates")
    outside = np.flatnonzero((uv[:, 0] < 0) | (uv[:, 0] > width) | (uv[:, 1] < 0) | (uv[:, 1] > height))
    if len(outside):
        k = int(outside[0])
        raise TraceParseError(
            f"the server returned pixel ({uv[k, 0]:g}, {uv[k, 1]:g}) at point #{k}, outside the {width}x{height} "
            "image it was sent; is it answering for another image size?"
        )
    bad_depth = np.isfinite(depth) & (depth <= 0)
    if np.any(bad_depth):
        raise TraceParseError(f"the server returned a non-positive depth at point #{int(np.argmax(bad_depth))}")
    return uv, depth


def answer_to_trace(answer: ModelAnswer, frame: RgbdFrame, config: PipelineConfig | None = None) -> Trace:
    """One answer to a camera-frame trace (``frame.frame_id``, stamped with the frame's time).

    Raises ``TraceParseError`` for an unusable answer and ``DepthError`` when too few points get a depth.
    """
    cfg = config or PipelineConfig()
    intr = frame.intrinsics
    if answer.points_uvd is not None:
        uv, model_depth = _points_from_server(answer, intr.width, intr.height)
        snippet = ""
    else:
        parsed = parse_answer(answer.text, answer.convention, intr.width, intr.height)
        uv, model_depth, snippet = parsed.uv, parsed.depth_m, parsed.snippet
    n = len(uv)
    has_model = np.isfinite(model_depth)
    if cfg.depth_source == "model" and not np.all(has_model):
        raise DepthError(
            f"depth_source is 'model' but the model gave no depth for {int(np.sum(~has_model))} of {n} points "
            "(a 2D answer?); use depth_source 'auto' to fill them from the depth image"
        )
    use_model = has_model if cfg.depth_source != "sensor" else np.zeros(n, bool)
    check = cfg.depth_check_threshold_m > 0 and np.any(use_model)
    need_sensor = not np.all(use_model)
    depth_img = frame.depth_m
    sensor = None
    if need_sensor or (check and depth_img is not None):
        if depth_img is None:
            raise DepthError(
                f"{int(np.sum(~use_model))} of {n} points need depth from the sensor (a 2D answer, or "
                "depth_source 'sensor'), but the frame has no aligned depth image; enable the depth stream"
            )
        sensor = sample_depth(
            depth_img, uv, window_px=cfg.depth_window_px,
            min_depth_m=cfg.sensor_min_depth_m, max_depth_m=cfg.sensor_max_depth_m,
        )
    z = np.where(use_model, model_depth, np.nan)
    if sensor is not None:
        z = np.where(use_model, z, sensor.depth_m)
    valid = np.isfinite(z)
    metadata: dict = {
        "convention": answer.convention,
        "model": answer.model,
        "depth_from_model": int(np.sum(use_model)),
        "depth_from_sensor": int(np.sum(~use_model & valid)),
        "snippet": snippet,
    }
    if check and sensor is not None:
        comparable = use_model & sensor.valid
        behind = np.where(comparable, model_depth - sensor.depth_m, np.nan)  # > 0: behind the visible surface
        diff = np.abs(behind)
        off = behind if cfg.depth_check_side == "behind" else diff
        flagged = np.flatnonzero(comparable & (np.nan_to_num(off, nan=0.0) > cfg.depth_check_threshold_m))
        metadata["depth_check"] = {
            "threshold_m": cfg.depth_check_threshold_m,
            "side": cfg.depth_check_side,
            "compared": int(np.sum(comparable)),
            "flagged": flagged.tolist(),
            "max_abs_diff_m": float(np.nanmax(diff)) if np.any(comparable) else None,
            "action": cfg.depth_mismatch_action,
        }
        if cfg.depth_mismatch_action == "invalidate":
            valid[flagged] = False
    n_valid = int(np.sum(valid))
    if n_valid < 2 or n_valid / n < cfg.min_valid_fraction:
        lost = "with no valid sensor depth nearby" if sensor is not None else "without depth"
        invalidated = cfg.depth_mismatch_action == "invalidate"
        dropped = metadata.get("depth_check", {}).get("flagged", []) if invalidated else []
        extra = f"; {len(dropped)} dropped by the depth check" if dropped else ""
        raise DepthError(
            f"only {n_valid} of {n} trace points have a usable depth (min_valid_fraction "
            f"{cfg.min_valid_fraction:.2f}); the others fall on pixels {lost}{extra}. Check the depth stream "
            "(range, holes) or widen depth_window_px"
        )
    points = deproject(uv, z, intr)
    return Trace(
        points, frame_id=frame.frame_id, stamp_s=frame.stamp_s, source_text=answer.text,
        valid=valid, pixels_uv=uv, metadata=metadata,
    )


def build_trace(
    answers: Sequence[ModelAnswer],
    frame: RgbdFrame,
    config: PipelineConfig | None = None,
    n_requested: int | None = None,
) -> TraceOutcome:
    """All samples of one request to one trace, or a refusal that says why.

    Unusable samples are dropped (their reasons kept); with more than one sample requested the DTW
    medoid of the rest is chosen and refused when the agreement is below ``min_agreement``.
    """
    cfg = config or PipelineConfig()
    answers = list(answers)
    n_req = max(n_requested or len(answers), len(answers))
    if not answers:
        return TraceOutcome(None, "the model returned no answers", n_req, 0)
    traces: list[tuple[int, Trace]] = []
    failures: list[str] = []
    for k, answer in enumerate(answers):
        try:
            traces.append((k, answer_to_trace(answer, frame, cfg)))
        except (TraceParseError, DepthError) as err:
            failures.append(f"sample #{k}: {err}" if n_req > 1 else str(err))
    if not traces:
        if n_req == 1:
            reason = failures[0]
        else:
            reason = f"none of the {len(answers)} samples gave a usable trace; first: {failures[0]}"
        return TraceOutcome(None, reason, n_req, 0, failures=failures, answers=answers)
    if n_req == 1:
        k, trace = traces[0]
        return TraceOutcome(trace, "", 1, 1, None, k, failures, answers)
    result = choose_consensus([t.only_valid().points for _, t in traces], n_req, cfg.agreement_radius_m)
    k, trace = traces[result.index]
    summary = result.describe(cfg.agreement_radius_m)
    if not result.independent:
        reason = f"{summary}; use n_samples 1, or a backend that samples at temperature > 0"
        return TraceOutcome(None, reason, n_req, len(traces), result.agreement, None, failures, answers)
    if result.agreement < cfg.min_agreement:
        unusable = f"; {len(failures)} unusable" if failures else ""
        reason = (
            f"the samples disagree: {summary}{unusable}, below min_agreement {cfg.min_agreement:.2f}. "
            "Rephrase the instruction or check the scene"
        )
        return TraceOutcome(None, reason, n_req, len(traces), result.agreement, None, failures, answers)
    trace.metadata.update(agreement=result.agreement, consensus=summary, sample_index=k)
    return TraceOutcome(trace, "", n_req, len(traces), result.agreement, k, failures, answers)
