"""Reason codes, their severity and the wording helpers every safety check shares.

Each finding is a ``SafetyReason`` with a stable code from ``SafetyCode`` (one per kind of check; at
most one reason per code, naming the first offending waypoint and how many there are).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

import numpy as np

from spatial_trace_ros.planning.plan import SafetyReason, SafetyReport, Verdict
from spatial_trace_ros.planning.safety_config import BoxZone, CylinderZone

# Relative slack for floating-point round-off when comparing a computed value with its limit.
ROUNDOFF = 1e-9


class SafetyCode(str, Enum):
    """Machine-readable reason codes. ``severity`` says what each does to the verdict."""

    # data the plan came from
    INVALID_INPUT = "INVALID_INPUT"
    TRACE_TOO_SHORT = "TRACE_TOO_SHORT"
    DEPTH_INVALID = "DEPTH_INVALID"
    MODEL_DISAGREEMENT = "MODEL_DISAGREEMENT"
    FRAME_TOO_OLD = "FRAME_TOO_OLD"
    TRACE_TOO_OLD = "TRACE_TOO_OLD"
    CLOCK_SKEW = "CLOCK_SKEW"
    TRACE_JUMP = "TRACE_JUMP"
    WRONG_FRAME = "WRONG_FRAME"
    NO_TCP_POSE = "NO_TCP_POSE"
    # where the robot would go
    OUTSIDE_WORKSPACE = "OUTSIDE_WORKSPACE"
    KEEP_OUT_ZONE = "KEEP_OUT_ZONE"
    BELOW_TABLE = "BELOW_TABLE"
    LINK_BELOW_TABLE = "LINK_BELOW_TABLE"
    UNREACHABLE = "UNREACHABLE"
    JOINT_LIMIT = "JOINT_LIMIT"
    JOINT_JUMP = "JOINT_JUMP"
    STEP_TOO_LARGE = "STEP_TOO_LARGE"
    SINGULARITY = "SINGULARITY"
    SELF_COLLISION = "SELF_COLLISION"
    TOOL_COLLISION = "TOOL_COLLISION"  # the tool's geometry (planning.tool_geometry)
    HELD_OBJECT_COLLISION = "HELD_OBJECT_COLLISION"  # the envelope of a held object
    # how fast it would go
    TCP_SPEED = "TCP_SPEED"
    TCP_ACCEL = "TCP_ACCEL"
    TOOL_ANGULAR_SPEED = "TOOL_ANGULAR_SPEED"
    JOINT_SPEED = "JOINT_SPEED"
    # run-time problems
    NON_FINITE = "NON_FINITE"
    BAD_TIMING = "BAD_TIMING"
    TRACKING_ERROR = "TRACKING_ERROR"
    # adjustments (motion made safer)
    SPEED_LIMITED = "SPEED_LIMITED"
    ACCEL_LIMITED = "ACCEL_LIMITED"
    SINGULARITY_SLOWED = "SINGULARITY_SLOWED"
    CLIPPED_TO_WORKSPACE = "CLIPPED_TO_WORKSPACE"
    # information only
    NO_JOINT_STATE = "NO_JOINT_STATE"

    @property
    def severity(self) -> str:
        if self in _ADJUST_CODES:
            return "adjust"
        if self in _INFO_CODES:
            return "info"
        return "reject"


_ADJUST_CODES = frozenset(
    {SafetyCode.SPEED_LIMITED, SafetyCode.ACCEL_LIMITED, SafetyCode.SINGULARITY_SLOWED, SafetyCode.CLIPPED_TO_WORKSPACE}
)
_INFO_CODES = frozenset({SafetyCode.NO_JOINT_STATE})


def reason(
    code: SafetyCode, message: str, waypoint: int | None = None, value: float | None = None,
    limit: float | None = None,
) -> SafetyReason:
    return SafetyReason(
        code.value, message, None if waypoint is None else int(waypoint),
        None if value is None else float(value), None if limit is None else float(limit),
    )


def verdict_of(reasons: Sequence[SafetyReason]) -> Verdict:
    """REJECT if any reason rejects, ADJUSTED if any adjusts, else ACCEPT (info reasons are neutral)."""
    severities = {SafetyCode(r.code).severity for r in reasons}
    if "reject" in severities:
        return Verdict.REJECT
    if "adjust" in severities:
        return Verdict.ADJUSTED
    return Verdict.ACCEPT


def refusals(reasons: Sequence[SafetyReason]) -> list[SafetyReason]:
    return [r for r in reasons if SafetyCode(r.code).severity == "reject"]


def ordered_report(reasons: Sequence[SafetyReason]) -> SafetyReport:
    """Refusals first, then adjustments, then information."""
    rank = {"reject": 0, "adjust": 1, "info": 2}
    ordered = sorted(reasons, key=lambda r: rank[SafetyCode(r.code).severity])
    return SafetyReport(verdict_of(ordered), tuple(ordered))


def xyz(p: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in p) + ") m"


def count(mask: np.ndarray, noun: str = "waypoint") -> str:
    n = int(np.count_nonzero(mask))
    return f"{n} {noun}{'s' if n != 1 else ''}"


def zone_label(zone: BoxZone | CylinderZone) -> str:
    return f"keep-out {zone.shape} {zone.name!r}"
