"""``speed_track``: closed-loop TCP velocity commands (UR speedL) towards the plan.

Each period the commanded twist is the plan's own velocity at that time (feed-forward) plus a
proportional correction of the pose error (position and rotation vector, base frame) with gain
``track_gain_per_s``, capped at ``max_tcp_speed_mps`` and ``max_tool_angular_speed_radps``. The robot
ramps to each twist at ``max_tcp_accel_mps2``. Unlike servoing, a late or missing command does not
make the arm jump; unlike one moveL, the loop corrects drift as it goes. After the plan's last
waypoint it keeps correcting until the arm has settled within ``goal_tolerance_m`` of the end, or
``settle_s`` has passed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from spatial_trace_ros.planning.plan import Plan
from spatial_trace_ros.policies.base import ControlPolicy, PolicyStep, Setpoint
from spatial_trace_ros.policies.tracking import PathTracker, PlanSampler, settled
from spatial_trace_ros.robots.driver import RobotState
from spatial_trace_ros.robots.model import RobotModel

FEED_FORWARD_STEP_S = 0.01


def _rotation_error(target: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Rotation vector (base frame) turning ``actual`` into ``target``."""
    return Rotation.from_matrix(target[:3, :3] @ actual[:3, :3].T).as_rotvec()


def _cap(vector: np.ndarray, limit: float) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector * (limit / norm) if norm > limit else vector


class SpeedTrackPolicy(ControlPolicy):
    name = "speed_track"
    requires = frozenset({"speed_tcp"})

    def __init__(
        self, model: RobotModel, track_gain_per_s: float = 4.0, max_tcp_speed_mps: float = 0.25,
        max_tcp_accel_mps2: float = 0.5, max_tool_angular_speed_radps: float = 1.0, goal_tolerance_m: float = 0.01,
        settle_s: float = 1.0, **options: Any,
    ) -> None:
        super().__init__(model, **options)
        self.gain_per_s = track_gain_per_s
        self.max_speed_mps = max_tcp_speed_mps
        self.accel_mps2 = max_tcp_accel_mps2
        self.max_angular_radps = max_tool_angular_speed_radps
        self.goal_tolerance_m = goal_tolerance_m
        self.settle_s = settle_s
        self._plan: PlanSampler | None = None
        self._tracker: PathTracker | None = None

    def start(self, plan: Plan, state: RobotState) -> None:
        self._plan = PlanSampler(plan)
        self._tracker = PathTracker(plan.positions)

    def _feed_forward(self, plan: PlanSampler, t_s: float) -> np.ndarray:
        if t_s >= plan.duration_s:
            return np.zeros(6)
        h = FEED_FORWARD_STEP_S
        before, after = plan.pose_at(max(0.0, t_s - h)), plan.pose_at(min(plan.duration_s, t_s + h))
        span = min(plan.duration_s, t_s + h) - max(0.0, t_s - h)
        return np.concatenate([(after[:3, 3] - before[:3, 3]) / span, _rotation_error(after, before) / span])

    def step(self, t_s: float, state: RobotState) -> PolicyStep:
        plan, tracker = self._plan, self._tracker
        if plan is None or tracker is None:
            raise RuntimeError("SpeedTrackPolicy.step() before start()")
        target = plan.pose_at(t_s)
        twist = self._feed_forward(plan, t_s)
        twist[:3] += self.gain_per_s * (target[:3, 3] - state.tcp[:3, 3])
        twist[3:] += self.gain_per_s * _rotation_error(target, state.tcp)
        twist = np.concatenate([_cap(twist[:3], self.max_speed_mps), _cap(twist[3:], self.max_angular_radps)])
        at_end = tracker.distance_to_end(state.tcp[:3, 3]) <= self.goal_tolerance_m and settled(state)
        done = t_s >= plan.duration_s and (at_end or t_s >= plan.duration_s + self.settle_s)
        setpoint = Setpoint(kind="speed_tcp", twist=twist, accel_mps2=self.accel_mps2)
        return PolicyStep(setpoint, done=done, progress=min(1.0, t_s / plan.duration_s))
