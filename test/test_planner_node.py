"""planner_node in its own process: traces published from this process come back as a plan, waypoints,
a verdict and RViz markers with the expected content; a trace through a keep-out zone is refused with
that reason and no plan; invalid parameter changes are refused and the old value kept."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseArray
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, SetParameters
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import Marker, MarkerArray

from helpers.trace_messages import TraceSender
from spatial_trace_ros.geometry import Transform
from spatial_trace_ros.robots.ur.kinematics import ur5e
from spatial_trace_ros.ros.conversions import make_header, stamp_to_seconds
from spatial_trace_ros.ros.plan_msgs import joint_trajectory_to_plan
from spatial_trace_ros.ros.qos import LATCHED, STATE
from spatial_trace_ros.ros.safety_msgs import diagnostics_safety_values

pytestmark = pytest.mark.integration

HOME = np.array([0.0, -np.pi / 2, np.pi / 2, -np.pi / 2, -np.pi / 2, 0.0])
CAMERA = "camera_color_optical_frame"
BASE_T_CAMERA = Transform.from_rpy([-0.4, 0.0, 0.8], [np.pi, 0.0, 0.0], "base", CAMERA)  # looking straight down
FIXTURE = {"name": "fixture", "shape": "box", "min_m": [-0.5, 0.1, 0.0], "max_m": [-0.3, 0.2, 0.4]}


def write_configs(tmp_path: Path) -> tuple[Path, Path]:
    cal = tmp_path / "calibration.yaml"
    cal.write_text(yaml.safe_dump({
        "mode": "eye_to_hand", "parent_frame": "base", "camera_frame": CAMERA,
        "translation_m": [-0.4, 0.0, 0.8], "rotation": {"rpy_rad": [float(np.pi), 0.0, 0.0]},
    }))
    shipped = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "safety.yaml").read_text())
    shipped["keep_out_zones"].append(FIXTURE)
    safety = tmp_path / "safety.yaml"
    safety.write_text(yaml.safe_dump(shipped))
    return cal, safety


def safety_values(msg: DiagnosticArray) -> dict[str, str]:
    values = diagnostics_safety_values(msg)
    assert values is not None
    return values


def markers_by_ns(msg: MarkerArray) -> dict[str, Marker]:
    assert msg.markers[0].action == Marker.DELETEALL
    return {m.ns: m for m in msg.markers[1:]}


def set_param(harness, name: str, value: ParameterValue) -> object:
    req = SetParameters.Request(parameters=[Parameter(name=name, value=value)])
    return harness.call(SetParameters, "/planner_node/set_parameters", req).results[0]


def get_param(harness, name: str) -> ParameterValue:
    return harness.call(GetParameters, "/planner_node/get_parameters", GetParameters.Request(names=[name])).values[0]


def test_planner_node_end_to_end(procs, ros_env, harness, tmp_path: Path) -> None:
    cal, safety = write_configs(tmp_path)
    plans = harness.collect(JointTrajectory, "/spatial_trace/plan", LATCHED)
    waypoints = harness.collect(PoseArray, "/spatial_trace/waypoints", LATCHED)
    verdicts = harness.collect(DiagnosticArray, "/spatial_trace/safety", LATCHED)
    markers = harness.collect(MarkerArray, "/spatial_trace/markers", LATCHED)
    sender = TraceSender(harness, BASE_T_CAMERA)
    joints_pub = harness.publisher(JointState, "/joint_states", STATE)
    node = procs.start("planner_node", [
        sys.executable, "-m", "spatial_trace_ros.nodes.planner_node", "--ros-args",
        "-p", f"calibration_file:={cal}", "-p", f"safety_file:={safety}", "-p", "spacing_m:=0.01",
        "-p", "max_trace_age_s:=30.0",
    ], env=ros_env)
    harness.wait(lambda: markers or not node.alive(), 30.0, "the cell markers from planner_node")
    assert node.alive(), node.output()
    cell = markers_by_ns(markers[-1])
    assert {"workspace", "table", "keep_out"} <= set(cell) and "verdict" not in cell

    # 1. No joint state yet: planned from initial_joints_rad, and the verdict says so.
    sender.wait_for_planner()
    good = np.c_[np.linspace(-0.35, -0.35, 16), np.linspace(-0.25, 0.05, 16), np.full(16, 0.2)]
    sender.send(good)
    harness.wait(lambda: plans and verdicts, 30.0, "a plan and a verdict")
    first = safety_values(verdicts[-1])
    assert first["verdict"] == "ACCEPT" and first["codes"] == "NO_JOINT_STATE", first
    assert "initial_joints_rad" in first["message"] and first["source"] == "planner"
    assert verdicts[-1].status[0].level == DiagnosticStatus.OK

    # 2. With joint states: the plan starts where the robot is and follows the trace.
    def publish_joints() -> None:
        msg = JointState(header=make_header(harness.node.get_clock().now().nanoseconds * 1e-9, ""))
        msg.name = ["elbow_joint", "shoulder_lift_joint", "shoulder_pan_joint", "wrist_1_joint", "wrist_2_joint",
                    "wrist_3_joint", "other_measured_joint"]  # any order, more joints (G1: waist): matched by name
        msg.position = [float(HOME[2]), float(HOME[1]), float(HOME[0]), *map(float, HOME[3:]), 1.0]
        joints_pub.publish(msg)

    harness.node.create_timer(0.05, publish_joints)
    harness.wait(lambda: joints_pub.get_subscription_count() > 0, 10.0, "planner_node on /joint_states")
    for _ in range(50):  # until the node has heard a joint state (discovery takes a moment)
        n_plans, n_verdicts = len(plans), len(verdicts)
        sender.send(good)
        harness.wait(lambda p=n_plans, v=n_verdicts: len(plans) > p and len(verdicts) > v, 30.0, "the next plan")
        if "NO_JOINT_STATE" not in safety_values(verdicts[-1])["codes"]:
            break
    harness.wait(lambda: waypoints and len(waypoints[-1].poses) == len(plans[-1].points), 10.0, "its waypoints")
    values = safety_values(verdicts[-1])
    assert values["verdict"] == "ACCEPT" and values["codes"] == "", values
    msg = plans[-1]
    plan = joint_trajectory_to_plan(msg, ur5e())
    np.testing.assert_allclose(plan.joints[0], HOME, atol=1e-6)
    assert msg.header.frame_id == "base" and float(values["n_waypoints"]) == len(plan)
    assert float(values["plan_stamp_s"]) == pytest.approx(stamp_to_seconds(msg.header.stamp), abs=1e-6)
    assert float(values["duration_s"]) == pytest.approx(plan.duration_s, abs=1e-3)
    speeds = np.linalg.norm(np.diff(plan.positions, axis=0), axis=1) / np.diff(plan.times_s)
    assert speeds.max() <= 0.25 * (1 + 1e-6)
    on_trace = plan.positions[np.isclose(plan.positions[:, 2], 0.2, atol=1e-6)]
    np.testing.assert_allclose(on_trace[[0, -1]], good[[0, -1]], atol=1e-6)
    wp = waypoints[-1]
    assert wp.header.frame_id == "base" and len(wp.poses) == len(plan)
    np.testing.assert_allclose([wp.poses[-1].position.x, wp.poses[-1].position.y, wp.poses[-1].position.z],
                               plan.positions[-1], atol=1e-6)
    def drawn_plan_size() -> int:  # markers of an earlier plan may still be the latest to arrive
        sphere_list = markers_by_ns(markers[-1]).get("waypoints")
        return -1 if sphere_list is None else len(sphere_list.points)

    harness.wait(lambda: drawn_plan_size() == len(plan), 10.0, "the markers of this plan")
    drawn = markers_by_ns(markers[-1])
    assert drawn["trace"].type == Marker.LINE_STRIP and len(drawn["trace"].points) == 16
    assert drawn["waypoints"].type == Marker.SPHERE_LIST and len(drawn["waypoints"].points) == len(plan)
    assert drawn["waypoints"].colors[0].g > 0.5 and drawn["waypoints"].colors[0].r < 0.5  # green: accepted
    assert drawn["verdict"].text.startswith("ACCEPT") and drawn["keep_out"].header.frame_id == "base"

    # 3. A trace through the keep-out zone: refused with that reason, no plan, red markers with the reason.
    n_plans, n_verdicts = len(plans), len(verdicts)
    bad = np.c_[np.full(16, -0.4), np.linspace(0.0, 0.3, 16), np.full(16, 0.2)]
    sender.send(bad)
    harness.wait(lambda: len(verdicts) > n_verdicts, 30.0, "the refusal")
    values = safety_values(verdicts[-1])
    assert values["verdict"] == "REJECT" and "KEEP_OUT_ZONE" in values["codes"].split(","), values
    assert "'fixture'" in values["message"] and verdicts[-1].status[0].level == DiagnosticStatus.ERROR
    harness.wait(lambda: markers_by_ns(markers[-1]).get("verdict") is not None
                 and markers_by_ns(markers[-1])["verdict"].text.startswith("REJECT"), 10.0, "refusal markers")
    drawn = markers_by_ns(markers[-1])
    assert "fixture" in drawn["verdict"].text.replace("\n", " ")
    assert drawn["waypoints"].colors[0].r > 0.5 and "problems" in drawn
    # The latched plan is replaced by an empty one, so no controller can run the previous plan.
    harness.wait(lambda: len(plans) > n_plans, 10.0, "the plan withdrawal")
    assert len(plans[-1].points) == 0 and len(plans) == n_plans + 1

    # 4. Parameters: invalid values are refused with a reason and the old value kept.
    result = set_param(harness, "spacing_m", ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=-1.0))
    assert not result.successful and "spacing_m" in result.reason
    assert get_param(harness, "spacing_m").double_value == pytest.approx(0.01)
    result = set_param(harness, "calibration_file",
                       ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=str(tmp_path / "missing.yaml")))
    assert not result.successful and "not found" in result.reason
    assert get_param(harness, "calibration_file").string_value == str(cal)
    result = set_param(harness, "orientation_policy",
                       ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="sideways"))
    assert not result.successful and "orientation_policy" in result.reason
    result = set_param(harness, "spacing_m", ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=0.02))
    assert result.successful
    n_plans = len(plans)
    sender.send(good)
    harness.wait(lambda: len(plans) > n_plans, 30.0, "a plan with the new spacing")
    spaced = joint_trajectory_to_plan(plans[-1], ur5e())
    on_trace = spaced.positions[np.isclose(spaced.positions[:, 2], 0.2, atol=1e-6)]
    assert np.linalg.norm(np.diff(on_trace, axis=0), axis=1).max() == pytest.approx(0.02, abs=1e-6)
    assert node.alive(), node.output()
