"""``robot_state_node``: the robot for RViz and every TF user.

Publishes ``/robot_description`` (std_msgs/String, transient local) built from the planner's own
kinematic facts (``robots/description``) with the tool of the ``tool`` parameter (its shapes and
``tcp``), the fixed joints and an eye-to-hand camera on
``/tf_static``, and for every ``/joint_states`` message the links' TF (and an eye-in-hand camera,
placed by the planner's FK) on ``/tf``. With ``publish_robot_tf: false`` it leaves the description
and the links to robot_state_publisher (``robot_state_publisher:=true`` in the launch files) and
publishes only the camera, so no topic or frame ever has two publishers.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from spatial_trace_ros.geometry.calibration import camera_tf, load_calibration
from spatial_trace_ros.geometry.transforms import Transform
from spatial_trace_ros.robots.description import build_description
from spatial_trace_ros.robots.description.node_config import RobotStateNodeConfig
from spatial_trace_ros.robots.description.state import fixed_transforms, joint_transforms
from spatial_trace_ros.robots.description.tool import tool_geometry
from spatial_trace_ros.robots.model import make_robot_model
from spatial_trace_ros.ros.conversions import stamp_to_seconds
from spatial_trace_ros.ros.params import ParameterBinding
from spatial_trace_ros.ros.qos import LATCHED, STATE
from spatial_trace_ros.ros.runner import run_node
from spatial_trace_ros.ros.tf import TF_MISSING_HINT, TFMessage, tf_message
from spatial_trace_ros.tools.description import resolve_tool

TOPICS = {
    "robot_description": "/robot_description",
    "joint_states": "/joint_states",
    "tf": "/tf",
    "tf_static": "/tf_static",
}
# The QoS tf2_ros' broadcasters use: /tf reliable with a deep queue, /tf_static latched.
TF_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.VOLATILE)
TF_STATIC_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)


class RobotStateNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("robot_state_node", **kwargs)
        cfg: RobotStateNodeConfig = ParameterBinding(self, RobotStateNodeConfig).config
        self._model = make_robot_model(cfg.robot)
        self._description = build_description(self._model, tool_geometry(resolve_tool(cfg.tool, cfg.robot)))
        self._calibration = load_calibration(cfg.calibration_file) if cfg.calibration_file else None
        self._publish_robot_tf = cfg.publish_robot_tf
        if self._publish_robot_tf:
            self._description_pub = self.create_publisher(String, TOPICS["robot_description"], LATCHED)
            self._description_pub.publish(String(data=self._description.to_urdf()))
        if TFMessage is None:
            self.get_logger().warning(TF_MISSING_HINT)
            return
        self._tf_pub = self.create_publisher(TFMessage, TOPICS["tf"], TF_QOS)
        self._tf_static_pub = self.create_publisher(TFMessage, TOPICS["tf_static"], TF_STATIC_QOS)
        self._publish_static()
        self.create_subscription(JointState, TOPICS["joint_states"], self._on_joint_state, STATE)

    def _publish_static(self) -> None:
        # One message with every static transform: /tf_static keeps only the last message per publisher.
        static = fixed_transforms(self._description) if self._publish_robot_tf else []
        if self._calibration is not None and self._calibration.mode == "eye_to_hand":
            parent, child, tf = camera_tf(self._calibration)
            static.append((parent, child, tf.matrix))
        if static:
            self._tf_static_pub.publish(tf_message(static, self.get_clock().now().nanoseconds * 1e-9))

    def _on_joint_state(self, msg: JointState) -> None:
        positions = {name: float(q) for name, q in zip(msg.name, msg.position)}
        stamp_s = stamp_to_seconds(msg.header.stamp) or self.get_clock().now().nanoseconds * 1e-9
        moving = joint_transforms(self._description, positions) if self._publish_robot_tf else []
        eye_in_hand = self._calibration is not None and self._calibration.mode == "eye_in_hand"
        if eye_in_hand and all(name in positions for name in self._model.joint_names):
            q = np.array([positions[name] for name in self._model.joint_names])
            base_T_tool = Transform(self._model.fk(q), self._model.base_frame, self._model.tool_frame)
            parent, child, tf = camera_tf(self._calibration, base_T_tool)
            moving.append((parent, child, tf.matrix))
        if moving:
            self._tf_pub.publish(tf_message(moving, stamp_s))


def main(args: list[str] | None = None) -> int:
    return run_node(RobotStateNode, args)


if __name__ == "__main__":
    sys.exit(main())
