"""Robotiq 2F-85 / 2F-140 adaptive grippers: one gripper model over two links.

The gripper's registers (Robotiq's 2F manual) are the same whether the UR controller's URCap relays
them as ASCII (``robotiq_urcap``) or the PC reads them over Modbus RTU (``robotiq_modbus``): requests
``ACT`` (activate), ``GTO`` (go to), ``POS`` (0 = open .. 255 = closed), ``SPE`` and ``FOR`` (0..255),
and status ``STA`` (3 = activated), ``OBJ`` (0 moving, 1 stopped on something while opening, 2 while
closing, 3 at the requested position), ``FLT`` (fault code), ``PRE`` (echo of the requested
position), ``POS`` (finger position). ``RobotiqGripper`` turns widths, speeds and forces into those
counts, waits for the fingers to stop, and reports what they did.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from spatial_trace_ros.tools.gripper import Gripper, GripperError, GripperState

STA_ACTIVATED = 3
OBJ_MOVING, OBJ_STOPPED_OPENING, OBJ_STOPPED_CLOSING, OBJ_AT_POSITION = 0, 1, 2, 3
POLL_PERIOD_S = 0.01
FAULT_ACTION_DELAYED = 0x05


@dataclass(frozen=True)
class RobotiqModel:
    """Stroke and the ranges the gripper maps SPE/FOR 0..255 onto (Robotiq's 2F specifications)."""

    name: str
    stroke_m: float
    min_speed_mps: float
    max_speed_mps: float
    min_force_n: float
    max_force_n: float


MODELS: dict[str, RobotiqModel] = {
    "2f85": RobotiqModel("2F-85", 0.085, 0.020, 0.150, 20.0, 235.0),
    "2f140": RobotiqModel("2F-140", 0.140, 0.030, 0.250, 10.0, 125.0),
}

# gFLT codes (Robotiq 2F manual), in words a person can act on.
FAULTS: dict[int, str] = {
    0x05: "action delayed: the activation must finish before this command",
    0x07: "the activation bit must be set before this command (activate the gripper)",
    0x08: "maximum operating temperature exceeded: let the gripper cool down",
    0x09: "no communication for at least 1 s: check the gripper cable and the URCap / serial link",
    0x0A: "under minimum operating voltage: check the gripper's 24 V supply",
    0x0B: "automatic release in progress",
    0x0C: "internal fault: power-cycle the gripper, then contact Robotiq support",
    0x0D: "activation fault: make sure nothing blocks the fingers, then activate again",
    0x0E: "overcurrent triggered: something blocks the fingers or the force is too high; reset and activate",
    0x0F: "automatic release completed: reset and activate the gripper",
}


def fault_text(code: int) -> str:
    """'' for no fault, else the code and what to do about it."""
    if code == 0:
        return ""
    return f"Robotiq fault 0x{code:02X}: {FAULTS.get(code, 'unknown fault code; see the Robotiq manual')}"


@dataclass(frozen=True)
class RobotiqStatus:
    """The gripper's status registers as read from one link."""

    act: int
    gto: int
    sta: int
    obj: int
    flt: int
    pre: int
    pos: int


class RobotiqLink(Protocol):
    """How the registers reach the gripper (URCap socket or Modbus RTU)."""

    endpoint: str

    def open(self) -> None: ...

    def close(self) -> None: ...

    def write(self, **requests: int) -> None:
        """Set request registers by name (ACT, GTO, ATR, POS, SPE, FOR); the gripper acts on them."""

    def read(self) -> RobotiqStatus: ...


class RobotiqGripper(Gripper):
    """A Robotiq 2F gripper over ``link``. ``open_count``/``closed_count`` are the position counts at
    full stroke and at zero width (0/255 nominally; a calibrated gripper may close at ~230)."""

    def __init__(self, link: RobotiqLink, model: str = "2f85", open_count: int = 0, closed_count: int = 255) -> None:
        key = model.lower().replace("robotiq", "").replace("-", "").replace("_", "")
        if key not in MODELS:
            raise GripperError(f"unknown Robotiq model {model!r}; available: {', '.join(MODELS)}")
        if not 0 <= open_count < closed_count <= 255:
            raise GripperError(f"Robotiq counts open {open_count} / closed {closed_count} must satisfy "
                               "0 <= open_count < closed_count <= 255")
        self.link = link
        self.model = MODELS[key]
        self.open_count, self.closed_count = open_count, closed_count
        self.min_width_m, self.max_width_m = 0.0, self.model.stroke_m
        self.speed_range_mps = (self.model.min_speed_mps, self.model.max_speed_mps)
        self.force_range_n = (self.model.min_force_n, self.model.max_force_n)
        self.endpoint = f"Robotiq {self.model.name} at {link.endpoint}"

    # -- unit mapping ------------------------------------------------------------------------------
    def width_to_count(self, width_m: float) -> int:
        span = self.closed_count - self.open_count
        return round(self.closed_count - span * width_m / self.model.stroke_m)

    def count_to_width(self, count: int) -> float:
        span = self.closed_count - self.open_count
        fraction = (self.closed_count - count) / span
        return min(max(fraction, 0.0), 1.0) * self.model.stroke_m

    @staticmethod
    def _scale(value: float, low: float, high: float) -> int:
        return round(255 * (value - low) / (high - low))

    # -- Gripper -----------------------------------------------------------------------------------
    def connect(self) -> None:
        self.link.open()

    def disconnect(self) -> None:
        self.link.close()

    def read_state(self) -> GripperState:
        return self._state(self.link.read())

    def _state(self, status: RobotiqStatus) -> GripperState:
        return GripperState(
            stamp_s=time.monotonic(),
            width_m=self.count_to_width(status.pos),
            object_detected=status.obj in (OBJ_STOPPED_OPENING, OBJ_STOPPED_CLOSING),
            moving=bool(status.gto) and status.obj == OBJ_MOVING,
            activated=status.sta == STA_ACTIVATED and bool(status.act),
            fault=fault_text(status.flt),
        )

    def activate(self, timeout_s: float) -> GripperState:
        """Reset (clears faults) and activate, unless already active and fault-free. The activation
        cycle opens and closes the fingers: never activate with an object in the hand."""
        status = self.link.read()
        if status.sta == STA_ACTIVATED and status.act and status.flt == 0:
            return self._state(status)
        self.link.write(ACT=0, GTO=0, ATR=0)
        self.link.write(ACT=1)
        return self._wait(lambda s: s.sta == STA_ACTIVATED, timeout_s, "finish activating")

    def move_to_width(self, width_m: float, speed_mps: float, force_n: float, timeout_s: float) -> GripperState:
        m = self.model
        width_m = self.check_width(width_m)
        speed_mps, force_n = self.check_speed_force(speed_mps, force_n)
        speed = self._scale(speed_mps, m.min_speed_mps, m.max_speed_mps)
        force = self._scale(force_n, m.min_force_n, m.max_force_n)
        count = self.width_to_count(width_m)
        status = self.link.read()
        if status.flt:
            raise GripperError(f"{self.endpoint}: {fault_text(status.flt)}")
        if status.sta != STA_ACTIVATED:
            raise GripperError(f"{self.endpoint} is not activated (STA {status.sta}); activate it first")
        self.link.write(POS=count, SPE=speed, FOR=force, GTO=1)
        return self._wait(lambda s: s.pre == count and s.obj != OBJ_MOVING, timeout_s,
                          f"stop at {width_m * 1000:.1f} mm or on an object")

    def _wait(self, done: Callable[[RobotiqStatus], bool], timeout_s: float, what: str) -> GripperState:
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.link.read()
            if status.flt and status.flt != FAULT_ACTION_DELAYED:  # 0x05 clears once activation ends
                raise GripperError(f"{self.endpoint}: {fault_text(status.flt)}")
            if done(status):
                return self._state(status)
            if time.monotonic() > deadline:
                raise GripperError(
                    f"{self.endpoint} did not {what} within {timeout_s:g} s (STA {status.sta}, OBJ {status.obj}, "
                    f"POS {status.pos}, PRE {status.pre}); check that nothing blocks it and that it is powered"
                )
            time.sleep(POLL_PERIOD_S)
