"""The ``RobotDriver`` contract: what a control policy may ask of a robot, and what it reports back.

Drivers exist for UR arms (ur_rtde), the G1 arm (DDS rt/arm_sdk) and the MuJoCo simulation; the
controller's execution loop and every control policy run unchanged on each. A driver advertises the
command kinds it supports; a policy that needs one the driver lacks is refused before motion.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from spatial_trace_ros.errors import ConfigError, RobotError
from spatial_trace_ros.registry import load_registered

CommandKind = Literal["servo_pose", "servo_joints", "speed_tcp", "move_path"]


@dataclass(frozen=True)
class RobotState:
    """One snapshot of the robot. Poses are ``base_T_tool`` 4x4 in the robot model's base frame."""

    stamp_s: float
    q: np.ndarray
    tcp: np.ndarray
    connected: bool = True
    ready: bool = True  # powered, brakes released, program/remote control running
    protective_stop: bool = False
    emergency_stop: bool = False
    moving: bool = False  # an asynchronous move (move_path) is still running
    fault: str = ""  # non-empty when the robot reports any other fault
    qd: np.ndarray | None = None
    # The robot's own clock or counter (UR: RTDE timestamp [s]; G1: rt/lowstate tick [ms]); it must
    # advance while the robot talks. None: the driver has none (then staleness is not judged).
    robot_clock: float | None = None
    # Measured joints the model does not move, name -> (position [rad], velocity [rad/s]); e.g. the G1's
    # waist and other arm, so /joint_states carries the whole upper body for its TF.
    other_joints: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.connected and self.ready and not (self.protective_stop or self.emergency_stop or self.fault)

    def fault_reason(self) -> str:
        """A sentence saying why the robot cannot move, or '' when it can."""
        if not self.connected:
            return "lost connection to the robot controller"
        if self.emergency_stop:
            return "robot is in emergency stop; release the e-stop and re-enable the arm"
        if self.protective_stop:
            return "robot is in protective stop; clear it on the pendant (or dashboard) before retrying"
        if self.fault:
            return self.fault
        if not self.ready:
            return "robot is not ready (power on, release brakes, start remote control)"
        return ""


@dataclass(frozen=True)
class MovePathCommand:
    """A whole path in one asynchronous move (UR moveL with blends): poses N x 4 x 4."""

    poses: np.ndarray
    speed_mps: float
    accel_mps2: float
    blend_m: float


@dataclass
class DriverStats:
    periods: int = 0
    missed_periods: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class RobotDriver(ABC):
    """Connects to one robot and sends it setpoints at ``period_s``.

    Setpoint methods only send; the caller (the execution loop) has already checked every setpoint.
    ``stop`` must work from any state and bring the arm to rest with the robot's own deceleration.
    """

    period_s: float
    supports: frozenset[str]
    prepare_timeout_s: float = 0.0  # longest ``prepare_motion`` may block [s]; the controller waits this long
    recover_timeout_s: float = 1.0  # longest ``recover`` may block [s]

    @abstractmethod
    def connect(self) -> None: ...

    @abstractmethod
    def disconnect(self) -> None:
        """Stop motion if any and release the connection; safe to call twice."""

    @abstractmethod
    def read_state(self) -> RobotState: ...

    def servo_pose(self, pose: np.ndarray, lookahead_s: float, gain: float) -> None:
        raise ConfigError(f"{type(self).__name__} does not support servo_pose")

    def servo_joints(self, q: np.ndarray) -> None:
        raise ConfigError(f"{type(self).__name__} does not support servo_joints")

    def speed_tcp(self, twist: np.ndarray, accel_mps2: float) -> None:
        raise ConfigError(f"{type(self).__name__} does not support speed_tcp")

    def move_path(self, command: MovePathCommand) -> None:
        raise ConfigError(f"{type(self).__name__} does not support move_path")

    def freedrive(self, enabled: bool) -> None:
        """Hand-guiding on (the operator moves the arm by hand, e.g. to teach calibration poses) or off."""
        raise ConfigError(f"{type(self).__name__} has no freedrive; move the arm with the robot's own hand-guiding "
                          "(pendant) instead")

    @abstractmethod
    def stop(self) -> None:
        """Decelerate to rest now (stopL / servoStop / speedStop / hold)."""

    def start_period(self) -> float:
        """Mark the start of a control period; returns a token for ``wait_period``."""
        import time

        return time.perf_counter()

    def wait_period(self, token: float) -> None:
        """Sleep until ``period_s`` after ``token``."""
        import time

        remaining = self.period_s - (time.perf_counter() - token)
        if remaining > 0:
            time.sleep(remaining)

    def kick_watchdog(self) -> None:  # noqa: B027 - drivers without a robot-side watchdog need nothing
        """Tell the robot side this loop is alive (ur_rtde watchdog); a silent loop stops the arm."""

    def recover(self) -> str:
        """Clear a robot-side stop so that motion can resume without restarting anything (UR: unlock a
        protective stop, upload the control script again). Returns what was done; raises ``RobotError``
        saying why not."""
        raise RobotError(f"the {type(self).__name__} driver has no recovery; clear the fault on the robot and "
                         "restart the controller")

    def prepare_motion(self) -> None:  # noqa: B027 - most robots stay ready between runs
        """Called before each run: make the robot take setpoints again after the last run's ``stop``
        (G1: ``stop`` hands the arm back to the robot, this takes it over again). Blocks until ready;
        raises ``RobotError`` saying why when it cannot."""


# driver name -> "module:factory"; factory(model, **options) -> RobotDriver.
DRIVERS: dict[str, str] = {
    "ur_rtde": "spatial_trace_ros.robots.ur.driver:RtdeDriver",
    "g1_arm_sdk": "spatial_trace_ros.robots.g1.driver:G1ArmDriver",
    "sim": "spatial_trace_ros.sim.robot:SimRobotDriver",
}
# The driver a robot uses unless the ``driver`` parameter says otherwise (e.g. ``sim``).
DEFAULT_DRIVER: dict[str, str] = {
    "ur5": "ur_rtde",
    "ur5e": "ur_rtde",
    "g1_left_arm": "g1_arm_sdk",
    "g1_right_arm": "g1_arm_sdk",
}


def driver_factory(name: str) -> Any:
    """The driver class registered under ``name``; unknown names are answered with the known ones."""
    return load_registered(DRIVERS, name, "robot driver")
