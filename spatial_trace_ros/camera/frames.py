"""Pixel-format conversions between what a RealSense delivers and what the stack publishes.

Color becomes rgb8 whatever the device or recording holds; depth becomes 16-bit millimetres
(the ROS 16UC1 convention), whatever the device's depth unit.
"""

from __future__ import annotations

import cv2
import numpy as np

from spatial_trace_ros.errors import CameraError

# librealsense format name -> OpenCV conversion to RGB (None: already rgb8)
COLOR_CONVERSIONS: dict[str, int | None] = {
    "rgb8": None,
    "bgr8": cv2.COLOR_BGR2RGB,
    "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB,
    "yuyv": cv2.COLOR_YUV2RGB_YUYV,
}
MILLIMETRE_M = 0.001


def color_to_rgb8(data: np.ndarray, format_name: str, width: int, height: int) -> np.ndarray:
    """A HxWx3 uint8 RGB copy of a color frame's buffer in ``format_name``."""
    if format_name not in COLOR_CONVERSIONS:
        raise CameraError(
            f"color format {format_name!r} is not supported; available: {', '.join(COLOR_CONVERSIONS)}"
        )
    code = COLOR_CONVERSIONS[format_name]
    if code is None:
        return np.array(data, dtype=np.uint8, copy=True).reshape(height, width, 3)
    channels = 2 if format_name == "yuyv" else 4 if format_name.endswith("a8") else 3
    return cv2.cvtColor(np.asarray(data, dtype=np.uint8).reshape(height, width, channels), code)


def depth_to_millimetres(depth_raw: np.ndarray, depth_scale_m: float) -> np.ndarray:
    """uint16 depth in device units to uint16 millimetres (0 stays "no data"; beyond 65.535 m saturates).

    Most RealSense models already count in millimetres, and then the array is returned as is (no copy).
    """
    if abs(depth_scale_m - MILLIMETRE_M) < 1e-9:
        return depth_raw
    mm = depth_raw.astype(np.float32) * np.float32(depth_scale_m / MILLIMETRE_M)
    return np.clip(np.rint(mm), 0, 65535).astype(np.uint16)
