"""Gripper kind ``dex3``: one of the G1's Dex3-1 hands over DDS, used as a width-like gripper.

A Dex3-1 hand has 7 motors (thumb 0-2, middle 0-1, index 0-1) commanded with ``HandCmd_`` on
``rt/dex3/<side>/cmd`` and reporting ``HandState_`` on ``rt/dex3/<side>/state``. A grip "width" is a
point on the line from a closed power-grasp pose (width 0) to the open flat hand (``max_width_m``):
each width is sent as the 7 joint targets on that line. Speed sets how fast the targets ramp along
the line, force the joints' stiffness (kp). The hand grips an object when its fingers stall short of
the target: the position error along the closing direction exceeds ``stall_rad`` once they stop.

A background thread repeats the current targets at ``rate_hz`` once the first command was given, so
the hand keeps its grip; ``hold`` freezes the targets where they are (stop never opens the hand).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from spatial_trace_ros.tools.gripper import Gripper, GripperError, GripperState, described

JOINTS = ("thumb_0", "thumb_1", "thumb_2", "middle_0", "middle_1", "index_0", "index_1")
# Poses inside unitree_sdk2's Dex3 joint limits (left: thumb_1 -0.724..1.05, thumb_2 0..1.75, middle and
# index -1.57/-1.75..0; the right hand mirrors them). Open: flat hand; closed: a power grasp.
OPEN_POSE = {"left": np.zeros(7), "right": np.zeros(7)}
CLOSED_POSE = {"left": np.array([0.0, 0.6, 1.2, -1.2, -1.4, -1.2, -1.4])}
CLOSED_POSE["right"] = -CLOSED_POSE["left"]
MODE_STATUS_ENABLED = 0x01  # RIS mode byte: id (bits 0-3), status (bits 4-6), timeout (bit 7)
SETTLE_DQ_RADPS = 0.05
SETTLE_S = 0.1


def mode_byte(motor: int, timeout: bool = False) -> int:
    return (motor & 0x0F) | (MODE_STATUS_ENABLED & 0x07) << 4 | (int(timeout) & 1) << 7


class Dex3Hand(Gripper):
    """One Dex3-1 hand (``side`` left or right) on DDS domain ``domain_id`` via ``network_interface``."""

    def __init__(self, side: str = "left", domain_id: int = 0, network_interface: str = "", max_width_m: float = 0.10,
                 max_speed_mps: float = 0.20, max_force_n: float = 10.0, kp_max: float = 1.5, kd: float = 0.1,
                 stall_rad: float = 0.1, rate_hz: float = 100.0, state_timeout_s: float = 0.5,
                 connect_timeout_s: float = 5.0, state_topic: str | None = None) -> None:
        if side not in OPEN_POSE:
            raise GripperError(f"unknown Dex3 hand side {side!r}; available: left, right")
        from spatial_trace_ros.robots.g1.idl import dex3_topics

        self.side, self.domain_id, self.network_interface = side, domain_id, network_interface
        self.command_topic, default_state = dex3_topics(side)
        self.state_topic = state_topic or default_state
        self.min_width_m, self.max_width_m = 0.0, max_width_m
        self.max_speed_mps, self.max_force_n, self.kp_max, self.kd = max_speed_mps, max_force_n, kp_max, kd
        self.speed_range_mps, self.force_range_n = (1e-3, max_speed_mps), (0.0, max_force_n)
        self.stall_rad, self.period_s = stall_rad, 1.0 / rate_hz
        self.state_timeout_s, self.connect_timeout_s = state_timeout_s, connect_timeout_s
        self.open_q, self.closed_q = OPEN_POSE[side], CLOSED_POSE[side]
        self._line = self.open_q - self.closed_q  # closed -> open
        self.endpoint = (f"Dex3 {side} hand ({self.command_topic}, {self.state_topic}; DDS domain {domain_id}, "
                         f"interface {network_interface or '(default)'})")
        self._lock = threading.Lock()
        self._latest: Any = None
        self._latest_s = 0.0
        self._goal = self._commanded = None  # width fractions; None until the first command
        self._rate = 0.0  # fraction per second
        self._kp = 0.0
        self._halt = threading.Event()
        self._threads: list[threading.Thread] = []
        self._writer: Any = None

    # -- connection --------------------------------------------------------------------------------
    def _check(self) -> str:
        return ("check that the G1 is on, that network_interface is the PC's port on the robot's network and "
                "domain_id the robot's, and that the hand service is running")

    def connect(self) -> None:
        if self._writer is not None:
            return
        try:
            from cyclonedds.pub import DataWriter
            from cyclonedds.sub import DataReader
            from cyclonedds.topic import Topic

            from spatial_trace_ros.robots.g1 import idl
        except ImportError as err:
            raise GripperError(f"the dex3 gripper needs cyclonedds 0.10.2 ({err}); pip install '.[g1]'") from None
        try:
            participant = idl.join_domain(self.domain_id, self.network_interface)
            self._writer = DataWriter(participant, Topic(participant, self.command_topic, idl.HandCmd_))
            reader = DataReader(participant, Topic(participant, self.state_topic, idl.HandState_))
        except Exception as err:  # Cyclone raises its own DDSException; a bad interface raises ConfigError
            self._writer = None
            raise GripperError(f"could not join DDS for the {self.endpoint}: {err}") from None
        self._message = idl.HandCmd_()
        self._halt.clear()
        self._threads = [threading.Thread(target=self._read_loop, args=(reader, idl.HandState_), daemon=True,
                                          name=f"dex3_{self.side}_state"),
                         threading.Thread(target=self._command_loop, daemon=True, name=f"dex3_{self.side}_cmd")]
        for thread in self._threads:
            thread.start()
        deadline = time.monotonic() + self.connect_timeout_s
        while self._latest is None:
            if time.monotonic() > deadline:
                self.disconnect()
                raise GripperError(f"no HandState_ from the {self.endpoint} within {self.connect_timeout_s:g} s; "
                                   f"{self._check()}")
            time.sleep(0.005)

    def disconnect(self) -> None:
        """Stop sending: the hand keeps the last targets it got (nothing is sent to open it)."""
        self._halt.set()
        for thread in self._threads:
            thread.join(timeout=1.0)
        self._threads = []
        self._writer = None
        self._latest = None
        self._goal = self._commanded = None

    def _read_loop(self, reader: Any, state_type: type) -> None:
        while not self._halt.is_set():
            samples = [s for s in reader.take(N=8) if isinstance(s, state_type)]
            if samples:
                with self._lock:
                    self._latest, self._latest_s = samples[-1], time.monotonic()
            self._halt.wait(0.002)

    def _command_loop(self) -> None:
        next_s = time.monotonic()
        while not self._halt.is_set():
            with self._lock:
                goal, commanded = self._goal, self._commanded
                if goal is not None and commanded is not None:
                    step = self._rate * self.period_s
                    commanded = goal if abs(goal - commanded) <= step else commanded + np.sign(goal - commanded) * step
                    self._commanded = commanded
                kp = self._kp
            if commanded is not None:
                self._send(self.closed_q + commanded * self._line, kp)
            next_s += self.period_s
            self._halt.wait(max(0.0, next_s - time.monotonic()))

    def _send(self, q: np.ndarray, kp: float) -> None:
        for i, cmd in enumerate(self._message.motor_cmd):
            cmd.mode, cmd.q, cmd.dq, cmd.tau, cmd.kp, cmd.kd = mode_byte(i), float(q[i]), 0.0, 0.0, kp, self.kd
        self._writer.write(self._message)

    # -- state ---------------------------------------------------------------------------------------
    def _sample(self) -> tuple[np.ndarray, np.ndarray, str]:
        with self._lock:
            latest, age_s = self._latest, time.monotonic() - self._latest_s
        if latest is None:
            raise GripperError(f"the {self.endpoint} is not connected; call connect() first")
        if age_s > self.state_timeout_s:
            raise GripperError(f"no HandState_ from the {self.endpoint} for {age_s:.2f} s (limit "
                               f"{self.state_timeout_s:g} s); {self._check()}")
        motors = latest.motor_state[: len(JOINTS)]
        q = np.array([m.q for m in motors])
        dq = np.array([m.dq for m in motors])
        return q, dq, self._fault(latest)

    def _fault(self, state: Any) -> str:
        parts = []
        if any(state.error):
            parts.append("hand error words " + ", ".join(f"0x{e:08X}" for e in state.error))
        motors = [f"{JOINTS[i]} 0x{m.motorstate:X}" for i, m in enumerate(state.motor_state[:7]) if m.motorstate]
        if motors:
            parts.append("motor faults " + ", ".join(motors))
        if not parts:
            return ""
        return (f"Dex3 {self.side} hand reports {'; '.join(parts)}: power-cycle the hand; if it persists, "
                "see Unitree's manual")

    def fraction_of(self, q: np.ndarray) -> float:
        """Where ``q`` lies on the closed (0) .. open (1) line."""
        return float(np.clip(np.dot(q - self.closed_q, self._line) / np.dot(self._line, self._line), 0.0, 1.0))

    def _state(self, q: np.ndarray, dq: np.ndarray, fault: str, stalled: bool = False) -> GripperState:
        moving = bool(np.max(np.abs(dq)) > SETTLE_DQ_RADPS)  # fingers lag their targets in motion: no grip yet
        return GripperState(stamp_s=time.monotonic(), width_m=self.fraction_of(q) * self.max_width_m,
                            object_detected=stalled and not moving, moving=moving, activated=True, fault=fault)

    def read_state(self) -> GripperState:
        q, dq, fault = self._sample()
        return self._state(q, dq, fault, self._stalled(q))

    def _stalled(self, q: np.ndarray) -> bool:
        """The fingers stopped short of the commanded targets in the closing direction."""
        with self._lock:
            commanded = self._commanded
        if commanded is None:
            return False
        closing = -self._line / np.linalg.norm(self._line)
        lag_rad = float(np.dot(self.closed_q + commanded * self._line - q, closing))
        return lag_rad > self.stall_rad

    # -- commands ------------------------------------------------------------------------------------
    def activate(self, timeout_s: float) -> GripperState:
        """The Dex3 needs no activation: this checks that it reports and has no fault."""
        q, dq, fault = self._sample()
        if fault:
            raise GripperError(f"{self.endpoint}: {fault}")
        return self._state(q, dq, fault)

    def move_to_width(self, width_m: float, speed_mps: float, force_n: float, timeout_s: float) -> GripperState:
        goal = self.check_width(width_m) / self.max_width_m
        speed, force = self.check_speed_force(speed_mps, force_n)
        q, _, fault = self._sample()
        if fault:
            raise GripperError(f"{self.endpoint}: {fault}")
        with self._lock:
            if self._commanded is None:
                self._commanded = self.fraction_of(q)  # start from where the fingers are
            self._goal, self._rate = goal, speed / self.max_width_m
            self._kp = self.kp_max * force / self.max_force_n
        deadline = time.monotonic() + timeout_s
        still_since: float | None = None
        while True:
            time.sleep(self.period_s)
            q, dq, fault = self._sample()
            if fault:
                raise GripperError(f"{self.endpoint}: {fault}")
            with self._lock:
                ramp_done = self._commanded == self._goal
            now = time.monotonic()
            still = ramp_done and float(np.max(np.abs(dq))) < SETTLE_DQ_RADPS
            still_since = (still_since or now) if still else None
            if still_since is not None and now - still_since >= SETTLE_S:
                return self._state(q, dq, fault, self._stalled(q))
            if now > deadline:
                raise GripperError(f"the {self.endpoint} did not settle at {width_m * 1000:.0f} mm within "
                                   f"{timeout_s:g} s (at {self.fraction_of(q) * self.max_width_m * 1000:.0f} mm); "
                                   "check that nothing drives the fingers and the hand is powered")

    def hold(self) -> None:
        with self._lock:
            self._goal = self._commanded


def dex3_gripper(description: Any = None, *, side: str | None = None, domain_id: int = 0, network_interface: str = "",
                 **options: Any) -> Dex3Hand:
    """Factory of kind ``dex3``: the G1's ``network_interface`` and ``domain_id`` as for its arm driver."""
    side = side or described(description, "side", "left")
    for name in ("max_width_m", "max_speed_mps", "max_force_n"):
        value = described(description, name, None)
        if value is not None:
            options.setdefault(name, value)
    return Dex3Hand(side=side, domain_id=domain_id, network_interface=network_interface, **options)
