"""The G1 driver's plain-Python parts: config/g1.yaml, the hand-over ramps and capped tracking, the factory."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from spatial_trace_ros.errors import ConfigError, RobotError, SafetyError
from spatial_trace_ros.robots.driver import driver_factory
from spatial_trace_ros.robots.g1.arm_sdk import ArmSdkCommander, Phase
from spatial_trace_ros.robots.g1.config import G1ArmConfig, load_g1_config
from spatial_trace_ros.robots.g1.driver import G1ArmDriver
from spatial_trace_ros.robots.g1.motors import ARM_SDK_JOINTS, LEFT_ARM_JOINTS, MOTOR_SLOT, RIGHT_ARM_JOINTS
from spatial_trace_ros.robots.model import make_robot_model

REPO = Path(__file__).resolve().parents[1]
CONFIG = load_g1_config(None, rate_hz=50.0, weight_ramp_s=0.5, max_velocity_radps=0.5)
LEFT = np.array([ARM_SDK_JOINTS.index(n) for n in LEFT_ARM_JOINTS])


def pose(**joints: float) -> np.ndarray:
    q = np.zeros(len(ARM_SDK_JOINTS))
    for name, value in joints.items():
        q[ARM_SDK_JOINTS.index(name)] = value
    return q


def engaged(start: np.ndarray) -> tuple[ArmSdkCommander, list[tuple[np.ndarray, float]]]:
    c = ArmSdkCommander(LEFT_ARM_JOINTS, CONFIG)
    c.engage(start)
    sent = []
    while c.phase is Phase.ENGAGING:
        sent.append(c.step())
    return c, sent


def test_shipped_yaml_equals_the_defaults() -> None:
    assert load_g1_config(REPO / "config" / "g1.yaml") == G1ArmConfig()


def test_motor_slots_follow_the_g1_order() -> None:
    assert MOTOR_SLOT["waist_yaw_joint"] == 12
    assert MOTOR_SLOT["left_shoulder_pitch_joint"] == 15 and MOTOR_SLOT["left_wrist_yaw_joint"] == 21
    assert MOTOR_SLOT["right_shoulder_pitch_joint"] == 22 and MOTOR_SLOT["right_wrist_yaw_joint"] == 28


def test_wider_limits_than_the_robot_are_refused(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "config" / "g1.yaml").read_text())
    data["joint_limits_rad"]["left_elbow_joint"] = [-1.0472, 2.5]
    path = tmp_path / "g1.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"left_elbow_joint.*wider than the robot's.*only be tighter"):
        load_g1_config(path)


def test_bad_options_are_named_with_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"unknown G1 driver option\(s\) \['robot_ip'\]; available: .*kp"):
        load_g1_config(None, robot_ip="192.168.123.161")
    with pytest.raises(ConfigError, match=r"max_velocity_radps = 9\.0"):
        load_g1_config(None, max_velocity_radps=9.0)
    with pytest.raises(ConfigError, match="not found"):
        load_g1_config(REPO / "config" / "no_such_g1.yaml")


def test_factory_builds_the_driver_without_touching_the_network() -> None:
    driver = driver_factory("g1_arm_sdk")(make_robot_model("g1_right_arm"), rate_hz=100.0)
    assert isinstance(driver, G1ArmDriver)
    assert driver.supports == frozenset({"servo_joints"}) and driver.period_s == pytest.approx(0.01)
    state = driver.read_state()
    assert not state.connected and not state.ok


def test_everything_but_the_connection_works_without_cyclonedds() -> None:
    """The [g1] extra is optional: models, config, CRC and the driver factory import without it."""
    script = textwrap.dedent("""
        import sys
        class NoCycloneDDS:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "cyclonedds":
                    raise ImportError("cyclonedds is not installed")
        sys.meta_path.insert(0, NoCycloneDDS())
        from spatial_trace_ros.robots.driver import driver_factory
        from spatial_trace_ros.robots.g1.crc import crc32_words
        from spatial_trace_ros.robots.model import make_robot_model
        driver = driver_factory("g1_arm_sdk")(make_robot_model("g1_left_arm"))
        assert crc32_words([0x12345678]) == 0xDF8A8A2B
        try:
            driver.connect()
        except Exception as err:
            print(type(err).__name__, err)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "ConfigError the G1 driver needs cyclonedds 0.10.2" in out.stdout and "pip install '.[g1]'" in out.stdout


def test_driver_refuses_a_non_g1_model() -> None:
    class Other:
        name = "ur5e"
        joint_names = ("a", "b")

    with pytest.raises(ConfigError, match="g1_left_arm or g1_right_arm"):
        G1ArmDriver(Other())  # type: ignore[arg-type]


def test_take_over_ramps_the_weight_and_holds_the_pose() -> None:
    start = pose(left_elbow_joint=0.5, waist_yaw_joint=0.1, right_shoulder_roll_joint=-0.3)
    _, sent = engaged(start)
    weights = [w for _, w in sent]
    assert len(sent) == 25  # 0.5 s at 50 Hz
    assert weights[0] == pytest.approx(0.04) and weights[-1] == 1.0
    assert np.all(np.diff(weights) == pytest.approx(0.04))
    for q, _ in sent:
        assert q == pytest.approx(start)  # frozen at the take-over pose while blending in


def test_engaged_tracking_is_velocity_capped_and_holds_the_rest() -> None:
    start = pose(left_elbow_joint=0.5, waist_pitch_joint=0.05)
    c, _ = engaged(start)
    target = start[LEFT].copy()
    target[0] = -0.3  # shoulder pitch 0.3 rad away
    c.set_target(target)
    commands = [c.step()[0] for _ in range(40)]
    steps = np.abs(np.diff(np.array([start, *commands]), axis=0))
    assert steps.max() == pytest.approx(0.01)  # 0.5 rad/s * 20 ms
    assert commands[-1][LEFT] == pytest.approx(target)  # arrives after 30 periods
    others = np.setdiff1d(np.arange(len(ARM_SDK_JOINTS)), LEFT)
    assert np.all(np.array(commands)[:, others] == start[others])  # waist and right arm held


def test_joint_speed_is_capped_in_real_time() -> None:
    c, _ = engaged(pose())
    c.set_target(np.full(7, 0.1))
    assert c.step(0.02)[0][LEFT] == pytest.approx(np.full(7, 0.01))  # on time: 0.5 rad/s * 20 ms
    assert c.step(0.03)[0][LEFT] == pytest.approx(np.full(7, 0.025))  # 10 ms late: 15 ms worth
    assert c.step(0.01)[0][LEFT] == pytest.approx(np.full(7, 0.03))  # the short one after it: 5 ms worth
    assert c.step(0.5)[0][LEFT] == pytest.approx(np.full(7, 0.055))  # stalled: 50 ms worth at most, no jump


def test_release_holds_the_command_and_ramps_down() -> None:
    c, _ = engaged(pose(left_elbow_joint=0.5))
    target = pose(left_elbow_joint=0.5)[LEFT]
    target[3] = 1.0
    c.set_target(target)
    moving = [c.step() for _ in range(10)]
    held = moving[-1][0]
    c.release("e-stop")
    out = []
    while c.phase is not Phase.RELEASED:
        out.append(c.step())
    assert c.step() is None  # nothing more is sent once released
    assert all(np.array_equal(q, held) for q, _ in out)
    weights = [w for _, w in out]
    assert weights[-3:] == [0.0, 0.0, 0.0]  # the last weight goes out three times
    assert np.all(np.diff(weights[:-2]) == pytest.approx(-0.04))
    assert c.release_reason == "e-stop"
    with pytest.raises(RobotError, match=r"released.*e-stop"):
        c.set_target(target)


def test_setpoints_outside_limits_or_malformed_are_refused() -> None:
    c, _ = engaged(pose())
    q = np.zeros(7)
    q[3] = 2.5  # elbow upper limit is 2.0944
    with pytest.raises(SafetyError, match=r"left_elbow_joint \(2.500 rad\) is outside its limits"):
        c.set_target(q)
    with pytest.raises(SafetyError, match="7 finite joint positions"):
        c.set_target(np.full(7, np.nan))
    assert c.target == pytest.approx(np.zeros(7))  # the old target stands


def test_take_over_refused_outside_limits() -> None:
    c = ArmSdkCommander(RIGHT_ARM_JOINTS, CONFIG)
    with pytest.raises(RobotError, match=r"not taking over.*waist_roll_joint is at 0\.700 rad"):
        c.engage(pose(waist_roll_joint=0.7))
    assert c.phase is Phase.RELEASED and c.step() is None


def test_limit_violation_has_a_tolerance() -> None:
    c = ArmSdkCommander(LEFT_ARM_JOINTS, CONFIG)
    assert c.limit_violation(pose(left_elbow_joint=2.0944 + 0.01)) == ""
    assert "left_elbow_joint" in c.limit_violation(pose(left_elbow_joint=2.0944 + 0.05))
