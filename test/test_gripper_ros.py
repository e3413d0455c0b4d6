"""The gripper over ROS, with its one owner: controller_node in its own process, whose real-time worker
holds a Robotiq client talking to the fake gripper process (URCap socket on the fake UR's address); an
operator node calls the manual services and reads /joint_states and the status topic through DDS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import JointState

from helpers.controller_operator import Operator
from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.robots.gripper_owner import describe, make_gripper
from spatial_trace_ros.robots.model import make_robot_model
from spatial_trace_ros.ros.qos import STATE
from spatial_trace_ros.testing.fake_robotiq import start_fake_robotiq
from spatial_trace_ros.testing.fake_ur.client import FakeUrClient, start_fake_ur
from spatial_trace_ros.testing.processes import ProcessGroup, free_port
from spatial_trace_ros.tools.description import default_tool
from spatial_trace_ros.tools.gripper import GripperState

pytestmark = pytest.mark.integration
FINGER = "gripper_finger_joint"


def start_controller(procs: ProcessGroup, ros_env, tmp_path: Path, fake_ur: FakeUrClient, port: int):
    values = {"robot": "ur5", "robot_ip": fake_ur.host, "gripper": "robotiq_urcap",
              "gripper_options_json": json.dumps({"port": port}), "estop_latch_file": str(tmp_path / "estop.json"),
              "driver_options_json": json.dumps({"watchdog_min_hz": 5.0})}
    params = tmp_path / "controller.yaml"
    params.write_text(yaml.safe_dump({"controller_node": {"ros__parameters": values}}))
    return procs.start_python("controller_node", "spatial_trace_ros.nodes.controller_node",
                              ["--ros-args", "--params-file", str(params)], env=ros_env)


def finger_of(msg: JointState) -> float | None:
    return msg.position[list(msg.name).index(FINGER)] if FINGER in msg.name else None


def newest(statuses: list[DiagnosticArray]) -> DiagnosticStatus:
    return statuses[-1].status[0]


def values_of(statuses: list[DiagnosticArray]) -> dict[str, str]:
    return {v.key: v.value for v in newest(statuses).values} if statuses else {}


def test_manual_commands_and_state_through_the_controllers_worker(procs: ProcessGroup, ros_env, harness,
                                                                   tmp_path: Path) -> None:
    fake_ur = start_fake_ur(procs, "ur5")
    port = free_port(fake_ur.host)
    start_fake_robotiq(procs, "--object-width-m", "0.05", urcap_host=fake_ur.host, port=port)
    op = Operator(harness)
    statuses = harness.collect(DiagnosticArray, "/spatial_trace/gripper_status", STATE)
    fingers = harness.collect(JointState, "/joint_states", STATE)
    start_controller(procs, ros_env, tmp_path, fake_ur, port)
    harness.wait(lambda: statuses and "not activated" in newest(statuses).message, 60.0, "the gripper's status")
    assert newest(statuses).level == DiagnosticStatus.WARN  # without a tool, activation is the operator's
    assert newest(statuses).hardware_id.endswith(f"URCap socket {fake_ur.host}:{port}")  # host = robot_ip

    failed = op.call("gripper_close")  # never activated: the gripper's own answer comes back
    assert not failed.success and "gripper close failed" in failed.message and "not activated" in failed.message
    activated = op.call("gripper_activate")
    assert activated.success, activated.message
    closed = op.call("gripper_close")
    assert closed.success and closed.message == "closed: holding an object at 50.0 mm", closed.message
    harness.wait(lambda: finger_of(fingers[-1]) == pytest.approx(0.05, abs=5e-4), 10.0,
                 "the finger joint at the object's width")
    assert list(fingers[-1].name[:6]) == list(make_robot_model("ur5").joint_names)  # with the arm, one message
    harness.wait(lambda: values_of(statuses).get("object_detected") == "true", 10.0, "the held object in the status")
    assert newest(statuses).level == DiagnosticStatus.OK and values_of(statuses)["last_command"] == "close"

    opened = op.call("gripper_open")
    assert opened.success and opened.message == "opened: at 85.0 mm, nothing held", opened.message
    op.estop(True)  # the fingers are motion too: nothing moves while the e-stop is engaged
    harness.wait(lambda: not op.call("gripper_close").success, 10.0, "the e-stop to refuse the gripper")
    refused = op.call("gripper_close")
    assert "e-stop is engaged" in refused.message, refused.message


def test_a_gripper_that_comes_up_later_is_reported_and_retried(procs: ProcessGroup, ros_env, harness,
                                                               tmp_path: Path) -> None:
    fake_ur = start_fake_ur(procs, "ur5")
    port = free_port(fake_ur.host)
    op = Operator(harness)
    statuses = harness.collect(DiagnosticArray, "/spatial_trace/gripper_status", STATE)
    start_controller(procs, ros_env, tmp_path, fake_ur, port)
    op.wait_connected()  # the arm does not wait for the gripper
    harness.wait(lambda: statuses and "cannot connect" in newest(statuses).message, 30.0,
                 "the status to say the gripper cannot be reached")
    assert newest(statuses).level == DiagnosticStatus.WARN and values_of(statuses)["reachable"] == "false"
    start_fake_robotiq(procs, urcap_host=fake_ur.host, port=port)
    harness.wait(lambda: "not activated" in newest(statuses).message, 30.0, "the gripper reconnected")


def test_make_gripper_builds_the_configured_one_or_says_what_is_wrong() -> None:
    assert make_gripper("", None, {}) is None and make_gripper("none", default_tool("ur5e"), {}) is None
    robotiq = make_gripper("robotiq_urcap", None, {"port": 63399}, robot_ip="192.0.2.7")
    assert robotiq is not None and robotiq.endpoint.endswith("192.0.2.7:63399")  # host defaults to robot_ip
    with pytest.raises(ConfigError, match="does not fit the robotiq_urcap gripper"):
        make_gripper("robotiq_urcap", None, {"baud": 9600}, robot_ip="127.0.0.1")
    with pytest.raises(ConfigError, match="needs host"):
        make_gripper("robotiq_urcap", None, {})
    with pytest.raises(ConfigError, match="tool:=default"):
        make_gripper("sim", None, {})
    with pytest.raises(ConfigError, match="unknown gripper kind 'vacuum'"):
        make_gripper("vacuum", None, {})


def test_describe_says_what_the_operator_needs() -> None:
    held = GripperState(stamp_s=0.0, width_m=0.0412, object_detected=True)
    assert describe(held) == "holding an object at 41.2 mm"
    assert describe(GripperState(stamp_s=0.0, width_m=0.0)) == "at 0.0 mm, nothing held"
    assert describe(GripperState(stamp_s=0.0, width_m=0.0), senses_object=False) == "at 0.0 mm (no object sensor)"
    assert describe(GripperState(stamp_s=0.0, width_m=0.085, activated=False)).startswith("not activated")
    assert describe(GripperState(stamp_s=0.0, width_m=0.01, fault="Robotiq fault 0x0E: x")) == "Robotiq fault 0x0E: x"
