"""What the planner hands the controller: a timed path in joints and TCP poses, and the safety verdict.

``Plan`` is the one contract between planning and control. It travels over ROS as a
trajectory_msgs/JointTrajectory (see ``spatial_trace_ros.ros.plan_msgs``); the controller rebuilds the
TCP poses with the same robot model's FK, so both sides agree on every waypoint. A plan has an identity
(``plan_id``, a digest of what travels: ``planning.plan_identity``), the capture stamp of the camera frame
it came from (``stamp_s``) and an expiry (``expires_s``), so that what runs is what the operator approved,
and only while the scene it was planned in is recent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property

import numpy as np
from scipy.spatial.transform import Rotation, Slerp


class Verdict(str, Enum):
    """ACCEPT: safe as planned. ADJUSTED: made safer (slower, clipped) and safe. REJECT: must not run."""

    ACCEPT = "ACCEPT"
    ADJUSTED = "ADJUSTED"
    REJECT = "REJECT"


@dataclass(frozen=True)
class SafetyReason:
    """One finding of a safety check: a stable machine code and a sentence a person can act on."""

    code: str
    message: str
    waypoint: int | None = None
    value: float | None = None
    limit: float | None = None


@dataclass(frozen=True)
class SafetyReport:
    verdict: Verdict
    reasons: tuple[SafetyReason, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.verdict is not Verdict.REJECT

    def summary(self) -> str:
        if not self.reasons:
            return self.verdict.value
        return f"{self.verdict.value}: " + "; ".join(r.message for r in self.reasons)


@dataclass(frozen=True)
class ToolAction:
    """A tool action the controller runs when the arm has come to rest at ``waypoint``: ``open`` (to
    ``width_m``), ``close`` (on nothing: pushing), ``grasp`` (close and verify that an object no wider
    than ``width_m`` is held) or ``release`` (open and let go). See ``planning.task``."""

    waypoint: int
    action: str
    width_m: float


@dataclass(frozen=True, eq=False)
class Plan:
    """N timed waypoints: ``times_s`` from 0 (increasing), ``joints`` N x dof, ``poses`` N x 4 x 4
    ``base_T_tool`` in ``frame_id`` (the robot model's base frame). ``stamp_s`` is the capture stamp of
    the frame the plan came from; after ``expires_s`` (wall clock) it must not start."""

    robot: str
    frame_id: str
    joint_names: tuple[str, ...]
    times_s: np.ndarray
    joints: np.ndarray
    poses: np.ndarray
    plan_id: str = ""
    stamp_s: float = 0.0
    expires_s: float = math.inf
    report: SafetyReport = field(default_factory=lambda: SafetyReport(Verdict.ACCEPT))
    tool_actions: tuple[ToolAction, ...] = ()  # in waypoint order; empty: a bare path, no tool
    task: str = ""  # the task kind the actions follow from (planning.task), '' without a tool

    def __post_init__(self) -> None:
        t = np.asarray(self.times_s, float)
        q = np.asarray(self.joints, float)
        poses = np.asarray(self.poses, float)
        n = len(t)
        if n < 2 or q.shape != (n, len(self.joint_names)) or poses.shape != (n, 4, 4):
            raise ValueError(
                f"plan needs >= 2 waypoints with matching shapes; got times {t.shape}, joints {q.shape}, "
                f"poses {poses.shape} for {len(self.joint_names)} joints"
            )
        if t[0] != 0.0 or np.any(np.diff(t) <= 0):
            raise ValueError("plan times must start at 0 and strictly increase")
        object.__setattr__(self, "times_s", t)
        object.__setattr__(self, "joints", q)
        object.__setattr__(self, "poses", poses)

    def __len__(self) -> int:
        return len(self.times_s)

    @property
    def duration_s(self) -> float:
        return float(self.times_s[-1])

    @property
    def positions(self) -> np.ndarray:
        return self.poses[:, :3, 3]

    def joints_at(self, t_s: float) -> np.ndarray:
        """Joint positions at time ``t_s`` (linear between waypoints, held at the ends)."""
        t = float(np.clip(t_s, 0.0, self.duration_s))
        return np.array([np.interp(t, self.times_s, self.joints[:, j]) for j in range(self.joints.shape[1])])

    def pose_at(self, t_s: float) -> np.ndarray:
        """TCP pose at ``t_s``: linear in position, slerp in rotation, held at the ends."""
        t = float(np.clip(t_s, 0.0, self.duration_s))
        out = np.eye(4)
        out[:3, 3] = [np.interp(t, self.times_s, self.positions[:, k]) for k in range(3)]
        out[:3, :3] = self._slerp([t]).as_matrix()[0]
        return out

    @cached_property
    def _slerp(self) -> Slerp:
        return Slerp(self.times_s, Rotation.from_matrix(self.poses[:, :3, :3]))
