"""A separate ROS process that publishes a deterministic 1280x720 rgb8 test image until stopped."""

from __future__ import annotations

import sys

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import Image

from spatial_trace_ros.ros.conversions import image_to_msg
from spatial_trace_ros.ros.qos import SENSOR_RELIABLE


def test_pattern(width: int, height: int, seed: int) -> np.ndarray:
    """Random pixels: any corruption, shift or channel swap changes them."""
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def main() -> None:
    width, height, seed = (int(a) for a in sys.argv[1:4])
    rclpy.init()
    node = Node("image_publisher")
    pub = node.create_publisher(Image, "/test/image", SENSOR_RELIABLE)
    msg = image_to_msg(test_pattern(width, height, seed), "rgb8", 12.5, "camera_color_optical_frame")
    node.create_timer(0.1, lambda: pub.publish(msg))
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
