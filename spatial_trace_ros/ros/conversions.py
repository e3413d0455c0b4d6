"""numpy / core types <-> ROS messages.

Images use the fast path measured on these machines: ``msg.data = arr.tobytes()`` (~0.4 ms at 720p)
out and ``np.frombuffer(msg.data, ...)`` (zero copy) in; assigning an ndarray to ``msg.data`` takes
~170 ms and is never done.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose, PoseArray, PoseStamped
from nav_msgs.msg import Path
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics, RgbdFrame
from spatial_trace_ros.geometry.trace import Trace
from spatial_trace_ros.geometry.transforms import Transform

# encoding -> (numpy dtype, channels)
IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "mono8": (np.dtype(np.uint8), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "8UC3": (np.dtype(np.uint8), 3),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}


def seconds_to_stamp(t_s: float) -> Time:
    sec = int(np.floor(t_s))
    return Time(sec=sec, nanosec=min(round((t_s - sec) * 1e9), 999_999_999))


def stamp_to_seconds(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def make_header(stamp_s: float, frame_id: str) -> Header:
    return Header(stamp=seconds_to_stamp(stamp_s), frame_id=frame_id)


def image_to_msg(image: np.ndarray, encoding: str, stamp_s: float = 0.0, frame_id: str = "") -> Image:
    """An HxW or HxWxC array to sensor_msgs/Image (little-endian, no row padding)."""
    if encoding not in IMAGE_ENCODINGS:
        raise ConfigError(f"unsupported image encoding {encoding!r}; available: {', '.join(IMAGE_ENCODINGS)}")
    dtype, channels = IMAGE_ENCODINGS[encoding]
    arr = np.ascontiguousarray(image)
    if arr.dtype != dtype or (arr.shape[2] if arr.ndim == 3 else 1) != channels or arr.ndim not in (2, 3):
        raise ConfigError(f"{encoding} needs a {dtype} array with {channels} channel(s), got {arr.dtype} {arr.shape}")
    h, w = arr.shape[:2]
    msg = Image(header=make_header(stamp_s, frame_id), height=h, width=w, encoding=encoding, is_bigendian=0)
    msg.step = w * channels * dtype.itemsize
    msg.data = arr.astype(dtype.newbyteorder("<"), copy=False).tobytes()
    return msg


def msg_to_image(msg: Image) -> np.ndarray:
    """sensor_msgs/Image to a read-only array view of the message's buffer (no copy when unpadded)."""
    if msg.encoding not in IMAGE_ENCODINGS:
        raise ConfigError(
            f"unsupported image encoding {msg.encoding!r}; available: {', '.join(IMAGE_ENCODINGS)}"
        )
    dtype, channels = IMAGE_ENCODINGS[msg.encoding]
    dtype = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    row_bytes = msg.width * channels * dtype.itemsize
    if msg.step < row_bytes or len(msg.data) < msg.step * msg.height:
        raise ConfigError(
            f"image message is truncated: {len(msg.data)} bytes for {msg.width}x{msg.height} {msg.encoding} "
            f"with step {msg.step}"
        )
    buf = np.frombuffer(msg.data, dtype=np.uint8, count=msg.step * msg.height).reshape(msg.height, msg.step)
    arr = buf[:, :row_bytes].view(dtype)
    shape = (msg.height, msg.width, channels) if channels > 1 else (msg.height, msg.width)
    return arr.reshape(shape)


def intrinsics_to_camera_info(intr: CameraIntrinsics, stamp_s: float = 0.0, frame_id: str = "") -> CameraInfo:
    """CameraInfo with K, D, R = I and P = [K | 0], as a monocular driver publishes it."""
    K = intr.K
    P = np.hstack([K, np.zeros((3, 1))])
    info = CameraInfo(header=make_header(stamp_s, frame_id), width=intr.width, height=intr.height)
    info.distortion_model = intr.ros_distortion_model
    info.d = [float(c) for c in intr.coeffs]
    info.k = [float(x) for x in K.ravel()]
    info.r = [float(x) for x in np.eye(3).ravel()]
    info.p = [float(x) for x in P.ravel()]
    return info


def camera_info_to_intrinsics(info: CameraInfo) -> CameraIntrinsics:
    return CameraIntrinsics.from_camera_info(info)


def rgbd_from_msgs(color: Image, depth: Image | None, info: CameraInfo) -> RgbdFrame:
    """One RgbdFrame from color (rgb8/bgr8), aligned depth (16UC1 mm or 32FC1 m) and CameraInfo."""
    rgb = msg_to_image(color)
    if color.encoding == "bgr8":
        rgb = rgb[:, :, ::-1]
    depth_arr, scale = None, 0.001
    if depth is not None:
        depth_arr = msg_to_image(depth)
        if depth.encoding not in ("16UC1", "mono16", "32FC1"):
            raise ConfigError(f"depth image must be 16UC1 (mm) or 32FC1 (m), got {depth.encoding!r}")
        scale = 0.001 if depth_arr.dtype == np.uint16 else 1.0
    return RgbdFrame(
        color=np.ascontiguousarray(rgb),
        depth=depth_arr,
        intrinsics=camera_info_to_intrinsics(info),
        depth_scale_m=scale,
        stamp_s=stamp_to_seconds(color.header.stamp),
        frame_id=color.header.frame_id,
    )


def transform_to_pose(tf: Transform) -> Pose:
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in tf.translation)
    x, y, z, w = (float(v) for v in tf.quaternion_xyzw)
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = x, y, z, w
    return pose


def pose_to_transform(pose: Pose, parent: str = "", child: str = "") -> Transform:
    p, q = pose.position, pose.orientation
    return Transform.from_quaternion_xyzw((p.x, p.y, p.z), (q.x, q.y, q.z, q.w), parent, child)


def trace_to_path(trace: Trace, stamp_s: float | None = None, made_s: float | None = None) -> Path:
    """A trace as nav_msgs/Path: one identity-oriented pose per valid point, in the trace's frame. The
    path's stamp is the frame's capture stamp; each pose's stamp says when the trace was made
    (``made_s``; the capture stamp when None)."""
    stamp = trace.stamp_s if stamp_s is None else stamp_s
    header = make_header(stamp, trace.frame_id)
    pose_header = header if made_s is None else make_header(made_s, trace.frame_id)
    msg = Path(header=header)
    for x, y, z in trace.points[trace.valid]:
        ps = PoseStamped(header=pose_header)
        ps.pose.position.x, ps.pose.position.y, ps.pose.position.z = float(x), float(y), float(z)
        ps.pose.orientation.w = 1.0
        msg.poses.append(ps)
    return msg


def trace_made_s(msg: Path) -> float | None:
    """When the trace in ``msg`` was made (its poses' stamp), or None when they carry none."""
    if not msg.poses:
        return None
    made = stamp_to_seconds(msg.poses[0].header.stamp)
    return made if made > 0.0 else None


def stamp_ns(stamp: Time) -> int:
    """A ROS stamp as integer nanoseconds (exact, for matching messages of the same frame)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def path_to_trace(msg: Path) -> Trace:
    pts = np.array([[p.pose.position.x, p.pose.position.y, p.pose.position.z] for p in msg.poses], float)
    return Trace(pts.reshape(-1, 3), frame_id=msg.header.frame_id, stamp_s=stamp_to_seconds(msg.header.stamp))


def transforms_to_pose_array(poses: Sequence[Transform], frame_id: str, stamp_s: float = 0.0) -> PoseArray:
    msg = PoseArray(header=make_header(stamp_s, frame_id))
    msg.poses = [transform_to_pose(tf) for tf in poses]
    return msg


def pose_array_to_transforms(msg: PoseArray) -> list[Transform]:
    return [pose_to_transform(p, msg.header.frame_id) for p in msg.poses]
