"""Two real rclpy nodes in separate processes exchange a 1280x720 image; the pixels arrive intact."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from sensor_msgs.msg import Image

from helpers.image_publisher import test_pattern as make_pattern
from spatial_trace_ros.ros.conversions import msg_to_image, stamp_to_seconds
from spatial_trace_ros.ros.qos import SENSOR_RELIABLE

pytestmark = pytest.mark.integration


def test_image_crosses_processes_intact(procs, ros_env, harness) -> None:
    received = harness.collect(Image, "/test/image", SENSOR_RELIABLE)
    procs.start("publisher", [sys.executable, "-m", "helpers.image_publisher", "1280", "720", "7"], env=ros_env)
    harness.wait(lambda: received, 30.0, "an image from the publisher process")
    msg = received[0]
    assert (msg.width, msg.height, msg.encoding, msg.header.frame_id) == (
        1280, 720, "rgb8", "camera_color_optical_frame"
    )
    assert stamp_to_seconds(msg.header.stamp) == pytest.approx(12.5)
    np.testing.assert_array_equal(msg_to_image(msg), make_pattern(1280, 720, 7))
