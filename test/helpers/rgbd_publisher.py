"""A separate ROS process that publishes a synthetic aligned RGB-D camera under realsense-ros names.

Color: seeded random rgb8 pixels; depth: a ramp (1000 + v) millimetres, so the depth under any pixel
is known exactly; camera_info: a 640x480 pinhole (fx = fy = 500, cx = 320, cy = 240). Every message
of a set carries the same, current stamp. Reliable QoS; run by the nodes' own ``run_node``, so it
starts with the package's large-message Fast DDS profile and no image is lost on the way.

Usage: ``python -m helpers.rgbd_publisher [rate_hz]``
"""

from __future__ import annotations

import sys
import time

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from spatial_trace_ros.geometry.camera_model import CameraIntrinsics
from spatial_trace_ros.ros.conversions import image_to_msg, intrinsics_to_camera_info
from spatial_trace_ros.ros.qos import SENSOR_RELIABLE
from spatial_trace_ros.ros.runner import run_node

WIDTH, HEIGHT = 640, 480
INTRINSICS = CameraIntrinsics(WIDTH, HEIGHT, 500.0, 500.0, 320.0, 240.0)
FRAME_ID = "camera_color_optical_frame"
SEED = 11


def color_pattern() -> np.ndarray:
    return np.random.default_rng(SEED).integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)


def depth_ramp_mm() -> np.ndarray:
    """Depth in millimetres: 1000 + row index (1.000 m at the top, 1.479 m at the bottom)."""
    return np.repeat((1000 + np.arange(HEIGHT, dtype=np.uint16))[:, None], WIDTH, axis=1)


def make_node(rate_hz: float) -> Node:
    node = Node("rgbd_publisher")
    color_pub = node.create_publisher(Image, "/camera/camera/color/image_raw", SENSOR_RELIABLE)
    info_pub = node.create_publisher(CameraInfo, "/camera/camera/color/camera_info", SENSOR_RELIABLE)
    depth_pub = node.create_publisher(Image, "/camera/camera/aligned_depth_to_color/image_raw", SENSOR_RELIABLE)
    color, depth = color_pattern(), depth_ramp_mm()

    def publish() -> None:
        stamp = time.time()
        info_pub.publish(intrinsics_to_camera_info(INTRINSICS, stamp, FRAME_ID))
        depth_pub.publish(image_to_msg(depth, "16UC1", stamp, FRAME_ID))
        color_pub.publish(image_to_msg(color, "rgb8", stamp, FRAME_ID))

    node.create_timer(1.0 / rate_hz, publish)
    return node


def main() -> None:
    rate_hz = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    run_node(lambda: make_node(rate_hz), args=[])


if __name__ == "__main__":
    main()
