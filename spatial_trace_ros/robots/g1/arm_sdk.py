"""What to send on ``rt/arm_sdk`` each period: the hand-over ramps, capped tracking, hold and release.

The robot blends our joint command with its own controller's by the weight in ``motor_cmd[29].q``.
Taking over: the command is frozen at the pose measured at that moment while the weight ramps 0 -> 1,
so nothing moves. Engaged: the commanded arm joints move towards the target at no more than
``max_velocity_radps`` of real time (a late period moves further, making up for at most 50 ms or two
periods, so a hiccup builds up no lag and a long stall causes no jump); the waist and the other arm
stay where they were. Releasing (stop, e-stop, fault): the command holds where it is while the
weight ramps 1 -> 0. Every period the weight changes by at most ``dt / weight_ramp_s`` and each
joint command by at most ``max_velocity_radps * max(2 dt, 50 ms)``: there is no jump. The final
weight 0 goes out ``ZERO_WEIGHT_REPEATS`` times, so one lost datagram cannot leave the robot at a
small weight of ours. Plain Python; the driver owns the I/O and the lock.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from spatial_trace_ros.errors import RobotError, SafetyError
from spatial_trace_ros.robots.g1.config import G1ArmConfig
from spatial_trace_ros.robots.g1.motors import ARM_SDK_JOINTS

ZERO_WEIGHT_REPEATS = 3
# A late period may make up for this much lost time at most (or two periods, if longer).
MAX_CATCH_UP_S = 0.05


class Phase(str, Enum):
    RELEASED = "released"  # weight 0, nothing sent
    ENGAGING = "engaging"  # weight ramping up, command frozen at the take-over pose
    ENGAGED = "engaged"  # weight 1, following the target
    RELEASING = "releasing"  # weight ramping down, command held


class ArmSdkCommander:
    """Per-period arm_sdk commands for one arm, the waist and the other arm held."""

    def __init__(self, arm_joints: tuple[str, ...], config: G1ArmConfig) -> None:
        unknown = [n for n in arm_joints if n not in ARM_SDK_JOINTS]
        if unknown:
            raise ValueError(f"{unknown} are not arm_sdk joints")
        self.joint_names = ARM_SDK_JOINTS
        self.arm_index = np.array([ARM_SDK_JOINTS.index(n) for n in arm_joints])
        self.lower_rad = np.array([config.joint_limits_rad[n][0] for n in ARM_SDK_JOINTS])
        self.upper_rad = np.array([config.joint_limits_rad[n][1] for n in ARM_SDK_JOINTS])
        self.tolerance_rad = config.limit_tolerance_rad
        self.period_s = 1.0 / config.rate_hz
        self.weight_step = self.period_s / config.weight_ramp_s
        self.max_velocity_radps = config.max_velocity_radps
        self.max_catch_up_s = max(2.0 * self.period_s, MAX_CATCH_UP_S)
        self.phase = Phase.RELEASED
        self.weight = 0.0
        self.q_cmd: np.ndarray | None = None  # all arm_sdk joints, ARM_SDK_JOINTS order
        self.target: np.ndarray | None = None  # the driven arm's joints
        self.release_reason = ""
        self._zeros_sent = 0

    @property
    def active(self) -> bool:
        """Commands are being sent (taking over, engaged or releasing)."""
        return self.phase is not Phase.RELEASED

    def limit_violation(self, q_measured: np.ndarray) -> str:
        """A sentence naming the first arm_sdk joint measured outside its limits, or ''."""
        q = np.asarray(q_measured, dtype=float)
        below = q < self.lower_rad - self.tolerance_rad
        above = q > self.upper_rad + self.tolerance_rad
        for k in np.flatnonzero(below | above):
            return (
                f"{self.joint_names[k]} is at {q[k]:.3f} rad, outside its limits "
                f"[{self.lower_rad[k]:.3f}, {self.upper_rad[k]:.3f}] rad"
            )
        return ""

    def engage(self, q_measured: np.ndarray) -> None:
        """Start taking over at the measured pose of every arm_sdk joint."""
        if self.phase is not Phase.RELEASED:
            raise RobotError(f"cannot take over the G1 arms while {self.phase.value}; wait for the release to finish")
        q = np.asarray(q_measured, dtype=float)
        if q.shape != (len(ARM_SDK_JOINTS),) or not np.all(np.isfinite(q)):
            raise RobotError(f"rt/lowstate gave no finite positions of the {len(ARM_SDK_JOINTS)} arm_sdk joints")
        violation = self.limit_violation(q)
        if violation:
            raise RobotError(f"not taking over the G1 arms: {violation}; move it back inside first")
        self.q_cmd = q.copy()
        self.target = q[self.arm_index].copy()
        self.weight = 0.0
        self.release_reason = ""
        self.phase = Phase.ENGAGING

    def set_target(self, q_arm: np.ndarray) -> None:
        """The arm joint positions to move towards (velocity-capped); refused outside the limits."""
        if self.phase is not Phase.ENGAGED:
            raise RobotError(
                f"the G1 arm is {self.phase.value}, not taking commands"
                + (f" ({self.release_reason})" if self.release_reason else "")
                + "; call prepare_motion to take it over again"
            )
        q = np.asarray(q_arm, dtype=float)
        if q.shape != self.arm_index.shape or not np.all(np.isfinite(q)):
            raise SafetyError(f"a G1 arm setpoint needs {len(self.arm_index)} finite joint positions, got {q.tolist()}")
        lower, upper = self.lower_rad[self.arm_index], self.upper_rad[self.arm_index]
        outside = np.flatnonzero((q < lower) | (q > upper))
        if len(outside):
            k = int(outside[0])
            name = self.joint_names[self.arm_index[k]]
            raise SafetyError(
                f"setpoint for {name} ({q[k]:.3f} rad) is outside its limits [{lower[k]:.3f}, {upper[k]:.3f}] rad; "
                "nothing was sent"
            )
        self.target = q.copy()

    def release(self, reason: str = "") -> None:
        """Hold the current command and ramp the weight down; the first reason given is kept."""
        if self.phase in (Phase.ENGAGING, Phase.ENGAGED):
            self.phase = Phase.RELEASING
            self.target = None
            self._zeros_sent = 0
        if reason and not self.release_reason:
            self.release_reason = reason

    def step(self, elapsed_s: float | None = None) -> tuple[np.ndarray, float] | None:
        """This period's (joint command in ARM_SDK_JOINTS order, weight), or None when nothing is to be sent.

        ``elapsed_s`` is the time since the previous step (default: one period); it sets how far the
        joints may move (at most ``max_catch_up_s`` worth).
        """
        if self.phase is Phase.RELEASED or self.q_cmd is None:
            return None
        if self.phase is Phase.ENGAGING:
            self.weight = min(1.0, self.weight + self.weight_step)
            if self.weight >= 1.0:
                self.phase = Phase.ENGAGED
        elif self.phase is Phase.ENGAGED and self.target is not None:
            dt = self.period_s if elapsed_s is None else min(max(elapsed_s, 0.0), self.max_catch_up_s)
            max_step = self.max_velocity_radps * dt
            delta = self.target - self.q_cmd[self.arm_index]
            self.q_cmd[self.arm_index] += np.clip(delta, -max_step, max_step)
        elif self.phase is Phase.RELEASING:
            self.weight = max(0.0, self.weight - self.weight_step)
            if self.weight <= 0.0:
                self._zeros_sent += 1
                if self._zeros_sent >= ZERO_WEIGHT_REPEATS:
                    self.phase = Phase.RELEASED  # this last command carries weight 0
        return self.q_cmd.copy(), self.weight
