"""``movel_path``: the whole plan as one asynchronous moveL path with blends.

The robot's own trajectory generator does the timing: the path runs at the plan's mean TCP speed
(capped by ``max_tcp_speed_mps``) with blend radius ``blend_m`` between waypoints. The policy only
sends the path once and then watches progress; it is the least demanding on the control loop and
the network, at the price of not following the plan's timing exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spatial_trace_ros.planning.plan import Plan
from spatial_trace_ros.policies.base import ControlPolicy, PolicyStep, Setpoint
from spatial_trace_ros.policies.tracking import PathTracker
from spatial_trace_ros.robots.driver import MovePathCommand, RobotState
from spatial_trace_ros.robots.model import RobotModel

MIN_SPEED_MPS = 0.005
SAME_POINT_M = 1e-3
# Blends may not overlap: at most this fraction of the shortest segment.
MAX_BLEND_FRACTION = 0.4
# Time the robot gets to report the move as running before "not moving" means "finished".
START_GRACE_S = 0.1


class MoveLPathPolicy(ControlPolicy):
    name = "movel_path"
    requires = frozenset({"move_path"})

    def __init__(
        self, model: RobotModel, blend_m: float = 0.005, max_tcp_speed_mps: float = 0.25,
        max_tcp_accel_mps2: float = 0.5, **options: Any,
    ) -> None:
        super().__init__(model, **options)
        self.blend_m = blend_m
        self.max_speed_mps = max_tcp_speed_mps
        self.accel_mps2 = max_tcp_accel_mps2
        self.command: MovePathCommand | None = None
        self._tracker: PathTracker | None = None
        self._sent_at_s: float | None = None

    def start(self, plan: Plan, state: RobotState) -> None:
        poses = plan.poses
        if np.linalg.norm(poses[0, :3, 3] - state.tcp[:3, 3]) < SAME_POINT_M and len(poses) > 1:
            poses = poses[1:]  # the robot is already at the first waypoint
        steps = np.linalg.norm(np.diff(plan.positions, axis=0), axis=1)
        length = float(steps.sum())
        speed = float(np.clip(length / plan.duration_s, MIN_SPEED_MPS, self.max_speed_mps))
        shortest = float(steps[steps > 0].min()) if np.any(steps > 0) else 0.0
        blend = min(self.blend_m, MAX_BLEND_FRACTION * shortest)
        self.command = MovePathCommand(poses=poses, speed_mps=speed, accel_mps2=self.accel_mps2, blend_m=blend)
        self._tracker = PathTracker(plan.positions)
        self._sent_at_s = None

    def step(self, t_s: float, state: RobotState) -> PolicyStep:
        if self.command is None or self._tracker is None:
            raise RuntimeError("MoveLPathPolicy.step() before start()")
        if self._sent_at_s is None:
            self._sent_at_s = t_s
            return PolicyStep(Setpoint(kind="move_path", path=self.command), progress=0.0)
        progress, _ = self._tracker.locate(state.tcp[:3, 3])
        finished = not state.moving and t_s - self._sent_at_s >= START_GRACE_S
        return PolicyStep(None, done=finished, progress=progress)
