"""Pinhole camera model with distortion, RGB-D frames, and depth sampling that survives holes.

Pixel convention: (u, v) with u to the right and v down, pixel centres at integer coordinates, as in
OpenCV, RealSense and sensor_msgs/CameraInfo. Depth is z along the optical axis (not ray length).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from spatial_trace_ros.errors import ConfigError, DepthError

# Our names for lens models, and the sensor_msgs/CameraInfo names they map to.
DISTORTION_TO_ROS = {
    "none": "plumb_bob",
    "brown_conrady": "plumb_bob",
    "inverse_brown_conrady": "plumb_bob",
    "kannala_brandt4": "equidistant",
}
_ITER_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)


@dataclass(frozen=True)
class CameraIntrinsics:
    """Intrinsics of one image stream. ``coeffs`` follow OpenCV order (k1, k2, p1, p2, k3[, ...])."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion_model: str = "none"
    coeffs: tuple[float, ...] = field(default=(0.0, 0.0, 0.0, 0.0, 0.0))

    def __post_init__(self) -> None:
        problems = []
        if self.width <= 0 or self.height <= 0:
            problems.append(f"image size must be positive, got {self.width}x{self.height}")
        if not (self.fx > 0 and self.fy > 0 and np.isfinite(self.fx) and np.isfinite(self.fy)):
            problems.append(f"focal lengths must be positive and finite, got fx={self.fx}, fy={self.fy}")
        if not (np.isfinite(self.cx) and np.isfinite(self.cy)):
            problems.append(f"principal point must be finite, got cx={self.cx}, cy={self.cy}")
        if self.distortion_model not in DISTORTION_TO_ROS:
            problems.append(
                f"unknown distortion model {self.distortion_model!r}; available: {', '.join(DISTORTION_TO_ROS)}"
            )
        if self.distortion_model == "kannala_brandt4" and len(self.coeffs) != 4:
            problems.append(f"kannala_brandt4 needs 4 coefficients, got {len(self.coeffs)}")
        if problems:
            raise ConfigError("invalid camera intrinsics: " + "; ".join(problems))
        object.__setattr__(self, "coeffs", tuple(float(c) for c in self.coeffs))

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def from_matrix(
        cls,
        K: np.ndarray | Sequence[Sequence[float]],
        width: int,
        height: int,
        distortion_model: str = "none",
        coeffs: Sequence[float] = (0.0, 0.0, 0.0, 0.0, 0.0),
    ) -> CameraIntrinsics:
        """From a 3x3 camera matrix [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]."""
        K = np.asarray(K, dtype=float)
        if K.shape != (3, 3):
            raise ConfigError(f"camera matrix K must be 3x3, got shape {K.shape}")
        if abs(K[0, 1]) > 1e-9 or abs(K[2, 2] - 1.0) > 1e-9 or np.any(np.abs(K[2, :2]) > 1e-9):
            raise ConfigError(f"K is not a pinhole camera matrix (zero skew, last row [0 0 1]): {K.tolist()}")
        return cls(int(width), int(height), K[0, 0], K[1, 1], K[0, 2], K[1, 2], distortion_model, tuple(coeffs))

    @classmethod
    def from_camera_info(cls, info: Any) -> CameraIntrinsics:
        """From a sensor_msgs/CameraInfo (duck-typed: needs ``k``, ``d``, ``width``, ``height``,
        ``distortion_model``), so this module stays free of ROS imports."""
        d = [float(x) for x in info.d]
        ros_model = info.distortion_model or "plumb_bob"
        if ros_model in ("plumb_bob", "rational_polynomial"):
            model = "brown_conrady" if any(abs(x) > 0 for x in d) else "none"
        elif ros_model == "equidistant":
            model = "kannala_brandt4"
        else:
            raise ConfigError(
                f"CameraInfo distortion_model {ros_model!r} is not supported; "
                "use plumb_bob, rational_polynomial or equidistant"
            )
        coeffs = tuple(d) if model != "none" else (0.0,) * 5
        return cls.from_matrix(np.reshape(info.k, (3, 3)), info.width, info.height, model, coeffs)

    @classmethod
    def from_realsense(cls, intr: Any) -> CameraIntrinsics:
        """From a ``pyrealsense2.intrinsics`` (duck-typed on its attributes)."""
        name = str(intr.model).rsplit(".", 1)[-1]
        model = {
            "none": "none",
            "brown_conrady": "brown_conrady",
            "modified_brown_conrady": "brown_conrady",
            "inverse_brown_conrady": "inverse_brown_conrady",
            "kannala_brandt4": "kannala_brandt4",
        }.get(name)
        if model is None:
            raise ConfigError(f"RealSense distortion model {name!r} is not supported")
        coeffs = tuple(intr.coeffs)
        if model == "kannala_brandt4":
            coeffs = coeffs[:4]
        elif not any(abs(c) > 0 for c in coeffs):
            model = "none"
        return cls(intr.width, intr.height, intr.fx, intr.fy, intr.ppx, intr.ppy, model, coeffs)

    # -- views ----------------------------------------------------------------------------------
    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def ros_distortion_model(self) -> str:
        return DISTORTION_TO_ROS[self.distortion_model]

    @property
    def D(self) -> np.ndarray:
        return np.asarray(self.coeffs, dtype=float)

    def scaled(self, width: int, height: int) -> CameraIntrinsics:
        """The same lens at another resolution (e.g. a model that saw a resized image)."""
        sx, sy = width / self.width, height / self.height
        return CameraIntrinsics(
            width, height, self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5,
            self.distortion_model, self.coeffs,
        )


def _as_points(points: np.ndarray, dim: int, name: str) -> np.ndarray:
    arr = np.asarray(points, dtype=float)
    if arr.ndim == 1 and arr.shape[0] == dim:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"{name} must have shape (N, {dim}), got {arr.shape}")
    return arr


def _normalized_to_pixels(xy: np.ndarray, intr: CameraIntrinsics) -> np.ndarray:
    return np.column_stack([xy[:, 0] * intr.fx + intr.cx, xy[:, 1] * intr.fy + intr.cy])


def _apply_brown_conrady(xy: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """Forward Brown-Conrady distortion of normalized coordinates (via OpenCV's projectPoints)."""
    pts = np.column_stack([xy, np.ones(len(xy))]).reshape(-1, 1, 3)
    out, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), np.eye(3), coeffs)
    return out.reshape(-1, 2)


def _invert_brown_conrady(xy: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_apply_brown_conrady`, solved iteratively by OpenCV."""
    out = cv2.undistortPoints(xy.reshape(-1, 1, 2), np.eye(3), coeffs, None, None, None, _ITER_CRITERIA)
    return out.reshape(-1, 2)


def project(points_cam: np.ndarray, intr: CameraIntrinsics) -> np.ndarray:
    """Camera-frame points (N, 3) in metres to pixels (N, 2). Points at or behind the camera give NaN."""
    p = _as_points(points_cam, 3, "points_cam")
    out = np.full((len(p), 2), np.nan)
    front = p[:, 2] > 1e-9
    if not np.any(front):
        return out
    q = p[front]
    xy = q[:, :2] / q[:, 2:3]
    model = intr.distortion_model
    if model == "none":
        uv = _normalized_to_pixels(xy, intr)
    elif model == "brown_conrady":
        uv = _normalized_to_pixels(_apply_brown_conrady(xy, intr.D), intr)
    elif model == "inverse_brown_conrady":
        # RealSense convention: the coefficients map distorted -> undistorted, so projecting inverts them.
        uv = _normalized_to_pixels(_invert_brown_conrady(xy, intr.D), intr)
    else:  # kannala_brandt4
        pts = q.reshape(-1, 1, 3)
        uv, _ = cv2.fisheye.projectPoints(pts, np.zeros(3), np.zeros(3), intr.K, intr.D)
        uv = uv.reshape(-1, 2)
    out[front] = uv
    return out


def deproject(pixels_uv: np.ndarray, depth_m: np.ndarray | float, intr: CameraIntrinsics) -> np.ndarray:
    """Pixels (N, 2) with z-depth in metres (N,) to camera-frame points (N, 3)."""
    uv = _as_points(pixels_uv, 2, "pixels_uv")
    z = np.broadcast_to(np.asarray(depth_m, dtype=float), (len(uv),))
    model = intr.distortion_model
    if model == "none":
        xy = np.column_stack([(uv[:, 0] - intr.cx) / intr.fx, (uv[:, 1] - intr.cy) / intr.fy])
    elif model == "brown_conrady":
        xy = cv2.undistortPoints(uv.reshape(-1, 1, 2), intr.K, intr.D, None, None, None, _ITER_CRITERIA)
        xy = xy.reshape(-1, 2)
    elif model == "inverse_brown_conrady":
        xd = np.column_stack([(uv[:, 0] - intr.cx) / intr.fx, (uv[:, 1] - intr.cy) / intr.fy])
        xy = _apply_brown_conrady(xd, intr.D)
    else:  # kannala_brandt4
        xy = cv2.fisheye.undistortPoints(uv.reshape(-1, 1, 2), intr.K, intr.D).reshape(-1, 2)
    return np.column_stack([xy * z[:, None], z])


@dataclass(frozen=True, eq=False)
class DepthSample:
    """Depth looked up for N pixels: metres (NaN where none), which were valid, and the valid share."""

    depth_m: np.ndarray
    valid: np.ndarray

    @property
    def valid_fraction(self) -> float:
        return float(np.mean(self.valid)) if len(self.valid) else 0.0


def sample_depth(
    depth_m: np.ndarray,
    pixels_uv: np.ndarray,
    window_px: int = 5,
    min_depth_m: float = 0.05,
    max_depth_m: float = 10.0,
    require_all: bool = False,
) -> DepthSample:
    """Median of the valid depths in a ``window_px`` square around each pixel.

    A median over a window rides over single-pixel holes and picks the majority side at an object
    edge, which is what a point on a trace needs. Invalid depths are 0, NaN or outside the range.
    With ``require_all`` a point with no valid depth near it raises :class:`DepthError`.
    """
    if window_px < 1 or window_px % 2 == 0:
        raise ConfigError(f"depth window must be a positive odd number of pixels, got {window_px}")
    depth = np.asarray(depth_m, dtype=np.float32)
    uv = _as_points(pixels_uv, 2, "pixels_uv")
    h, w = depth.shape
    r = window_px // 2
    offsets = np.arange(-r, r + 1)
    # Non-finite pixels are sent far outside the image so they come out invalid.
    centre = np.rint(np.nan_to_num(uv, nan=-1e9, posinf=-1e9, neginf=-1e9)).astype(np.int64)
    us = centre[:, 0, None, None] + offsets[None, None, :]
    vs = centre[:, 1, None, None] + offsets[None, :, None]
    us, vs = np.broadcast_arrays(us, vs)
    inside = (us >= 0) & (us < w) & (vs >= 0) & (vs < h)
    values = depth[np.clip(vs, 0, h - 1), np.clip(us, 0, w - 1)].astype(float)
    ok = inside & np.isfinite(values) & (values > min_depth_m) & (values < max_depth_m)
    values = np.where(ok, values, np.nan).reshape(len(uv), -1)
    valid = ok.reshape(len(uv), -1).any(axis=1)
    out = np.full(len(uv), np.nan)
    if np.any(valid):
        out[valid] = np.nanmedian(values[valid], axis=1)
    sample = DepthSample(out, valid)
    if require_all and not np.all(valid):
        bad = np.flatnonzero(~valid)
        shown = ", ".join(f"#{i} at ({uv[i, 0]:.0f}, {uv[i, 1]:.0f})" for i in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise DepthError(
            f"no valid depth within {window_px}x{window_px} px of {len(bad)} of {len(uv)} points "
            f"({shown}{more}); valid fraction {sample.valid_fraction:.2f}. Check the depth stream "
            "(range, holes, alignment to color) or widen the depth window."
        )
    return sample


@dataclass(frozen=True, eq=False)
class RgbdFrame:
    """One color image with depth aligned to it, as the trace stage consumes it.

    ``depth`` is either uint16 raw units (metres = raw * ``depth_scale_m``, 0 = no data) as cameras
    deliver it, or float metres (NaN or 0 = no data). ``stamp_s`` is the capture time in seconds.
    """

    color: np.ndarray
    depth: np.ndarray | None
    intrinsics: CameraIntrinsics
    depth_scale_m: float = 0.001
    stamp_s: float = 0.0
    frame_id: str = "camera_color_optical_frame"

    def __post_init__(self) -> None:
        intr = self.intrinsics
        if self.color.dtype != np.uint8 or self.color.ndim != 3 or self.color.shape[2] != 3:
            raise ConfigError(f"color must be HxWx3 uint8 RGB, got {self.color.dtype} {self.color.shape}")
        if self.color.shape[:2] != (intr.height, intr.width):
            raise ConfigError(
                f"color is {self.color.shape[1]}x{self.color.shape[0]} but intrinsics say "
                f"{intr.width}x{intr.height}; use the intrinsics of the color stream"
            )
        if self.depth is not None:
            if self.depth.shape != self.color.shape[:2]:
                raise ConfigError(
                    f"depth {self.depth.shape} is not aligned to color {self.color.shape[:2]}; "
                    "align depth to the color stream first"
                )
            if self.depth.dtype not in (np.uint16, np.float32, np.float64):
                raise ConfigError(f"depth must be uint16 or float metres, got {self.depth.dtype}")
        if not self.depth_scale_m > 0:
            raise ConfigError(f"depth_scale_m must be positive, got {self.depth_scale_m}")

    @property
    def depth_m(self) -> np.ndarray | None:
        """Depth in metres as float32, NaN where the sensor had no data."""
        if self.depth is None:
            return None
        if self.depth.dtype == np.uint16:
            out = self.depth.astype(np.float32) * np.float32(self.depth_scale_m)
            out[self.depth == 0] = np.nan
            return out
        out = self.depth.astype(np.float32, copy=True)
        out[out <= 0] = np.nan
        return out


def deproject_pixels_with_depth(
    frame: RgbdFrame, pixels_uv: np.ndarray, window_px: int = 5, require_all: bool = True
) -> tuple[np.ndarray, DepthSample]:
    """Camera-frame points for pixels whose depth comes from the frame's aligned depth image."""
    depth = frame.depth_m
    if depth is None:
        raise DepthError("the frame has no depth image; a 2D trace needs aligned depth to become 3D")
    sample = sample_depth(depth, pixels_uv, window_px=window_px, require_all=require_all)
    return deproject(pixels_uv, sample.depth_m, frame.intrinsics), sample
