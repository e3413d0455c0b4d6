"""TraceSpatial-Bench's 3D success rule, and an image-plane analogue of it for 2D answers.

A predicted 3D trace (camera optical frame, metres) succeeds when

1. it starts where the object is: the first point lies within ``start_threshold_m`` (0.20 m) of the
   reference start (the ground-truth trace's first point, or the nearest of the object's points when
   those are given);
2. it ends where it should: any of the last ``end_last_points`` (3) points lies within
   ``end_threshold_m`` (0.20 m) of the oriented destination box (distance 0 inside the box);
3. optionally, it does not drive the object through the scene: the object's points, carried along the
   trace, never have more than ``max_overlap_fraction`` (20 %) of themselves inside voxels (2 cm)
   occupied by the scene. The fraction tolerates the contact of resting on a surface.

For a 2D answer (pixels only) :func:`evaluate_success_image_plane` applies the same rule in the image:
the thresholds become pixel radii (``fx * threshold / depth`` at the reference depth) and the box
becomes the convex hull of its projected corners. That analogue is this project's, not the benchmark's.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial.distance import cdist

from spatial_trace_ros.geometry import path as pathlib
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics, project


@dataclass(frozen=True, eq=False)
class OrientedBox:
    """A box in the camera frame: ``center`` (3,) metres, ``extent_m`` (3,) full side lengths, and
    ``rotation`` (3, 3) whose columns are the box axes (a point's box coordinates are R^T (p - c)).
    This is the convention of TraceSpatial-Bench's ``bbox_*`` fields (and Open3D's oriented boxes)."""

    center: np.ndarray
    extent_m: np.ndarray
    rotation: np.ndarray

    def __post_init__(self) -> None:
        c = np.asarray(self.center, dtype=float).reshape(-1)
        e = np.asarray(self.extent_m, dtype=float).reshape(-1)
        r = np.asarray(self.rotation, dtype=float)
        if c.shape != (3,) or e.shape != (3,) or r.shape != (3, 3):
            raise ValueError(
                f"a box needs center (3,), extent (3,), rotation (3, 3); got {c.shape}, {e.shape}, {r.shape}")
        if not (np.all(np.isfinite(c)) and np.all(np.isfinite(e)) and np.all(e >= 0)):
            raise ValueError(f"box center must be finite and extent non-negative, got {c.tolist()}, {e.tolist()}")
        if not np.allclose(r.T @ r, np.eye(3), atol=1e-4) or np.linalg.det(r) < 0:
            raise ValueError(f"box rotation is not a proper rotation matrix: {r.tolist()}")
        object.__setattr__(self, "center", c)
        object.__setattr__(self, "extent_m", e)
        object.__setattr__(self, "rotation", r)

    def distance_m(self, points: np.ndarray) -> np.ndarray:
        """Euclidean distance from each point (N, 3) to the box, 0 inside or on it."""
        p = np.asarray(points, dtype=float).reshape(-1, 3)
        local = (p - self.center) @ self.rotation
        outside = np.maximum(np.abs(local) - self.extent_m / 2.0, 0.0)
        return np.linalg.norm(outside, axis=1)

    def corners(self) -> np.ndarray:
        """The 8 corners (8, 3) in the camera frame."""
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=float)
        return self.center + (signs * self.extent_m / 2.0) @ self.rotation.T


@dataclass(frozen=True)
class SuccessCriteria:
    """The benchmark's thresholds (defaults are TraceSpatial-Bench's)."""

    start_threshold_m: float = 0.20
    end_threshold_m: float = 0.20
    end_last_points: int = 3
    voxel_size_m: float = 0.02
    max_overlap_fraction: float = 0.20

    def __post_init__(self) -> None:
        problems = []
        for name in ("start_threshold_m", "end_threshold_m", "voxel_size_m"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        if self.end_last_points < 1:
            problems.append(f"end_last_points must be at least 1, got {self.end_last_points}")
        if not 0 <= self.max_overlap_fraction < 1:
            problems.append(f"max_overlap_fraction must be in [0, 1), got {self.max_overlap_fraction}")
        if problems:
            raise ValueError("invalid success criteria: " + "; ".join(problems))


@dataclass(frozen=True)
class SuccessResult:
    """Outcome of the rule for one trace. Errors are metres (3D rule) or pixels (image-plane rule);
    the collision fields are None when no scene was given."""

    start_error: float
    end_error: float
    start_ok: bool
    end_ok: bool
    collision_fraction: float | None = None
    collision_free: bool | None = None

    @property
    def success(self) -> bool:
        return self.start_ok and self.end_ok and self.collision_free is not False


class VoxelScene:
    """Scene points binned into cubic voxels, for fast 'is this point inside something' queries."""

    def __init__(self, scene_points: np.ndarray, voxel_size_m: float) -> None:
        if not voxel_size_m > 0:
            raise ValueError(f"voxel size must be positive, got {voxel_size_m}")
        pts = np.asarray(scene_points, dtype=float).reshape(-1, 3)
        self.voxel_size_m = float(voxel_size_m)
        self._keys = np.unique(self._encode(pts[np.all(np.isfinite(pts), axis=1)]))

    def _encode(self, points: np.ndarray) -> np.ndarray:
        # 21 bits per axis: +-1e6 voxels (20 km at 2 cm), far beyond any camera's range.
        idx = np.floor(points / self.voxel_size_m).astype(np.int64) + (1 << 20)
        idx = np.clip(idx, 0, (1 << 21) - 1)
        return (idx[:, 0] << 42) | (idx[:, 1] << 21) | idx[:, 2]

    @property
    def n_voxels(self) -> int:
        return len(self._keys)

    def without(self, points: np.ndarray) -> VoxelScene:
        """A copy with the voxels that ``points`` fall in removed (e.g. the moved object's own)."""
        out = VoxelScene.__new__(VoxelScene)
        out.voxel_size_m = self.voxel_size_m
        out._keys = np.setdiff1d(self._keys, self._encode(np.asarray(points, dtype=float).reshape(-1, 3)))
        return out

    def occupied(self, points: np.ndarray) -> np.ndarray:
        """Boolean per point: does it fall in an occupied voxel?"""
        keys = self._encode(np.asarray(points, dtype=float).reshape(-1, 3))
        if len(self._keys) == 0:
            return np.zeros(len(keys), bool)
        pos = np.clip(np.searchsorted(self._keys, keys), 0, len(self._keys) - 1)
        return self._keys[pos] == keys


def collision_fraction(
    trace_m: np.ndarray, object_points_m: np.ndarray, scene: VoxelScene, max_points_per_batch: int = 500_000,
) -> float:
    """Largest fraction of the object's points inside scene voxels at any pose along the trace.

    The object is translated so that it follows the trace from its first point (orientation kept),
    at steps no longer than one voxel so no obstacle is skipped. Its own voxels at the start are not
    obstacles (it is lifted from there).
    """
    trace = np.asarray(trace_m, dtype=float).reshape(-1, 3)
    obj = np.asarray(object_points_m, dtype=float).reshape(-1, 3)
    if len(obj) == 0:
        raise ValueError("the collision check needs the moved object's points; got none")
    poses = pathlib.resample_by_spacing(trace, scene.voxel_size_m) if len(trace) > 1 else trace
    offsets = poses - trace[0]
    obstacles = scene.without(obj)
    worst = 0.0
    step = max(1, max_points_per_batch // len(obj))
    for k in range(0, len(offsets), step):
        moved = obj[None, :, :] + offsets[k:k + step, None, :]
        hits = obstacles.occupied(moved.reshape(-1, 3)).reshape(len(moved), len(obj))
        worst = max(worst, float(hits.mean(axis=1).max()))
    return worst


def evaluate_success(
    prediction_m: np.ndarray,
    reference_m: np.ndarray,
    destination: OrientedBox,
    criteria: SuccessCriteria | None = None,
    object_points_m: np.ndarray | None = None,
    scene: VoxelScene | None = None,
) -> SuccessResult:
    """The 3D rule for one predicted trace (N, 3) against the ground-truth trace (M, 3), metres.

    With ``object_points_m`` the start error is the distance to the nearest object point; with both
    ``object_points_m`` and ``scene`` the collision check runs too.
    """
    crit = criteria or SuccessCriteria()
    pred = np.asarray(prediction_m, dtype=float).reshape(-1, 3)
    ref = np.asarray(reference_m, dtype=float).reshape(-1, 3)
    if len(pred) == 0 or len(ref) == 0:
        raise ValueError("success needs at least one predicted and one reference point")
    if object_points_m is not None and len(object_points_m):
        start_err = float(cdist(pred[:1], np.asarray(object_points_m, dtype=float).reshape(-1, 3)).min())
    else:
        start_err = float(np.linalg.norm(pred[0] - ref[0]))
    end_err = float(destination.distance_m(pred[-crit.end_last_points:]).min())
    fraction = free = None
    if scene is not None and object_points_m is not None:
        fraction = collision_fraction(pred, object_points_m, scene)
        free = bool(fraction <= crit.max_overlap_fraction)
    return SuccessResult(start_err, end_err, bool(start_err <= crit.start_threshold_m),
                         bool(end_err <= crit.end_threshold_m), fraction, free)


def evaluate_success_image_plane(
    prediction_uv: np.ndarray,
    reference_m: np.ndarray,
    destination: OrientedBox,
    intrinsics: CameraIntrinsics,
    criteria: SuccessCriteria | None = None,
) -> SuccessResult:
    """The image-plane analogue for 2D answers (pixels, (N, 2)); errors and radii are in pixels.

    Start: within ``fx * start_threshold_m / z`` pixels of the projected reference start (z its depth).
    End: any of the last points within ``fx * end_threshold_m / z`` pixels of the convex hull of the
    projected box corners (z the box centre's depth); 0 inside the hull.
    """
    crit = criteria or SuccessCriteria()
    uv = np.asarray(prediction_uv, dtype=float).reshape(-1, 2)
    ref = np.asarray(reference_m, dtype=float).reshape(-1, 3)
    if len(uv) == 0 or len(ref) == 0:
        raise ValueError("success needs at least one predicted and one reference point")
    start_uv = project(ref[:1], intrinsics)[0]
    start_err = float(np.linalg.norm(uv[0] - start_uv))
    start_radius = intrinsics.fx * crit.start_threshold_m / max(ref[0, 2], 1e-6)
    corners_uv = project(destination.corners(), intrinsics)
    corners_uv = corners_uv[np.all(np.isfinite(corners_uv), axis=1)]
    if len(corners_uv) == 0:
        end_err = float("inf")
    else:
        hull = cv2.convexHull(corners_uv.astype(np.float32))
        signed = [cv2.pointPolygonTest(hull, (float(u), float(v)), True) for u, v in uv[-crit.end_last_points:]]
        end_err = float(max(0.0, -max(signed)))
    end_radius = intrinsics.fx * crit.end_threshold_m / max(destination.center[2], 1e-6)
    return SuccessResult(start_err, end_err, bool(start_err <= start_radius), bool(end_err <= end_radius))
