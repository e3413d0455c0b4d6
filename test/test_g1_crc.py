"""The G1's CRC-32: known values, an independent bit-by-bit reference, and the struct layout it runs over."""

from __future__ import annotations

import struct
import zlib
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spatial_trace_ros.robots.g1.crc import (
    LOW_CMD_STRUCT,
    LOW_STATE_STRUCT,
    crc32_of_struct,
    crc32_words,
    low_cmd_crc,
    pack_low_cmd,
)

words32 = st.lists(st.integers(min_value=0, max_value=2**32 - 1), max_size=64)


def bitwise_robot_crc(words: list[int]) -> int:
    """The robot's reference loop: one bit at a time, data bit injected after the shift."""
    crc = 0xFFFFFFFF
    for word in words:
        bit = 1 << 31
        for _ in range(32):
            crc = ((crc << 1) & 0xFFFFFFFF) ^ 0x04C11DB7 if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
            if word & bit:
                crc ^= 0x04C11DB7
            bit >>= 1
    return crc


def _reverse_bits(value: int, width: int) -> int:
    return int(f"{value:0{width}b}"[::-1], 2)


_REVERSED_BYTES = bytes(_reverse_bits(b, 8) for b in range(256))


def zlib_mpeg2(data: bytes) -> int:
    """CRC-32/MPEG-2 built from zlib's (reflected) CRC-32: an implementation that shares no code with ours."""
    reflected = zlib.crc32(data.translate(_REVERSED_BYTES)) ^ 0xFFFFFFFF
    return _reverse_bits(reflected, 32)


def test_known_values() -> None:
    # STM32 reference manual example: the hardware CRC unit (same algorithm) gives 0xDF8A8A2B for 0x12345678.
    assert crc32_words([0x12345678]) == 0xDF8A8A2B
    # Nothing fed in: the initial value, no final XOR.
    assert crc32_words([]) == 0xFFFFFFFF
    # The catalogue check value of CRC-32/MPEG-2 ("123456789" -> 0x0376E6E7) pins the reference below.
    assert zlib_mpeg2(b"123456789") == 0x0376E6E7


@settings(max_examples=200, deadline=None)
@given(words32)
def test_table_matches_bitwise_reference(words: list[int]) -> None:
    assert crc32_words(words) == bitwise_robot_crc(words)


@settings(max_examples=200, deadline=None)
@given(words32)
def test_words_are_fed_most_significant_byte_first(words: list[int]) -> None:
    assert crc32_words(words) == zlib_mpeg2(b"".join(w.to_bytes(4, "big") for w in words))


def test_struct_sizes_match_the_robot() -> None:
    # sizeof(LowCmd) and sizeof(LowState) of the unitree_hg C structs (natural alignment).
    assert LOW_CMD_STRUCT.size == 1004
    assert LOW_STATE_STRUCT.size == 2092


def _motor_cmd(i: int) -> SimpleNamespace:
    return SimpleNamespace(mode=i % 256, q=0.5 + i, dq=-0.25 * i, tau=0.125, kp=60.0, kd=1.5, reserve=i)


def _low_cmd() -> SimpleNamespace:
    return SimpleNamespace(mode_pr=1, mode_machine=5, motor_cmd=[_motor_cmd(i) for i in range(35)],
                           reserve=[1, 2, 3, 4], crc=0)


def test_low_cmd_layout_is_the_c_struct() -> None:
    msg = _low_cmd()
    packed = pack_low_cmd(msg)
    assert packed[:4] == bytes([1, 5, 0, 0])  # mode_pr, mode_machine, two padding bytes
    # motor_cmd[3] starts at 4 + 3 * 28: mode, 3 padding bytes, q dq tau kp kd (float32), reserve (uint32)
    mode, q, dq, tau, kp, kd, reserve = struct.unpack_from("<B3x5fI", packed, 4 + 3 * 28)
    assert (mode, q, dq, tau, kp, kd, reserve) == (3, 3.5, -0.75, 0.125, 60.0, 1.5, 3)
    assert struct.unpack_from("<4I", packed, 4 + 35 * 28) == (1, 2, 3, 4)


def test_crc_leaves_out_its_own_word() -> None:
    msg = _low_cmd()
    first = low_cmd_crc(msg)
    msg.crc = 0xDEADBEEF
    assert low_cmd_crc(msg) == first
    packed = pack_low_cmd(msg)
    words = list(struct.unpack(f"<{len(packed) // 4}I", packed))
    assert first == bitwise_robot_crc(words[:-1])


@pytest.mark.parametrize("field", ["q", "kp", "mode"])
def test_every_field_counts(field: str) -> None:
    msg = _low_cmd()
    before = low_cmd_crc(msg)
    setattr(msg.motor_cmd[29], field, getattr(msg.motor_cmd[29], field) + 1)
    assert low_cmd_crc(msg) != before


def test_float32_rounding_is_what_the_robot_sees() -> None:
    # A float64 that rounds to the same float32 gives the same CRC: the robot only ever sees float32.
    msg = _low_cmd()
    msg.motor_cmd[15].q = 0.1
    a = low_cmd_crc(msg)
    msg.motor_cmd[15].q = float(np.float32(0.1))
    assert low_cmd_crc(msg) == a


def test_struct_must_be_whole_words() -> None:
    with pytest.raises(ValueError, match="32-bit words"):
        crc32_of_struct(b"\x00" * 6)
