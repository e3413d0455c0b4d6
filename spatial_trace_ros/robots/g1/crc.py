"""The CRC-32 a G1 checks on every ``LowCmd_`` (and sets on every ``LowState_``).

The robot lays the message out as its C struct (little-endian, natural alignment, zero padding),
reads it as 32-bit words, leaves out the last word (the ``crc`` field itself) and runs CRC-32 with
polynomial 0x04C11DB7, initial value 0xFFFFFFFF, no reflection and no final XOR, feeding each word
most significant bit first (the STM32 hardware CRC; equal to CRC-32/MPEG-2 over the words stored
big-endian). A command with a wrong CRC is dropped by the robot, so this must be exact.

Table-driven, four tables of 256 entries ("slicing by 4"), one step per word: about 50 us for a
``LowCmd_`` in CPython, so 500 Hz costs under 3 % of a core (``bench/bench_g1.py`` measures it).
Messages are read by attribute, so this module works without ``cyclonedds``.
"""

from __future__ import annotations

import array
import struct
from collections.abc import Iterable
from typing import Any

POLYNOMIAL = 0x04C11DB7
INITIAL = 0xFFFFFFFF

# The C structs of unitree_hg (natural alignment: uint8 fields are padded to the next 4-byte member).
# LowCmd_: mode_pr, mode_machine, 2 pad, 35 x MotorCmd_ (mode, 3 pad, q, dq, tau, kp, kd, reserve),
# reserve[4], crc -> 1004 bytes.
LOW_CMD_STRUCT = struct.Struct("<2B2x" + "B3x5fI" * 35 + "4I" + "I")
# LowState_: version[2], mode_pr, mode_machine, 2 pad, tick, IMUState_ (quaternion[4], gyroscope[3],
# accelerometer[3], rpy[3], temperature int16, 2 pad), 35 x MotorState_ (mode, 3 pad, q, dq, ddq,
# tau_est, temperature int16[2], vol, sensor[2], motorstate, reserve[4]), wireless_remote[40],
# reserve[4], crc -> 2092 bytes.
LOW_STATE_STRUCT = struct.Struct("<2I2B2xI" + "13fh2x" + "B3x4f2hf7I" * 35 + "40B" + "4I" + "I")


def _byte_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ POLYNOMIAL) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
        table.append(crc)
    return table


def _next_table(previous: list[int], base: list[int]) -> list[int]:
    """The table that advances the CRC by one more byte than ``previous`` does."""
    return [((entry << 8) & 0xFFFFFFFF) ^ base[entry >> 24] for entry in previous]


_T0 = _byte_table()
_T1 = _next_table(_T0, _T0)
_T2 = _next_table(_T1, _T0)
_T3 = _next_table(_T2, _T0)


def crc32_words(words: Iterable[int]) -> int:
    """CRC-32 (0x04C11DB7, init 0xFFFFFFFF, MSB first, no final XOR) of a sequence of uint32 words."""
    crc = INITIAL
    t0, t1, t2, t3 = _T0, _T1, _T2, _T3
    for word in words:
        crc ^= word
        crc = t3[crc >> 24] ^ t2[(crc >> 16) & 0xFF] ^ t1[(crc >> 8) & 0xFF] ^ t0[crc & 0xFF]
    return crc


def crc32_of_struct(packed: bytes) -> int:
    """The robot's CRC of a packed C struct: its little-endian words, the last (crc) word left out."""
    if len(packed) % 4:
        raise ValueError(f"a packed unitree struct is a whole number of 32-bit words, got {len(packed)} bytes")
    words = array.array("I")
    words.frombytes(packed[:-4])
    if words.itemsize != 4:
        raise RuntimeError("this platform's array('I') is not 32 bits wide")
    if struct.pack("=I", 1) != struct.pack("<I", 1):
        words.byteswap()
    return crc32_words(words)


def pack_low_cmd(msg: Any) -> bytes:
    """``LowCmd_`` as the robot's C struct (with whatever ``crc`` the message holds)."""
    values: list[Any] = [msg.mode_pr, msg.mode_machine]
    for m in msg.motor_cmd:
        values += (m.mode, m.q, m.dq, m.tau, m.kp, m.kd, m.reserve)
    values += msg.reserve
    values.append(msg.crc)
    return LOW_CMD_STRUCT.pack(*values)


def pack_low_state(msg: Any) -> bytes:
    """``LowState_`` as the robot's C struct (with whatever ``crc`` the message holds)."""
    imu = msg.imu_state
    values: list[Any] = [*msg.version, msg.mode_pr, msg.mode_machine, msg.tick]
    values += (*imu.quaternion, *imu.gyroscope, *imu.accelerometer, *imu.rpy, imu.temperature)
    for m in msg.motor_state:
        values += (m.mode, m.q, m.dq, m.ddq, m.tau_est, *m.temperature, m.vol, *m.sensor, m.motorstate, *m.reserve)
    values += (*msg.wireless_remote, *msg.reserve, msg.crc)
    return LOW_STATE_STRUCT.pack(*values)


def low_cmd_crc(msg: Any) -> int:
    """The CRC a G1 expects in ``msg.crc`` of this ``LowCmd_``."""
    return crc32_of_struct(pack_low_cmd(msg))


def low_state_crc(msg: Any) -> int:
    """The CRC a G1 puts in ``msg.crc`` of this ``LowState_``."""
    return crc32_of_struct(pack_low_state(msg))
