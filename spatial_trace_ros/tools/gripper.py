"""The ``Gripper`` contract: what the controller may ask of an end effector, and what it reports back.

Implementations sit beside this file (Robotiq over the UR's URCap socket or Modbus RTU, on/off grippers
on the UR's tool digital outputs, the G1's Dex3-1 hands over DDS, the MuJoCo gripper). Every command
blocks until the gripper has finished or ``timeout_s`` ran out, and returns the ``GripperState`` the
gripper reported at the end, so the caller knows what actually happened (closed on an object, closed on
nothing, stopped short, faulted) instead of what was asked.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from spatial_trace_ros.errors import RobotError
from spatial_trace_ros.registry import load_registered


class GripperError(RobotError):
    """The gripper did not answer, reported a fault, or did not do what was asked in time."""


@dataclass(frozen=True)
class GripperState:
    """One snapshot of the gripper. Widths are the opening between the fingers [m]."""

    stamp_s: float
    width_m: float
    object_detected: bool = False  # fingers stopped on something before reaching the target
    moving: bool = False
    activated: bool = True
    fault: str = ""  # non-empty when the gripper reports a fault, in words a person can act on

    @property
    def ok(self) -> bool:
        return self.activated and not self.fault


class Gripper(ABC):
    """One end effector. ``min_width_m``/``max_width_m`` bound every width command; ``endpoint`` says
    where it is reached (host:port, serial port, DDS topic) for messages a person acts on."""

    min_width_m: float
    max_width_m: float
    endpoint: str = ""
    senses_object: bool = True  # False: object_detected is always False (no sensor), a grasp cannot be verified
    speed_range_mps: tuple[float, float] = (0.0, 1.0)  # what move_to_width accepts
    force_range_n: tuple[float, float] = (0.0, 1000.0)

    @abstractmethod
    def connect(self) -> None:
        """Open the connection; raises ``GripperError`` saying why when the gripper cannot be reached."""

    @abstractmethod
    def disconnect(self) -> None:
        """Release the connection without moving the fingers; safe to call twice."""

    @abstractmethod
    def activate(self, timeout_s: float) -> GripperState:
        """Make the gripper take commands (Robotiq: activation cycle, which may move the fingers)."""

    @abstractmethod
    def move_to_width(self, width_m: float, speed_mps: float, force_n: float, timeout_s: float) -> GripperState:
        """Move the fingers to ``width_m`` (clamped to the limits by the caller's validation, never here
        silently: out-of-range values raise ``GripperError``) and wait until they stop."""

    @abstractmethod
    def read_state(self) -> GripperState: ...

    def open(self, speed_mps: float, force_n: float, timeout_s: float) -> GripperState:
        return self.move_to_width(self.max_width_m, speed_mps, force_n, timeout_s)

    def close(self, speed_mps: float, force_n: float, timeout_s: float) -> GripperState:
        return self.move_to_width(self.min_width_m, speed_mps, force_n, timeout_s)

    def hold(self) -> None:  # noqa: B027 - grippers that keep their last command need nothing
        """Keep the fingers as they are (stop and e-stop never open a gripper holding an object)."""

    def check_width(self, width_m: float) -> float:
        """``width_m`` if it lies within the limits, else ``GripperError`` naming the range."""
        return in_range("width [m]", width_m, self.min_width_m, self.max_width_m, self.endpoint)

    def check_speed_force(self, speed_mps: float, force_n: float) -> tuple[float, float]:
        """(speed, force) if both lie within the gripper's ranges, else ``GripperError`` naming the range."""
        return (in_range("speed [m/s]", speed_mps, *self.speed_range_mps, self.endpoint),
                in_range("force [N]", force_n, *self.force_range_n, self.endpoint))


def described(description: Any, name: str, default: Any) -> Any:
    """A gripper setting from the tool description (``description.gripper.<name>``, then
    ``description.<name>``), else ``default``; lets factories take the description or plain options."""
    for holder in (getattr(description, "gripper", None), description):
        value = getattr(holder, name, None) if holder is not None else None
        if value is not None:
            return value
    return default


def in_range(what: str, value: float, low: float, high: float, endpoint: str) -> float:
    """``value`` if within [low, high], else ``GripperError`` with the range and the fix."""
    if not (low - 1e-9 <= value <= high + 1e-9):
        raise GripperError(f"gripper {what} {value:g} is outside {low:g}..{high:g} ({endpoint}); "
                           f"ask for a {what} inside the gripper's range")
    return min(max(value, low), high)


# gripper kind -> "module:factory"; factory(tool_description, **options) -> Gripper.
# Implementations register here as they are written.
GRIPPERS: dict[str, str] = {
    "robotiq_urcap": "spatial_trace_ros.tools.robotiq_urcap:robotiq_urcap_gripper",
    "robotiq_modbus": "spatial_trace_ros.tools.robotiq_modbus:robotiq_modbus_gripper",
    "dex3": "spatial_trace_ros.tools.dex3:dex3_gripper",
    "ur_tool_io": "spatial_trace_ros.tools.ur_tool_io:ur_tool_io_gripper",
    "sim": "spatial_trace_ros.sim.gripper:SimGripper",
}


def gripper_factory(kind: str) -> Any:
    """The gripper class registered under ``kind``; unknown kinds are answered with the known ones."""
    return load_registered(GRIPPERS, kind, "gripper kind")
