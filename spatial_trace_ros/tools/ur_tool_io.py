"""Gripper kind ``ur_tool_io``: an on/off gripper (pneumatic fingers, suction, electric on/off) on a
UR's tool digital outputs, switched with ur_rtde's ``RTDEIOInterface``.

The gripper closes when tool output ``close_output`` is at ``close_level``; a double-acting valve also
gets ``open_output`` driven the other way. The outputs actually set are read back from the
controller (``actual_digital_output_bits``, tool outputs are bits 16-17) before the call waits
``actuation_s`` for the fingers or the suction. An on/off gripper knows only open and closed: its
width is ``max_width_m`` or ``min_width_m``, and it senses an object only when a sensor (finger
switch, vacuum switch) is wired to tool input ``grip_input``; without one ``senses_object`` is
False and a grasp cannot be verified.

ur_rtde's constructors block forever (holding the GIL) against a peer that accepts but never
answers, so the controller's RTDE port is probed with a plain socket and a timeout first.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

from spatial_trace_ros.tools.gripper import Gripper, GripperError, GripperState, described

RTDE_PORT = 30004
TOOL_BIT_OFFSET = 16
REQUEST_PROTOCOL_VERSION = 86
RECEIVE_VARIABLES = ["actual_digital_output_bits", "actual_digital_input_bits"]


def probe_rtde(host: str, timeout_s: float, port: int = RTDE_PORT) -> None:
    """Raise ``GripperError`` unless an RTDE server at host:port answers a protocol-version request."""
    check = ("check the robot_ip, that the UR controller is on and reachable from this PC, and that "
             "nothing else blocks port 30004")
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(struct.pack(">HBH", 5, REQUEST_PROTOCOL_VERSION, 2))
            answer = sock.recv(16)
    except TimeoutError:
        raise GripperError(f"the UR controller's RTDE port {host}:{port} did not answer within {timeout_s:g} s; "
                           f"{check}") from None
    except OSError as err:
        raise GripperError(f"cannot reach the UR controller's RTDE port {host}:{port} ({err}); {check}") from None
    if len(answer) < 4 or answer[2] != REQUEST_PROTOCOL_VERSION:
        raise GripperError(f"{host}:{port} answered {answer!r}, not as a UR controller's RTDE server; {check}")


class UrToolIoGripper(Gripper):
    def __init__(self, host: str, close_output: int = 0, close_level: bool = True, open_output: int | None = None,
                 grip_input: int | None = None, grip_level: bool = True, actuation_s: float = 0.3,
                 min_width_m: float = 0.0, max_width_m: float = 0.05, timeout_s: float = 2.0,
                 upper_range_registers: bool = False) -> None:
        for name, value in (("close_output", close_output), ("open_output", open_output), ("grip_input", grip_input)):
            if value is not None and value not in (0, 1):
                raise GripperError(f"{name} {value} is not a UR tool digital I/O; a UR tool has 0 and 1")
        if open_output == close_output:
            raise GripperError(f"open_output and close_output are both tool output {close_output}; use the other one")
        if not 0 <= min_width_m < max_width_m:
            raise GripperError(f"min_width_m {min_width_m} must be >= 0 and below max_width_m {max_width_m}")
        self.host, self.timeout_s, self.upper_range = host, timeout_s, upper_range_registers
        self.close_output, self.close_level, self.open_output = close_output, close_level, open_output
        self.grip_input, self.grip_level, self.actuation_s = grip_input, grip_level, actuation_s
        self.min_width_m, self.max_width_m = min_width_m, max_width_m
        self.senses_object = grip_input is not None
        self.endpoint = f"on/off gripper on tool output {close_output} of the UR at {host}"
        self._io: Any = None
        self._receive: Any = None
        self._switched_s = 0.0

    def connect(self) -> None:
        if self._io is not None:
            return
        probe_rtde(self.host, self.timeout_s)
        import rtde_io
        import rtde_receive

        try:
            self._receive = rtde_receive.RTDEReceiveInterface(self.host, 50.0, RECEIVE_VARIABLES, False,
                                                              self.upper_range)
            self._io = rtde_io.RTDEIOInterface(self.host, False, self.upper_range)
        except RuntimeError as err:
            self.disconnect()
            raise GripperError(f"ur_rtde could not open the I/O interface of the UR at {self.host} ({err}); "
                               "check that no other program drives the tool outputs through RTDE") from None

    def disconnect(self) -> None:
        """Leave the outputs as they are: the gripper keeps holding."""
        for interface in (self._io, self._receive):
            if interface is not None:
                interface.disconnect()
        self._io = self._receive = None

    def _bits(self) -> tuple[int, int]:
        if self._receive is None:
            raise GripperError(f"the {self.endpoint} is not connected; call connect() first")
        if not self._receive.isConnected():
            raise GripperError(f"lost the RTDE connection to the UR at {self.host}; reconnect the gripper")
        return int(self._receive.getActualDigitalOutputBits()), int(self._receive.getActualDigitalInputBits())

    def _closed(self, output_bits: int) -> bool:
        return bool(output_bits >> (TOOL_BIT_OFFSET + self.close_output) & 1) == self.close_level

    def read_state(self) -> GripperState:
        outputs, inputs = self._bits()
        closed = self._closed(outputs)
        sensor = self.grip_input
        sensed = sensor is not None and bool(inputs >> (TOOL_BIT_OFFSET + sensor) & 1) == self.grip_level
        return GripperState(
            stamp_s=time.monotonic(),
            width_m=self.min_width_m if closed else self.max_width_m,
            object_detected=closed and sensed,
            moving=time.monotonic() - self._switched_s < self.actuation_s,
        )

    def activate(self, timeout_s: float) -> GripperState:
        """Nothing to activate: this checks that the controller reports the tool I/O."""
        return self.read_state()

    def move_to_width(self, width_m: float, speed_mps: float, force_n: float, timeout_s: float) -> GripperState:
        """Close at ``min_width_m``, open at ``max_width_m``; speed and force are set by the air
        pressure or the gripper's own electronics, not here."""
        width_m = self.check_width(width_m)
        close = abs(width_m - self.min_width_m) <= 1e-6
        if not close and abs(width_m - self.max_width_m) > 1e-6:
            raise GripperError(f"the {self.endpoint} only opens ({self.max_width_m} m) or closes "
                               f"({self.min_width_m} m), it cannot stop at {width_m} m")
        self._bits()
        levels = {self.close_output: self.close_level if close else not self.close_level}
        if self.open_output is not None:
            levels[self.open_output] = not levels[self.close_output]
        for output, level in levels.items():
            if not self._io.setToolDigitalOut(output, level):
                raise GripperError(f"the UR at {self.host} refused to set tool output {output}; "
                                   "check that the robot is powered on and the tool voltage is set")
        self._switched_s = time.monotonic()
        deadline = self._switched_s + timeout_s
        while self._closed(self._bits()[0]) != close:
            if time.monotonic() > deadline:
                raise GripperError(f"the UR at {self.host} did not switch tool output {self.close_output} within "
                                   f"{timeout_s:g} s; check that the robot is powered on and no program drives it")
            time.sleep(0.005)
        actuated_s = self._switched_s + self.actuation_s
        time.sleep(max(0.0, min(actuated_s, deadline) - time.monotonic()))
        return self.read_state()


def ur_tool_io_gripper(description: Any = None, *, host: str | None = None, **options: Any) -> UrToolIoGripper:
    """Factory of kind ``ur_tool_io``: ``host`` is the UR controller's address (the robot_ip)."""
    host = host or described(description, "host", None)
    if not host:
        raise GripperError("the ur_tool_io gripper needs host= (the UR controller's IP address)")
    for name in ("min_width_m", "max_width_m"):
        value = described(description, name, None)
        if value is not None:
            options.setdefault(name, value)
    return UrToolIoGripper(host, **options)
