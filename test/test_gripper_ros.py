"""The gripper's ROS interface over real rclpy: a node hosting it (own context and executor) with a
Robotiq client talking to the fake gripper process, and an operator node calling its services and
reading /joint_states and the status topic through DDS."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.ros.gripper_interface import (
    GripperInterface,
    GripperInterfaceSettings,
    attach_gripper,
    describe,
)
from spatial_trace_ros.ros.qos import STATE
from spatial_trace_ros.testing.fake_robotiq import start_fake_robotiq
from spatial_trace_ros.testing.fake_ur.client import start_fake_ur
from spatial_trace_ros.testing.processes import ProcessGroup, free_port
from spatial_trace_ros.testing.ros_harness import RosHarness
from spatial_trace_ros.tools.gripper import GripperState, gripper_factory

pytestmark = pytest.mark.integration
NODE = "gripper_host"


@pytest.fixture
def host(procs: ProcessGroup) -> Iterator[tuple[GripperInterface, threading.Event]]:
    address = start_fake_robotiq(procs, "--object-width-m", "0.03")
    ip, _, port = address.rpartition(":")
    gripper = gripper_factory("robotiq_urcap")(None, host=ip, port=int(port))
    arm_moving = threading.Event()
    with RosHarness(NODE) as ros:
        interface = GripperInterface(ros.node, gripper, arm_moving.is_set,
                                     GripperInterfaceSettings(joint_name="robotiq_finger_width", rate_hz=20.0))
        try:
            yield interface, arm_moving
        finally:
            interface.close()


def newest_status(statuses: list[DiagnosticArray]) -> DiagnosticStatus:
    return statuses[-1].status[0]


def test_manual_commands_and_state_over_ros(host: tuple[GripperInterface, threading.Event], harness) -> None:
    _, arm_moving = host
    joints = harness.collect(JointState, "/joint_states", STATE)
    statuses = harness.collect(DiagnosticArray, "/spatial_trace/gripper_status", STATE)
    harness.wait(lambda: statuses, 10.0, "the gripper status")
    first = newest_status(statuses)
    assert first.level == DiagnosticStatus.WARN and "not activated" in first.message

    arm_moving.set()
    refused = harness.call(Trigger, f"/{NODE}/gripper_activate", Trigger.Request())
    assert not refused.success and "the arm is moving" in refused.message
    arm_moving.clear()

    activated = harness.call(Trigger, f"/{NODE}/gripper_activate", Trigger.Request())
    assert activated.success, activated.message
    closed = harness.call(Trigger, f"/{NODE}/gripper_close", Trigger.Request())
    assert closed.success and closed.message == "closed: holding an object at 30.0 mm", closed.message

    harness.wait(lambda: joints and joints[-1].position[0] == pytest.approx(0.03, abs=5e-4), 10.0,
                 "the finger joint at the object's width")
    assert joints[-1].name == ["robotiq_finger_width"]
    harness.wait(lambda: dict((v.key, v.value) for v in newest_status(statuses).values).get("object_detected")
                 == "true", 10.0, "the status to report the held object")
    status = newest_status(statuses)
    values = {v.key: v.value for v in status.values}
    assert status.level == DiagnosticStatus.OK and values["last_command"] == "close"
    assert "URCap socket 127.0.0.1" in status.hardware_id

    opened = harness.call(Trigger, f"/{NODE}/gripper_open", Trigger.Request())
    assert opened.success and opened.message == "opened: at 85.0 mm, nothing held"


def test_a_failing_command_answers_with_the_reason(host: tuple[GripperInterface, threading.Event], harness) -> None:
    closed = harness.call(Trigger, f"/{NODE}/gripper_close", Trigger.Request())  # never activated
    assert not closed.success and "gripper close failed" in closed.message and "not activated" in closed.message


def test_attach_gripper_retries_a_gripper_that_comes_up_later(procs: ProcessGroup, harness) -> None:
    port = free_port()
    statuses = harness.collect(DiagnosticArray, "/spatial_trace/gripper_status", STATE)
    with RosHarness(NODE) as ros:
        interface = attach_gripper(ros.node, "robotiq_urcap", json.dumps({"port": port}), "127.0.0.1", lambda: False,
                                   GripperInterfaceSettings(rate_hz=20.0, reconnect_interval_s=0.2))
        assert interface is not None and interface.gripper.endpoint.endswith(f"127.0.0.1:{port}")
        try:
            harness.wait(lambda: statuses and "cannot connect" in newest_status(statuses).message, 10.0,
                         "the status to say the gripper cannot be reached")
            assert newest_status(statuses).level == DiagnosticStatus.WARN
            start_fake_robotiq(procs, port=port)
            harness.wait(lambda: "not activated" in newest_status(statuses).message, 10.0, "the gripper reconnected")
        finally:
            interface.close()


def test_attach_gripper_none_and_bad_options(harness) -> None:
    assert attach_gripper(harness.node, "none", "{}", "", lambda: False) is None
    with pytest.raises(ConfigError, match="does not fit the robotiq_urcap gripper"):
        attach_gripper(harness.node, "robotiq_urcap", json.dumps({"baud": 9600}), "127.0.0.1", lambda: False)
    with pytest.raises(ConfigError, match="is not a JSON object"):
        attach_gripper(harness.node, "robotiq_urcap", "[1, 2]", "127.0.0.1", lambda: False)
    with pytest.raises(ConfigError, match="unknown gripper kind 'vacuum'"):
        attach_gripper(harness.node, "vacuum", "{}", "", lambda: False)


def test_controller_node_serves_the_gripper_named_by_its_parameters(procs: ProcessGroup, ros_env, harness,
                                                                    tmp_path) -> None:
    fake_ur = start_fake_ur(procs, "ur5")
    port = free_port(fake_ur.host)
    start_fake_robotiq(procs, "--object-width-m", "0.05", urcap_host=fake_ur.host, port=port)
    values = {"robot": "ur5", "robot_ip": fake_ur.host, "gripper": "robotiq_urcap",
              "gripper_options_json": json.dumps({"port": port})}
    params = tmp_path / "controller.yaml"
    params.write_text(yaml.safe_dump({"controller_node": {"ros__parameters": values}}))
    procs.start_python("controller_node", "spatial_trace_ros.nodes.controller_node",
                       ["--ros-args", "--params-file", str(params)], env=ros_env)
    activated = harness.call(Trigger, "/controller_node/gripper_activate", Trigger.Request(), timeout_s=60.0)
    assert activated.success, activated.message
    closed = harness.call(Trigger, "/controller_node/gripper_close", Trigger.Request())
    assert closed.success and closed.message == "closed: holding an object at 50.0 mm", closed.message


def test_describe_says_what_the_operator_needs() -> None:
    held = GripperState(stamp_s=0.0, width_m=0.0412, object_detected=True)
    assert describe(held) == "holding an object at 41.2 mm"
    assert describe(GripperState(stamp_s=0.0, width_m=0.0)) == "at 0.0 mm, nothing held"
    assert describe(GripperState(stamp_s=0.0, width_m=0.0), senses_object=False) == "at 0.0 mm (no object sensor)"
    assert describe(GripperState(stamp_s=0.0, width_m=0.085, activated=False)).startswith("not activated")
    assert describe(GripperState(stamp_s=0.0, width_m=0.01, fault="Robotiq fault 0x0E: x")) == "Robotiq fault 0x0E: x"
