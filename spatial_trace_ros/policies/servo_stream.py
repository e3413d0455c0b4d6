"""``servo_stream``: one servo setpoint per control period, interpolated from the plan's timed waypoints.

On arms that take Cartesian servo targets (UR servoL) it streams TCP poses (linear in position,
slerp in rotation); on drivers that only servo joints (the G1 arm, the simulation, or a UR driver
restricted to servoJ) it streams the plan's joint positions instead, interpolated the same way.
``lookahead_s`` and ``gain`` go to the robot's servo (UR: lookahead 0.03-0.2 s, gain 100-2000;
defaults 0.1 s and 300). After the last waypoint the final target is held until the arm has settled
within ``goal_tolerance_m`` of the end, or ``settle_s`` has passed.
"""

from __future__ import annotations

from typing import Any

from spatial_trace_ros.planning.plan import Plan
from spatial_trace_ros.policies.base import ControlPolicy, PolicyStep, Setpoint
from spatial_trace_ros.policies.tracking import PathTracker, PlanSampler, settled
from spatial_trace_ros.robots.driver import RobotState
from spatial_trace_ros.robots.model import RobotModel


class ServoStreamPolicy(ControlPolicy):
    name = "servo_stream"
    requires = frozenset({"servo_pose"})

    def __init__(
        self, model: RobotModel, lookahead_s: float = 0.1, gain: float = 300.0,
        driver_supports: frozenset[str] | set[str] = frozenset({"servo_pose"}), goal_tolerance_m: float = 0.01,
        settle_s: float = 1.0, **options: Any,
    ) -> None:
        super().__init__(model, **options)
        self.lookahead_s = lookahead_s
        self.gain = gain
        self.goal_tolerance_m = goal_tolerance_m
        self.settle_s = settle_s
        # Cartesian servo where the driver has it, joint servo on joint-only drivers.
        joints_only = "servo_joints" in driver_supports and "servo_pose" not in driver_supports
        self.kind = "servo_joints" if joints_only else "servo_pose"
        self.requires = frozenset({self.kind})
        self._plan: PlanSampler | None = None
        self._tracker: PathTracker | None = None

    def start(self, plan: Plan, state: RobotState) -> None:
        self._plan = PlanSampler(plan)
        self._tracker = PathTracker(plan.positions)

    def step(self, t_s: float, state: RobotState) -> PolicyStep:
        plan, tracker = self._plan, self._tracker
        if plan is None or tracker is None:
            raise RuntimeError("ServoStreamPolicy.step() before start()")
        if self.kind == "servo_pose":
            setpoint = Setpoint(kind="servo_pose", pose=plan.pose_at(t_s), lookahead_s=self.lookahead_s, gain=self.gain)
        else:
            setpoint = Setpoint(kind="servo_joints", q=plan.joints_at(t_s), lookahead_s=self.lookahead_s,
                                gain=self.gain)
        at_end = tracker.distance_to_end(state.tcp[:3, 3]) <= self.goal_tolerance_m and settled(state)
        done = t_s >= plan.duration_s and (at_end or t_s >= plan.duration_s + self.settle_s)
        return PolicyStep(setpoint, done=done, progress=min(1.0, t_s / plan.duration_s))
