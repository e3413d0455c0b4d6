"""The UR driver makes the controller's TCP the flange (the frame the stack plans for; a tool's TCP comes
from its tool description) and refuses to run when the controller keeps another one. Through the real
ur_rtde client against the fake UR controller in its own process."""

from __future__ import annotations

import pytest

from spatial_trace_ros.errors import RobotError
from spatial_trace_ros.robots.driver import driver_factory
from spatial_trace_ros.robots.model import make_robot_model
from spatial_trace_ros.testing.fake_ur.client import start_fake_ur

MODEL = make_robot_model("ur5e")
PENDANT_TCP = [0.0, 0.0, 0.15, 0.0, 0.0, 0.0]  # e.g. a gripper's TCP set in the robot's installation


def test_driver_sets_the_flange_as_tcp(procs) -> None:
    fake = start_fake_ur(procs, "ur5e")
    fake.set_tcp_offset(PENDANT_TCP)
    driver = driver_factory("ur_rtde")(MODEL, robot_ip=fake.host)
    try:
        driver.connect()
        assert fake.state()["tcp_offset"] == [0.0] * 6
    finally:
        driver.disconnect()


def test_driver_refuses_a_tcp_it_cannot_change_naming_both_values(procs) -> None:
    fake = start_fake_ur(procs, "ur5e")
    fake.set_tcp_offset(PENDANT_TCP, locked=True)
    driver = driver_factory("ur_rtde")(MODEL, robot_ip=fake.host)
    try:
        with pytest.raises(RobotError) as err:
            driver.connect()
    finally:
        driver.disconnect()
    text = str(err.value)
    assert "[0.0, 0.0, 0.15, 0.0, 0.0, 0.0]" in text and "[0.0, 0.0, 0.0, 0.0, 0.0, 0.0]" in text
    assert "installation" in text
