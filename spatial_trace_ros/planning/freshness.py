"""How old the data behind a plan is, measured from the camera frame's capture stamp, and whether the
clocks that stamped it can be trusted.

A stamp from the future means the camera PC's, the model host's and this PC's clocks disagree: ages
computed from it are wrong (too young), so such input is refused with CLOCK_SKEW instead of passing
every age check.
"""

from __future__ import annotations

from dataclasses import dataclass

from spatial_trace_ros.planning.plan import SafetyReason
from spatial_trace_ros.planning.safety import SafetyCode, reason


@dataclass(frozen=True)
class InputAges:
    """Ages at plan time [s]: of the frame (from its capture stamp) and of the trace (from when it was made)."""

    frame_age_s: float
    trace_age_s: float


def input_ages(capture_s: float, made_s: float | None, now_s: float) -> InputAges:
    """Ages of the frame and the trace; a trace without its own stamp is as old as its frame."""
    made = capture_s if made_s is None or made_s <= 0.0 else made_s
    return InputAges(now_s - capture_s, now_s - made)


def clock_skew_reasons(capture_s: float, made_s: float | None, now_s: float, max_skew_s: float) -> list[SafetyReason]:
    """CLOCK_SKEW when the frame or the trace is stamped more than ``max_skew_s`` ahead of ``now_s``, or the
    trace before the frame it was made from."""
    out: list[SafetyReason] = []
    fix = "synchronise the clocks of the camera, model and robot PCs (chrony/PTP) and ask again"
    if capture_s - now_s > max_skew_s:
        out.append(reason(SafetyCode.CLOCK_SKEW,
                          f"clock skew: the camera frame is stamped {capture_s - now_s:.2f} s in the future "
                          f"(tolerance {max_skew_s:g} s); {fix}", value=capture_s - now_s, limit=max_skew_s))
    if made_s is not None and made_s > 0.0:
        if made_s - now_s > max_skew_s:
            out.append(reason(SafetyCode.CLOCK_SKEW,
                              f"clock skew: the trace is stamped {made_s - now_s:.2f} s in the future (tolerance "
                              f"{max_skew_s:g} s); {fix}", value=made_s - now_s, limit=max_skew_s))
        elif capture_s - made_s > max_skew_s:
            out.append(reason(SafetyCode.CLOCK_SKEW,
                              f"clock skew: the trace is stamped {capture_s - made_s:.2f} s before the frame it was "
                              f"made from (tolerance {max_skew_s:g} s); {fix}", value=capture_s - made_s,
                              limit=max_skew_s))
    return out
