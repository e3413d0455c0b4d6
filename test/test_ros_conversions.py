"""numpy <-> ROS message conversions, and typed parameters on a real rclpy node."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest
import rclpy
from pydantic import BaseModel, Field
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.geometry import CameraIntrinsics, Trace, Transform
from spatial_trace_ros.ros.conversions import (
    camera_info_to_intrinsics,
    image_to_msg,
    intrinsics_to_camera_info,
    msg_to_image,
    path_to_trace,
    pose_array_to_transforms,
    rgbd_from_msgs,
    seconds_to_stamp,
    stamp_to_seconds,
    trace_to_path,
    transforms_to_pose_array,
)
from spatial_trace_ros.ros.params import ParameterBinding


@pytest.mark.parametrize(
    ("encoding", "dtype", "shape"),
    [("rgb8", np.uint8, (5, 7, 3)), ("16UC1", np.uint16, (5, 7)), ("32FC1", np.float32, (5, 7))],
)
def test_image_round_trip(encoding: str, dtype: type, shape: tuple) -> None:
    arr = (np.arange(np.prod(shape)) * 37 % 251).astype(dtype).reshape(shape)
    msg = image_to_msg(arr, encoding, 3.25, "cam")
    assert msg.step == shape[1] * (shape[2] if len(shape) == 3 else 1) * np.dtype(dtype).itemsize
    np.testing.assert_array_equal(msg_to_image(msg), arr)


def test_padded_rows_and_bad_messages() -> None:
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    msg = image_to_msg(arr, "mono8")
    msg.step = 6
    msg.data = b"".join(bytes(row) + b"\xff\xff" for row in arr)
    np.testing.assert_array_equal(msg_to_image(msg), arr)
    msg.data = msg.data[:10]
    with pytest.raises(ConfigError, match="truncated"):
        msg_to_image(msg)
    with pytest.raises(ConfigError, match="needs a uint8 array with 3"):
        image_to_msg(np.zeros((2, 2), np.uint16), "rgb8")


def test_stamps() -> None:
    assert stamp_to_seconds(seconds_to_stamp(1234.000000123)) == pytest.approx(1234.000000123, abs=1e-9)


def test_camera_info_round_trip_and_rgbd() -> None:
    intr = CameraIntrinsics(6, 4, 5.0, 5.5, 2.5, 1.5, "brown_conrady", (0.1, -0.02, 0.001, 0.0, 0.003))
    info = intrinsics_to_camera_info(intr, 1.0, "cam")
    assert info.distortion_model == "plumb_bob"
    assert list(info.p) == [5.0, 0, 2.5, 0, 0, 5.5, 1.5, 0, 0, 0, 1, 0]
    assert camera_info_to_intrinsics(info) == intr
    color = image_to_msg(np.full((4, 6, 3), 9, np.uint8), "rgb8", 2.0, "cam")
    depth = image_to_msg(np.full((4, 6), 750, np.uint16), "16UC1", 2.0, "cam")
    frame = rgbd_from_msgs(color, depth, info)
    assert frame.stamp_s == 2.0 and frame.frame_id == "cam"
    np.testing.assert_allclose(frame.depth_m, 0.75)


def test_path_and_pose_array_round_trip() -> None:
    trace = Trace(np.array([[0.1, 0.2, 0.9], [0.2, 0.2, 0.8]]), "cam", stamp_s=4.5)
    back = path_to_trace(trace_to_path(trace))
    np.testing.assert_allclose(back.points, trace.points)
    assert (back.frame_id, back.stamp_s) == ("cam", 4.5)
    poses = [Transform.from_ur_pose([0.3, 0.1, 0.2, 0, np.pi, 0]), Transform.from_rpy([0, 0, 1], [0.1, 0.2, 0.3])]
    for a, b in zip(pose_array_to_transforms(transforms_to_pose_array(poses, "base")), poses, strict=True):
        np.testing.assert_allclose(a.matrix, b.matrix, atol=1e-12)


class DemoConfig(BaseModel):
    max_speed_mps: float = Field(0.25, ge=0.0, le=1.0, description="TCP speed limit [m/s]")
    mode: Literal["fast", "safe"] = Field("safe", description="operating mode")
    robot: str = Field("ur5e", description="robot model", json_schema_extra={"read_only": True})
    box_m: list[float] = Field(default_factory=lambda: [0.1, 0.2], description="box [m]")


@pytest.fixture
def node():
    ctx = Context()
    rclpy.init(context=ctx)
    n = Node("params_test", context=ctx)
    yield n
    n.destroy_node()
    rclpy.shutdown(context=ctx)


def test_parameter_binding_declares_validates_and_vetoes(node: Node) -> None:
    moving = {"now": False}
    changes = []
    binding = ParameterBinding(
        node, DemoConfig, veto=lambda u: "robot is moving" if moving["now"] else None, on_change=changes.append
    )
    desc = node.describe_parameter("max_speed_mps")
    assert "[m/s]" in desc.description and desc.floating_point_range[0].to_value == 1.0
    assert "one of: fast, safe" in node.describe_parameter("mode").description
    assert node.describe_parameter("robot").read_only

    ok = node.set_parameters([Parameter("max_speed_mps", value=0.1)])[0]
    assert ok.successful and binding.config.max_speed_mps == 0.1 and len(changes) == 1

    bad = node.set_parameters([Parameter("mode", value="turbo")])[0]
    assert not bad.successful and "mode = 'turbo'" in bad.reason
    assert binding.config.mode == "safe" and node.get_parameter("mode").value == "safe"

    moving["now"] = True
    vetoed = node.set_parameters([Parameter("mode", value="fast")])[0]
    assert not vetoed.successful and vetoed.reason == "robot is moving"
    assert binding.config.box_m == [0.1, 0.2]


def test_parameter_binding_rejects_bad_overrides(node: Node) -> None:
    node.declare_parameter("unrelated", 1)

    class Strict(BaseModel):
        rate_hz: float = Field(-5.0, ge=1.0, le=1000.0, description="loop rate [Hz]")

    with pytest.raises(ConfigError, match=r"parameter rate_hz of params_test: .*out of range"):
        ParameterBinding(node, Strict)
