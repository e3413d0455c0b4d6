"""The shipped RViz config shows robot, tool, trace, plan, markers and overlay, each display subscribed
to a topic the stack publishes, with a QoS that matches the publisher's (a transient-local or reliable
subscriber never hears a volatile or best-effort publisher)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from spatial_trace_ros.nodes import planner_node, robot_state_node, trace_node
from spatial_trace_ros.ros.qos import LATCHED

RVIZ = Path(__file__).resolve().parents[1] / "config" / "rviz" / "spatial_trace.rviz"
# What each display's topic is published with (the node modules' topic names and QoS).
PUBLISHED: dict[str, QoSProfile] = {
    robot_state_node.TOPICS["robot_description"]: LATCHED,
    planner_node.TOPICS["markers"]: LATCHED,
    planner_node.TOPICS["waypoints"]: LATCHED,
    trace_node.TOPICS["trace"]: LATCHED,
    trace_node.TOPICS["overlay"]: LATCHED,
}
NEEDED = {
    "rviz_default_plugins/RobotModel": "/robot_description",
    "rviz_default_plugins/MarkerArray": "/spatial_trace/markers",
    "rviz_default_plugins/PoseArray": "/spatial_trace/waypoints",
    "rviz_default_plugins/Image": "/spatial_trace/overlay",
    "rviz_default_plugins/Path": "/spatial_trace/trace",
}


def displays() -> list[dict]:
    return yaml.safe_load(RVIZ.read_text())["Visualization Manager"]["Displays"]


def test_every_needed_display_is_there() -> None:
    shown = {(d["Class"], (d.get("Topic") or d.get("Description Topic") or {}).get("Value")) for d in displays()}
    for cls, topic in NEEDED.items():
        assert (cls, topic) in shown, f"{RVIZ.name} lacks a {cls} display of {topic}"
    tf = next(d for d in displays() if d["Class"] == "rviz_default_plugins/TF")
    assert {"base", "tool0", "tcp", "camera_color_optical_frame"} <= set(tf["Frames"]) - {"All Enabled"}
    robot = next(d for d in displays() if d["Class"] == "rviz_default_plugins/RobotModel")
    assert robot["Enabled"] and robot["Visual Enabled"] and robot["Description Source"] == "Topic"


@pytest.mark.parametrize("display", [d for d in displays() if d.get("Topic") or d.get("Description Topic")],
                         ids=lambda d: d["Name"])
def test_display_qos_matches_the_publisher(display: dict) -> None:
    topic = display.get("Topic") or display["Description Topic"]
    publisher = PUBLISHED[topic["Value"]]
    if topic.get("Durability Policy") == "Transient Local":
        assert publisher.durability == DurabilityPolicy.TRANSIENT_LOCAL, f"{display['Name']}: publisher is volatile"
    if topic.get("Reliability Policy") == "Reliable":
        assert publisher.reliability == ReliabilityPolicy.RELIABLE, f"{display['Name']}: publisher is best effort"


def test_fixed_frame_is_the_planners_base() -> None:
    assert yaml.safe_load(RVIZ.read_text())["Visualization Manager"]["Global Options"]["Fixed Frame"] == "base"


@pytest.mark.parametrize(("robot", "fixed_frame"), [("ur5e", "base"), ("ur5", "base"), ("g1_left_arm", "torso_link")])
def test_the_fixed_frame_bringup_passes_is_a_link_of_the_robot(robot: str, fixed_frame: str) -> None:
    """RViz's fixed frame (the calibration's parent, passed with -f) is in the robot's TF tree, so the
    markers and waypoints (in the planner's base frame) are drawn against the robot."""
    from spatial_trace_ros.robots.description import build_description
    from spatial_trace_ros.robots.model import make_robot_model

    links = {link.name for link in build_description(robot).links}
    assert fixed_frame in links and make_robot_model(robot).base_frame == fixed_frame
