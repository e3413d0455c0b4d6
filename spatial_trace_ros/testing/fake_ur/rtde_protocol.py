"""RTDE protocol version 2 as a controller speaks it (facts from Universal Robots' RTDE guide).

Every message is ``uint16 size (header included) | uint8 type | payload``, big-endian. A client
negotiates the protocol version, asks for the controller version, sets up one output recipe (the
variables it wants at a frequency) and any number of input recipes (the registers it will write),
then starts synchronisation; from then on the controller streams output data packages and the
client sends input data packages, each prefixed by its recipe id.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

HEADER = struct.Struct(">HB")


class MessageType(IntEnum):
    REQUEST_PROTOCOL_VERSION = 86  # 'V'
    GET_URCONTROL_VERSION = 118  # 'v'
    TEXT_MESSAGE = 77  # 'M'
    DATA_PACKAGE = 85  # 'U'
    SETUP_OUTPUTS = 79  # 'O'
    SETUP_INPUTS = 73  # 'I'
    START = 83  # 'S'
    PAUSE = 80  # 'P'


# RTDE type name -> struct format of one value.
TYPE_FORMATS: dict[str, str] = {
    "BOOL": "?",
    "UINT8": "B",
    "UINT32": "I",
    "UINT64": "Q",
    "INT32": "i",
    "DOUBLE": "d",
    "VECTOR3D": "3d",
    "VECTOR6D": "6d",
    "VECTOR6INT32": "6i",
    "VECTOR6UINT32": "6I",
}
TYPE_WIDTHS: dict[str, int] = {"VECTOR3D": 3, "VECTOR6D": 6, "VECTOR6INT32": 6, "VECTOR6UINT32": 6}

# Controller outputs a client may ask for, with their RTDE types.
OUTPUT_TYPES: dict[str, str] = {
    "timestamp": "DOUBLE",
    "target_q": "VECTOR6D",
    "target_qd": "VECTOR6D",
    "target_qdd": "VECTOR6D",
    "target_current": "VECTOR6D",
    "target_moment": "VECTOR6D",
    "actual_q": "VECTOR6D",
    "actual_qd": "VECTOR6D",
    "actual_current": "VECTOR6D",
    "joint_control_output": "VECTOR6D",
    "actual_TCP_pose": "VECTOR6D",
    "actual_TCP_speed": "VECTOR6D",
    "actual_TCP_force": "VECTOR6D",
    "target_TCP_pose": "VECTOR6D",
    "target_TCP_speed": "VECTOR6D",
    "actual_digital_input_bits": "UINT64",
    "joint_temperatures": "VECTOR6D",
    "actual_execution_time": "DOUBLE",
    "robot_mode": "INT32",
    "joint_mode": "VECTOR6INT32",
    "safety_mode": "INT32",
    "safety_status": "INT32",
    "actual_tool_accelerometer": "VECTOR3D",
    "speed_scaling": "DOUBLE",
    "target_speed_fraction": "DOUBLE",
    "actual_momentum": "DOUBLE",
    "actual_main_voltage": "DOUBLE",
    "actual_robot_voltage": "DOUBLE",
    "actual_robot_current": "DOUBLE",
    "actual_joint_voltage": "VECTOR6D",
    "actual_digital_output_bits": "UINT64",
    "runtime_state": "UINT32",
    "elbow_position": "VECTOR3D",
    "elbow_velocity": "VECTOR3D",
    "robot_status_bits": "UINT32",
    "safety_status_bits": "UINT32",
    "analog_io_types": "UINT32",
    "standard_analog_input0": "DOUBLE",
    "standard_analog_input1": "DOUBLE",
    "standard_analog_output0": "DOUBLE",
    "standard_analog_output1": "DOUBLE",
    "io_current": "DOUBLE",
    "tool_mode": "UINT32",
    "tool_analog_input_types": "UINT32",
    "tool_analog_input0": "DOUBLE",
    "tool_analog_input1": "DOUBLE",
    "tool_output_voltage": "INT32",
    "tool_output_current": "DOUBLE",
    "tool_temperature": "DOUBLE",
    "tcp_force_scalar": "DOUBLE",
    "output_bit_registers0_to_31": "UINT32",
    "output_bit_registers32_to_63": "UINT32",
    "input_bit_registers0_to_31": "UINT32",
    "input_bit_registers32_to_63": "UINT32",
    "ft_raw_wrench": "VECTOR6D",
    "payload": "DOUBLE",
    "payload_cog": "VECTOR3D",
    "payload_inertia": "VECTOR6D",
    "script_control_line": "UINT32",
}

# Inputs a client may write, with their RTDE types.
INPUT_TYPES: dict[str, str] = {
    "speed_slider_mask": "UINT32",
    "speed_slider_fraction": "DOUBLE",
    "standard_digital_output_mask": "UINT8",
    "standard_digital_output": "UINT8",
    "configurable_digital_output_mask": "UINT8",
    "configurable_digital_output": "UINT8",
    "tool_digital_output_mask": "UINT8",
    "tool_digital_output": "UINT8",
    "standard_analog_output_mask": "UINT8",
    "standard_analog_output_type": "UINT8",
    "standard_analog_output_0": "DOUBLE",
    "standard_analog_output_1": "DOUBLE",
    "input_bit_registers0_to_31": "UINT32",
    "input_bit_registers32_to_63": "UINT32",
    "external_force_torque": "VECTOR6D",
}

_REGISTER = re.compile(r"^(input|output)_(int|double|bit)_register_(\d+)$")
_REGISTER_TYPES = {"int": "INT32", "double": "DOUBLE", "bit": "BOOL"}
REGISTER_COUNT = 48  # int and double registers 0..47 (24..47 are the upper range)


def register_type(name: str, direction: str) -> str | None:
    """Type of a general-purpose register name (``input_int_register_3``), None if it is not one."""
    m = _REGISTER.match(name)
    if not m or m.group(1) != direction:
        return None
    index = int(m.group(3))
    if m.group(2) == "bit":
        return "BOOL" if 64 <= index <= 127 else None
    return _REGISTER_TYPES[m.group(2)] if index < REGISTER_COUNT else None


def output_type(name: str) -> str | None:
    """What a controller answers for an output variable (None means NOT_FOUND). Input registers may
    also be read back as outputs."""
    return OUTPUT_TYPES.get(name) or register_type(name, "output") or register_type(name, "input")


def input_type(name: str) -> str | None:
    return INPUT_TYPES.get(name) or register_type(name, "input")


@dataclass
class Recipe:
    """One output or input recipe: variable names with their types, packed in order."""

    recipe_id: int
    names: list[str]
    types: list[str]
    frequency_hz: float = 0.0

    def __post_init__(self) -> None:
        self._struct = struct.Struct(">" + "".join(TYPE_FORMATS[t] for t in self.types))

    def unpack(self, payload: bytes) -> dict[str, Any]:
        """Input data package body (after the recipe id) -> {name: value}."""
        flat = self._struct.unpack(payload[: self._struct.size])
        values: dict[str, Any] = {}
        i = 0
        for name, typ in zip(self.names, self.types, strict=True):
            width = TYPE_WIDTHS.get(typ, 1)
            values[name] = flat[i] if width == 1 else list(flat[i : i + width])
            i += width
        return values

    def pack(self, values: dict[str, Any]) -> bytes:
        """Output data package body (recipe id included) from {name: value}."""
        flat: list[Any] = []
        for name in self.names:
            value = values[name]
            if isinstance(value, list | tuple):
                flat.extend(value)
            else:
                flat.append(value)
        return bytes([self.recipe_id]) + self._struct.pack(*flat)


def frame(msg_type: MessageType, payload: bytes = b"") -> bytes:
    return HEADER.pack(HEADER.size + len(payload), int(msg_type)) + payload


class FrameReader:
    """Splits a TCP byte stream into (type, payload) messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buffer.extend(data)
        messages = []
        while len(self._buffer) >= HEADER.size:
            size, msg_type = HEADER.unpack_from(self._buffer)
            if size < HEADER.size:
                raise ValueError(f"RTDE message with impossible size {size}")
            if len(self._buffer) < size:
                break
            messages.append((msg_type, bytes(self._buffer[HEADER.size : size])))
            del self._buffer[:size]
        return messages


def parse_output_setup(payload: bytes) -> tuple[float, list[str]]:
    """SETUP_OUTPUTS body: frequency (double) then comma-separated names."""
    (frequency,) = struct.unpack_from(">d", payload)
    return frequency, _names(payload[8:])


def parse_input_setup(payload: bytes) -> list[str]:
    return _names(payload)


def _names(raw: bytes) -> list[str]:
    return [n for n in raw.decode("ascii", errors="replace").strip("\x00").split(",") if n]
