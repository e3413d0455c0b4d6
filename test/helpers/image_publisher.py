"""A separate ROS process that publishes a deterministic rgb8 test image until stopped (run by the
nodes' own ``run_node``, so with the same Fast DDS setup as the nodes)."""

from __future__ import annotations

import sys

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image

from spatial_trace_ros.ros.conversions import image_to_msg
from spatial_trace_ros.ros.qos import SENSOR_RELIABLE
from spatial_trace_ros.ros.runner import run_node


def test_pattern(width: int, height: int, seed: int) -> np.ndarray:
    """Random pixels: any corruption, shift or channel swap changes them."""
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def make_node(width: int, height: int, seed: int) -> Node:
    node = Node("image_publisher")
    pub = node.create_publisher(Image, "/test/image", SENSOR_RELIABLE)
    msg = image_to_msg(test_pattern(width, height, seed), "rgb8", 12.5, "camera_color_optical_frame")
    node.create_timer(0.1, lambda: pub.publish(msg))
    return node


def main() -> None:
    width, height, seed = (int(a) for a in sys.argv[1:4])
    run_node(lambda: make_node(width, height, seed), args=[])


if __name__ == "__main__":
    main()
