"""Our unitree_hg IDL: the robot's type names, final extensibility, field order, CDR round trips."""

from __future__ import annotations

import struct

import numpy as np
import pytest

pytest.importorskip("cyclonedds", reason="the G1 DDS layer is the optional [g1] extra")

from cyclonedds.topic import Topic

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.robots.g1 import idl
from spatial_trace_ros.robots.g1.crc import low_cmd_crc, low_state_crc

f32 = np.float32


def _filled_low_cmd() -> idl.LowCmd_:
    msg = idl.LowCmd_(mode_pr=1, mode_machine=5, reserve=[7, 8, 9, 10])
    for i, m in enumerate(msg.motor_cmd):
        m.mode, m.q, m.dq, m.tau = 1, float(f32(0.1 * i)), float(f32(-0.01 * i)), 0.5
        m.kp, m.kd, m.reserve = 60.0, 1.5, i
    msg.crc = low_cmd_crc(msg)
    return msg


def _filled_low_state() -> idl.LowState_:
    msg = idl.LowState_(version=[1, 2], mode_machine=5, tick=123456)
    msg.imu_state.quaternion = [1.0, 0.0, 0.0, 0.0]
    msg.imu_state.rpy = [0.0, 0.25, -0.5]
    msg.imu_state.temperature = 41
    for i, m in enumerate(msg.motor_state):
        m.q, m.dq, m.tau_est, m.temperature, m.vol = float(f32(0.2 * i)), 0.5, -1.25, [30, 31], 24.0
    msg.wireless_remote = bytes(range(40))
    msg.crc = low_state_crc(msg)
    return msg


@pytest.mark.parametrize(
    ("cls", "dds_name"),
    [
        (idl.LowCmd_, "unitree_hg::msg::dds_::LowCmd_"),
        (idl.MotorCmd_, "unitree_hg::msg::dds_::MotorCmd_"),
        (idl.LowState_, "unitree_hg::msg::dds_::LowState_"),
        (idl.MotorState_, "unitree_hg::msg::dds_::MotorState_"),
        (idl.IMUState_, "unitree_hg::msg::dds_::IMUState_"),
    ],
)
def test_type_names_and_extensibility(cls: type, dds_name: str) -> None:
    participant = idl.join_domain(231, "lo")
    assert Topic(participant, f"test/{cls.__name__}", cls).typename == dds_name
    assert cls.__idl_annotations__["extensibility"] == "final"


def test_low_cmd_round_trip_and_wire_layout() -> None:
    msg = _filled_low_cmd()
    data = msg.serialize()
    assert idl.LowCmd_.deserialize(data) == msg
    body = data[4:]  # after the CDR encapsulation header
    assert len(body) == 1000
    assert body[:3] == bytes([1, 5, 1])  # mode_pr, mode_machine, motor_cmd[0].mode
    # motor_cmd[2] starts at byte 56: mode, 3 padding bytes, q, dq, tau, kp, kd, reserve
    assert struct.unpack_from("<B3x5fI", body, 56) == (1, f32(0.2), f32(-0.02), 0.5, 60.0, 1.5, 2)
    assert struct.unpack_from("<4II", body, 980) == (7, 8, 9, 10, msg.crc)


def test_low_state_round_trip_keeps_crc_valid() -> None:
    msg = _filled_low_state()
    back = idl.LowState_.deserialize(msg.serialize())
    assert back == msg
    assert low_state_crc(back) == back.crc
    assert back.motor_state[34].q == pytest.approx(6.8)


def test_crc_survives_the_wire() -> None:
    back = idl.LowCmd_.deserialize(_filled_low_cmd().serialize())
    assert low_cmd_crc(back) == back.crc
    back.motor_cmd[29].q = 1.0
    assert low_cmd_crc(back) != back.crc


def test_loopback_config_uses_unicast_peers() -> None:
    xml = idl.dds_config_xml("lo")
    assert "<AllowMulticast>false</AllowMulticast>" in xml and "127.0.0.1" in xml


def test_unknown_interface_is_named_with_the_available_ones() -> None:
    with pytest.raises(ConfigError, match=r"does not exist on this PC; available: .*lo"):
        idl.dds_config_xml("no_such_nic0")


def test_one_domain_one_interface_per_process() -> None:
    idl.join_domain(230, "lo")
    with pytest.raises(ConfigError, match="already set up on interface 'lo'"):
        idl.join_domain(230, "eth_other")
