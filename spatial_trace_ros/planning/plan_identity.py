"""A plan's identity and its freshness at execution time, the same on both sides of the wire.

The id is a digest of exactly what travels on ``/spatial_trace/plan`` (frame, joint names, the capture
stamp and every point's joints and time, in the integer nanoseconds the message holds), so the planner
and the controller compute it independently and any change to the plan changes the id. The operator
approves one id; the controller executes only the plan whose id it is.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spatial_trace_ros.planning.plan import Plan, ToolAction

PLAN_ID_HEX_CHARS = 16
GRIPPER_JOINT = "gripper_width"  # [m] the column that carries a task plan's tool actions
NS_PER_S = 1_000_000_000


def wire_ns(t_s: float) -> tuple[int, int]:
    """``t_s`` as (seconds, nanoseconds) the way builtin_interfaces Time/Duration carry it."""
    sec = int(np.floor(t_s))
    return sec, min(round((t_s - sec) * 1e9), NS_PER_S - 1)


def duration_ns(t_s: float) -> tuple[int, int]:
    """A time from the plan's start as (seconds, nanoseconds), as builtin_interfaces Duration carries it."""
    ns = round(t_s * 1e9)
    return ns // NS_PER_S, ns % NS_PER_S


def plan_id_of(
    frame_id: str, joint_names: Sequence[str], stamp: tuple[int, int], times: Sequence[tuple[int, int]],
    joints: np.ndarray,
) -> str:
    """The id of a plan as it travels: ``stamp`` and ``times`` in (sec, nanosec), joints (N, dof) float64."""
    digest = hashlib.sha256()
    digest.update(frame_id.encode() + b"\0" + "\0".join(joint_names).encode() + b"\0")
    digest.update(struct.pack("<qq", *stamp))
    for sec, nsec in times:
        digest.update(struct.pack("<qq", sec, nsec))
    digest.update(np.ascontiguousarray(joints, dtype="<f8").tobytes())
    return digest.hexdigest()[:PLAN_ID_HEX_CHARS]


def encode_actions(actions: tuple[ToolAction, ...], n_waypoints: int, start_width_m: float) -> np.ndarray:
    """The commanded finger width after each waypoint (N,): how tool actions travel in a JointTrajectory."""
    width = np.full(n_waypoints, start_width_m)
    for a in actions:
        width[a.waypoint:] = a.width_m
    return width


def wire_columns(plan: Plan) -> tuple[list[str], np.ndarray]:
    """The joint names and positions ``plan`` travels with: its joints, plus the ``GRIPPER_JOINT``
    column of a task plan's tool actions (so the id covers what the gripper will do, too)."""
    names, joints = list(plan.joint_names), np.asarray(plan.joints, float)
    if plan.tool_actions:
        first = plan.tool_actions[0]
        start = first.width_m if first.waypoint == 0 else 0.0
        names.append(GRIPPER_JOINT)
        joints = np.column_stack([joints, encode_actions(plan.tool_actions, len(plan), start)])
    return names, joints


def identify(plan: Plan) -> str:
    """The id ``plan`` will have on the wire (what the controller computes from the message)."""
    names, joints = wire_columns(plan)
    return plan_id_of(plan.frame_id, names, wire_ns(plan.stamp_s), [duration_ns(float(t)) for t in plan.times_s],
                      joints)


@dataclass(frozen=True)
class PlanFreshness:
    """When a plan may still run, all measured from its frame's capture stamp [s]."""

    plan_max_age_s: float
    max_clock_skew_s: float

    def refusal(self, capture_stamp_s: float, expires_s: float, now_s: float) -> str | None:
        """Why a plan captured at ``capture_stamp_s`` must not run at ``now_s`` (None: it may)."""
        if capture_stamp_s <= 0.0:
            return "the plan carries no capture stamp; plan again from a stamped camera frame"
        ahead = capture_stamp_s - now_s
        if ahead > self.max_clock_skew_s:
            return (f"clock skew: the plan's frame was captured {ahead:.2f} s in the future (tolerance "
                    f"{self.max_clock_skew_s:g} s, max_clock_skew_s); synchronise the camera and robot PCs' clocks "
                    "(chrony/PTP) and ask again")
        age = now_s - capture_stamp_s
        if age > self.plan_max_age_s:
            return (f"the plan expired: its frame was captured {age:.1f} s ago (plan_max_age_s "
                    f"{self.plan_max_age_s:g} s); the scene may have changed, ask again")
        if now_s > expires_s:
            return (f"the plan expired {now_s - expires_s:.1f} s ago (the planner's plan_max_age_s); "
                    "ask again")
        return None
