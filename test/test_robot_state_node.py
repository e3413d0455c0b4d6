"""robot_state_node in its own process: /robot_description (latched) is the URDF of the planner's
kinematics, /tf_static carries the fixed joints and an eye-to-hand camera, and /joint_states become
link TF on /tf that chain to the planner's FK, with an eye-in-hand camera placed on the tool."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from spatial_trace_ros.geometry.calibration import load_calibration
from spatial_trace_ros.geometry.transforms import Transform
from spatial_trace_ros.nodes.robot_state_node import TF_QOS, TF_STATIC_QOS
from spatial_trace_ros.robots.model import make_robot_model
from spatial_trace_ros.ros.conversions import make_header
from spatial_trace_ros.ros.qos import LATCHED, STATE
from spatial_trace_ros.ros.tf import TF_MISSING_HINT, TFMessage
from spatial_trace_ros.tools.description import default_tool

pytestmark = pytest.mark.integration
pin = pytest.importorskip("pinocchio")
CONFIG = Path(__file__).resolve().parents[1] / "config"


def edges(messages: list) -> dict[str, tuple[str, np.ndarray]]:
    """child -> (parent, parent_T_child) from TFMessages (later ones win)."""
    out = {}
    for msg in messages:
        for t in msg.transforms:
            tr, r = t.transform.translation, t.transform.rotation
            tf = Transform.from_quaternion_xyzw((tr.x, tr.y, tr.z), (r.x, r.y, r.z, r.w))
            out[t.child_frame_id] = (t.header.frame_id, tf.matrix)
    return out


def chain(tree: dict[str, tuple[str, np.ndarray]], root: str, frame: str) -> np.ndarray:
    T = np.eye(4)
    while frame != root:
        parent, step = tree[frame]
        T = step @ T
        frame = parent
    return T


def start_node(procs, ros_env, robot: str, calibration: Path, tool: str = ""):
    return procs.start("robot_state_node", [
        sys.executable, "-m", "spatial_trace_ros.nodes.robot_state_node", "--ros-args",
        "-p", f"robot:={robot}", "-p", f"calibration_file:={calibration}", *(["-p", f"tool:={tool}"] if tool else []),
    ], env=ros_env)


def test_ur5e_description_link_tf_and_eye_in_hand_camera(procs, ros_env, harness, tmp_path: Path) -> None:
    if TFMessage is None:
        pytest.skip(TF_MISSING_HINT)
    calibration = tmp_path / "wrist_camera.yaml"
    calibration.write_text(yaml.safe_dump({
        "mode": "eye_in_hand", "parent_frame": "tool0", "camera_frame": "camera_color_optical_frame",
        "translation_m": [0.0, -0.08, 0.04], "rotation": {"rpy_rad": [0.0, 0.0, float(np.pi)]},
    }))
    model = make_robot_model("ur5e")
    descriptions = harness.collect(String, "/robot_description", LATCHED)
    static = harness.collect(TFMessage, "/tf_static", TF_STATIC_QOS)
    moving = harness.collect(TFMessage, "/tf", TF_QOS)
    joints_pub = harness.publisher(JointState, "/joint_states", STATE)
    node = start_node(procs, ros_env, "ur5e", calibration)
    harness.wait(lambda: (descriptions and static) or not node.alive(), 30.0, "the description and /tf_static")
    assert node.alive(), node.output()

    pin_model = pin.buildModelFromXML(descriptions[-1].data)
    assert [pin_model.names[i] for i in range(1, pin_model.njoints)] == list(model.joint_names)
    fixed = {t.child_frame_id for t in static[-1].transforms}
    assert {"base", "tool0", "tcp"} <= fixed and "camera_color_optical_frame" not in fixed  # eye-in-hand moves

    q = np.array([0.4, -1.1, 1.3, -1.7, -1.4, 0.6])
    names = list(reversed(model.joint_names))  # any order: matched by name

    def publish() -> None:
        msg = JointState(header=make_header(harness.node.get_clock().now().nanoseconds * 1e-9, ""))
        msg.name, msg.position = names, [float(q[model.joint_names.index(n)]) for n in names]
        joints_pub.publish(msg)

    harness.node.create_timer(0.05, publish)
    harness.wait(lambda: moving, 30.0, "link TF on /tf")
    tree = edges(static + moving)
    np.testing.assert_allclose(chain(tree, "base", "tool0"), model.fk(q), atol=1e-6)
    expected_camera = model.fk(q) @ load_calibration(calibration).transform.matrix
    parent, base_T_camera = tree["camera_color_optical_frame"]
    assert parent == "base"
    np.testing.assert_allclose(base_T_camera, expected_camera, atol=1e-6)


def test_g1_eye_to_hand_head_camera_on_tf_static(procs, ros_env, harness) -> None:
    if TFMessage is None:
        pytest.skip(TF_MISSING_HINT)
    calibration = CONFIG / "calibration.g1_head.yaml"
    descriptions = harness.collect(String, "/robot_description", LATCHED)
    static = harness.collect(TFMessage, "/tf_static", TF_STATIC_QOS)
    node = start_node(procs, ros_env, "g1_left_arm", calibration)
    harness.wait(lambda: (descriptions and static) or not node.alive(), 30.0, "the description and /tf_static")
    assert node.alive(), node.output()
    assert "left_shoulder_pitch_joint" in descriptions[-1].data
    parent, torso_T_camera = edges(static)["camera_color_optical_frame"]
    assert parent == "torso_link"
    np.testing.assert_allclose(torso_T_camera, load_calibration(calibration).transform.matrix, atol=1e-6)


def test_bad_calibration_file_is_one_clear_line(procs, ros_env, tmp_path: Path) -> None:
    node = start_node(procs, ros_env, "ur5", tmp_path / "missing.yaml")
    assert node.popen.wait(timeout=60) == 2
    assert "calibration file" in node.output() and "Traceback" not in node.output()


def test_the_tool_of_the_tool_parameter_is_in_the_description(procs, ros_env, harness) -> None:
    """tool:=default puts the robot's gripper (its collision shapes) on tool0 and tcp where the tool
    description puts the TCP, so RViz shows the robot and its tool."""
    if TFMessage is None:
        pytest.skip(TF_MISSING_HINT)
    tool = default_tool("ur5e")
    descriptions = harness.collect(String, "/robot_description", LATCHED)
    static = harness.collect(TFMessage, "/tf_static", TF_STATIC_QOS)
    node = start_node(procs, ros_env, "ur5e", CONFIG / "calibration.sim.yaml", tool="default")
    harness.wait(lambda: (descriptions and static) or not node.alive(), 30.0, "the description and /tf_static")
    assert node.alive(), node.output()
    urdf = descriptions[-1].data
    pin_model = pin.buildModelFromXML(urdf)
    data = pin_model.createData()
    q = np.array([0.3, -1.2, 1.4, -1.6, -1.5, 0.2])
    pin.framesForwardKinematics(pin_model, data, q)
    base_T_tcp = data.oMf[pin_model.getFrameId("base")].inverse() * data.oMf[pin_model.getFrameId("tcp")]
    np.testing.assert_allclose(base_T_tcp.homogeneous, make_robot_model("ur5e").fk(q) @ tool.flange_T_tcp, atol=1e-6)
    geometry = pin.buildGeomFromUrdfString(pin_model, urdf, pin.GeometryType.COLLISION)
    on_tool = [g for g in geometry.geometryObjects if pin_model.frames[g.parentFrame].name == f"{tool.name}_link"]
    assert len(on_tool) == 4  # the coupling capsule (cylinder and two spheres) and the finger box
    parent, tool0_T_tcp = edges(static)["tcp"]
    assert parent == "tool0"
    np.testing.assert_allclose(tool0_T_tcp, tool.flange_T_tcp, atol=1e-9)


def test_bad_tool_is_one_clear_line(procs, ros_env, tmp_path: Path) -> None:
    node = start_node(procs, ros_env, "ur5e", CONFIG / "calibration.sim.yaml", tool=str(tmp_path / "gripper.yaml"))
    assert node.popen.wait(timeout=60) == 2
    assert "tool description" in node.output() and "Traceback" not in node.output()
def test_beside_robot_state_publisher_only_the_camera(procs, ros_env, harness, tmp_path: Path) -> None:
    """publish_robot_tf:=false (robot_state_publisher:=true in the launch files): no description, no link
    TF from this node, which robot_state_publisher publishes; the eye-in-hand camera still follows the tool."""
    if TFMessage is None:
        pytest.skip(TF_MISSING_HINT)
    calibration = tmp_path / "wrist_camera.yaml"
    calibration.write_text(yaml.safe_dump({
        "mode": "eye_in_hand", "parent_frame": "tool0", "camera_frame": "camera_color_optical_frame",
        "translation_m": [0.0, -0.08, 0.04], "rotation": {"rpy_rad": [0.0, 0.0, 0.0]},
    }))
    model = make_robot_model("ur5e")
    descriptions = harness.collect(String, "/robot_description", LATCHED)
    static = harness.collect(TFMessage, "/tf_static", TF_STATIC_QOS)
    moving = harness.collect(TFMessage, "/tf", TF_QOS)
    joints_pub = harness.publisher(JointState, "/joint_states", STATE)
    node = procs.start("robot_state_node", [
        sys.executable, "-m", "spatial_trace_ros.nodes.robot_state_node", "--ros-args",
        "-p", "robot:=ur5e", "-p", f"calibration_file:={calibration}", "-p", "publish_robot_tf:=false",
    ], env=ros_env)
    q = np.array([0.2, -1.0, 1.1, -1.5, -1.3, 0.4])

    def publish() -> None:
        msg = JointState(header=make_header(harness.node.get_clock().now().nanoseconds * 1e-9, ""))
        msg.name, msg.position = list(model.joint_names), [float(x) for x in q]
        joints_pub.publish(msg)

    harness.node.create_timer(0.05, publish)
    harness.wait(lambda: moving or not node.alive(), 30.0, "the camera TF on /tf")
    assert node.alive(), node.output()
    assert {t.child_frame_id for msg in moving for t in msg.transforms} == {"camera_color_optical_frame"}
    assert not descriptions and not static, "robot_state_publisher publishes the description and fixed links"
    parent, base_T_camera = edges(moving)["camera_color_optical_frame"]
    assert parent == "base"
    np.testing.assert_allclose(base_T_camera, model.fk(q) @ load_calibration(calibration).transform.matrix, atol=1e-6)
