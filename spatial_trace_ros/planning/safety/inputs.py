"""Checks of the data a plan came from: how many trace points, their depth, the model's agreement,
how old the frame and the trace are, and jumps between trace points (plan time only)."""

from __future__ import annotations

from dataclasses import dataclass

from spatial_trace_ros.planning.plan import SafetyReason
from spatial_trace_ros.planning.safety.codes import SafetyCode, reason
from spatial_trace_ros.planning.safety_config import SafetyConfig


@dataclass(frozen=True)
class TraceFacts:
    """What the filter needs to know about the data a path came from. ``None`` = not known."""

    n_points: int
    depth_valid_fraction: float | None = None
    max_point_step_m: float | None = None
    frame_age_s: float | None = None
    trace_age_s: float | None = None
    model_agreement: float | None = None
    n_samples: int = 1


def check_inputs(config: SafetyConfig, facts: TraceFacts,
                 max_trace_age_s: float | None = None) -> list[SafetyReason]:
    """Freshness and quality of the trace. ``max_trace_age_s`` may only tighten the configured limit."""
    cfg, out = config, []
    q = cfg.trace_quality
    if facts.n_points < q.min_points:
        out.append(reason(SafetyCode.TRACE_TOO_SHORT,
                          f"the trace has {facts.n_points} valid point(s), at least {q.min_points} are needed; "
                          "ask again with a clearer instruction or check the depth image",
                          value=facts.n_points, limit=q.min_points))
    if facts.depth_valid_fraction is not None and facts.depth_valid_fraction < q.min_depth_valid_fraction:
        out.append(reason(SafetyCode.DEPTH_INVALID,
                          f"only {facts.depth_valid_fraction:.0%} of the trace points have valid depth "
                          f"(need {q.min_depth_valid_fraction:.0%}); check the depth camera (range, reflections) "
                          "and ask again", value=facts.depth_valid_fraction, limit=q.min_depth_valid_fraction))
    if (facts.model_agreement is not None and facts.n_samples > 1
            and facts.model_agreement < q.min_model_agreement):
        out.append(reason(SafetyCode.MODEL_DISAGREEMENT,
                          f"the {facts.n_samples} model samples agree only {facts.model_agreement:.0%} "
                          f"(need {q.min_model_agreement:.0%}); the model is unsure: rephrase the instruction",
                          value=facts.model_agreement, limit=q.min_model_agreement))
    fr = cfg.freshness
    if facts.frame_age_s is not None and facts.frame_age_s > fr.max_frame_age_s:
        out.append(reason(SafetyCode.FRAME_TOO_OLD,
                          f"the camera frame is {facts.frame_age_s:.1f} s old (limit {fr.max_frame_age_s:.1f} s); "
                          "the scene may have changed: ask again", value=facts.frame_age_s,
                          limit=fr.max_frame_age_s))
    age_limit = fr.max_trace_age_s if max_trace_age_s is None else min(fr.max_trace_age_s, max_trace_age_s)
    if facts.trace_age_s is not None and facts.trace_age_s > age_limit:
        out.append(reason(SafetyCode.TRACE_TOO_OLD,
                          f"the trace is {facts.trace_age_s:.1f} s old (limit {age_limit:.1f} s); ask again",
                          value=facts.trace_age_s, limit=age_limit))
    step = cfg.motion.max_trace_step_m
    if facts.max_point_step_m is not None and facts.max_point_step_m > step:
        out.append(reason(SafetyCode.TRACE_JUMP,
                          f"two consecutive trace points are {facts.max_point_step_m:.3f} m apart (limit "
                          f"{step:.3f} m), likely a depth outlier; check the depth image and ask again",
                          value=facts.max_point_step_m, limit=step))
    return out
