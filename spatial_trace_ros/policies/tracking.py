"""Following a plan cheaply every period: where the TCP is relative to the plan's path (progress,
tracking error) and the plan's pose or joints at any time.

Progress is measured along the path (arc length of the nearest point), not by the clock, so a policy
that runs slower or faster than the plan's timing (one moveL at a constant speed) still reports
honestly, and the tracking error is the distance to the path itself, not to where the plan's
timing says the TCP should be.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from spatial_trace_ros.planning.plan import Plan
from spatial_trace_ros.robots.driver import RobotState

# Joint speed below which the arm counts as settled at the end of a plan.
SETTLED_RADPS = 0.02


def settled(state: RobotState) -> bool:
    """The arm has (nearly) stopped; drivers that report no joint speeds count as settled."""
    return state.qd is None or float(np.max(np.abs(state.qd))) < SETTLED_RADPS


class PathTracker:
    """Nearest-point queries against a polyline of TCP positions (N x 3, base frame)."""

    def __init__(self, positions: np.ndarray) -> None:
        points = np.asarray(positions, float).reshape(-1, 3)
        self.start = points[:-1]
        self.delta = points[1:] - points[:-1]
        self.length2 = np.einsum("ij,ij->i", self.delta, self.delta)
        seg = np.sqrt(self.length2)
        self.cumulative = np.concatenate([[0.0], np.cumsum(seg)])
        self.total_m = float(self.cumulative[-1])
        self.end = points[-1]

    def locate(self, position: np.ndarray) -> tuple[float, float]:
        """(fraction of the path's length at the nearest point 0..1, distance to the path [m])."""
        p = np.asarray(position, float)
        if len(self.start) == 0 or self.total_m <= 0.0:
            return 1.0, float(np.linalg.norm(p - self.end))
        safe = np.where(self.length2 > 0, self.length2, 1.0)
        u = np.clip(np.einsum("ij,ij->i", p - self.start, self.delta) / safe, 0.0, 1.0)
        nearest = self.start + u[:, None] * self.delta
        dist = np.linalg.norm(nearest - p, axis=1)
        i = int(np.argmin(dist))
        along = self.cumulative[i] + u[i] * np.sqrt(self.length2[i])
        return float(along / self.total_m), float(dist[i])

    def distance_to_end(self, position: np.ndarray) -> float:
        return float(np.linalg.norm(np.asarray(position, float) - self.end))


def _rotation_from_rotvec(v: np.ndarray) -> np.ndarray:
    """Rodrigues' formula for one rotation vector (cheaper than building scipy objects per period)."""
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.eye(3)
    k = v / angle
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * kx + (1.0 - np.cos(angle)) * (kx @ kx)


class PlanSampler:
    """The plan's pose and joints at any time, as ``Plan.pose_at`` / ``joints_at`` (linear position and
    joints, slerp rotation between waypoints, held at the ends) but with the interpolation prepared
    once, so a policy can sample it every period of a 500 Hz loop."""

    def __init__(self, plan: Plan) -> None:
        self.times = np.asarray(plan.times_s, float)
        self.positions = np.asarray(plan.positions, float)
        self.joints = np.asarray(plan.joints, float)
        self.rotations = np.asarray(plan.poses, float)[:, :3, :3]
        relative = np.einsum("nji,njk->nik", self.rotations[:-1], self.rotations[1:])
        self.rotvecs = Rotation.from_matrix(relative).as_rotvec()
        self.duration_s = float(self.times[-1])

    def _locate(self, t_s: float) -> tuple[int, float]:
        t = min(max(t_s, 0.0), self.duration_s)
        i = int(np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, len(self.times) - 2))
        return i, (t - self.times[i]) / (self.times[i + 1] - self.times[i])

    def pose_at(self, t_s: float) -> np.ndarray:
        i, f = self._locate(t_s)
        out = np.eye(4)
        out[:3, 3] = self.positions[i] + f * (self.positions[i + 1] - self.positions[i])
        out[:3, :3] = self.rotations[i] @ _rotation_from_rotvec(f * self.rotvecs[i])
        return out

    def joints_at(self, t_s: float) -> np.ndarray:
        i, f = self._locate(t_s)
        return self.joints[i] + f * (self.joints[i + 1] - self.joints[i])
