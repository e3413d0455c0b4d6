"""Rigid transforms that know their frames, so a chain that mixes frames fails loudly.

``Transform(matrix, parent, child)`` maps points expressed in ``child`` into ``parent``
(``parent_T_child``). Composition checks the frames meet: ``a_T_b @ b_T_c -> a_T_c``.
Quaternions are named by their order (``wxyz`` as transforms3d, ``xyzw`` as ROS); UR poses are
[x, y, z, rx, ry, rz] with a rotation vector, in metres and radians.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from transforms3d import axangles, euler, quaternions

from spatial_trace_ros.errors import ConfigError

ROTATION_TOLERANCE = 1e-6


def check_rotation(R: np.ndarray, what: str = "rotation", tol: float = 1e-4) -> np.ndarray:
    """Return R as a float 3x3 array, or raise if it is not a proper rotation (orthonormal, det +1)."""
    R = np.asarray(R, dtype=float)
    if R.shape != (3, 3) or not np.all(np.isfinite(R)):
        raise ConfigError(f"{what} must be a finite 3x3 matrix, got shape {R.shape}")
    err = np.abs(R @ R.T - np.eye(3)).max()
    if err > tol:
        raise ConfigError(f"{what} is not orthonormal (max |R R^T - I| = {err:.2g}); re-run the calibration")
    if np.linalg.det(R) < 0:
        raise ConfigError(f"{what} is a reflection (det = -1), not a rotation; check the axis order")
    return R


@dataclass(frozen=True, eq=False)
class Transform:
    """``parent_T_child`` as a 4x4 homogeneous matrix."""

    matrix: np.ndarray
    parent: str = ""
    child: str = ""

    def __post_init__(self) -> None:
        m = np.asarray(self.matrix, dtype=float)
        if m.shape != (4, 4):
            raise ConfigError(f"a transform must be 4x4, got shape {m.shape}")
        if not np.allclose(m[3], [0, 0, 0, 1]):
            raise ConfigError(f"last row of a rigid transform must be [0 0 0 1], got {m[3].tolist()}")
        if not np.all(np.isfinite(m[:3, 3])):
            raise ConfigError("transform translation must be finite")
        check_rotation(m[:3, :3], f"rotation of {self.parent or '?'}_T_{self.child or '?'}")
        m = m.copy()
        m.setflags(write=False)
        object.__setattr__(self, "matrix", m)

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def identity(cls, parent: str = "", child: str = "") -> Transform:
        return cls(np.eye(4), parent, child)

    @classmethod
    def from_rotation_translation(
        cls, R: np.ndarray, t: Sequence[float], parent: str = "", child: str = ""
    ) -> Transform:
        m = np.eye(4)
        m[:3, :3] = check_rotation(R)
        m[:3, 3] = np.asarray(t, dtype=float)
        return cls(m, parent, child)

    @classmethod
    def from_quaternion_wxyz(
        cls, t: Sequence[float], q_wxyz: Sequence[float], parent: str = "", child: str = ""
    ) -> Transform:
        q = np.asarray(q_wxyz, dtype=float)
        n = np.linalg.norm(q)
        if q.shape != (4,) or not np.isfinite(n) or abs(n - 1.0) > 1e-3:
            raise ConfigError(f"quaternion must be 4 finite numbers of unit norm, got {q.tolist()} (norm {n:.4f})")
        return cls.from_rotation_translation(quaternions.quat2mat(q / n), t, parent, child)

    @classmethod
    def from_quaternion_xyzw(
        cls, t: Sequence[float], q_xyzw: Sequence[float], parent: str = "", child: str = ""
    ) -> Transform:
        x, y, z, w = np.asarray(q_xyzw, dtype=float)
        return cls.from_quaternion_wxyz(t, (w, x, y, z), parent, child)

    @classmethod
    def from_rpy(cls, t: Sequence[float], rpy_rad: Sequence[float], parent: str = "", child: str = "") -> Transform:
        """Roll, pitch, yaw about fixed x, y, z (the URDF / ROS convention)."""
        r, p, y = rpy_rad
        return cls.from_rotation_translation(euler.euler2mat(r, p, y, "sxyz"), t, parent, child)

    @classmethod
    def from_rotvec(cls, t: Sequence[float], rotvec: Sequence[float], parent: str = "", child: str = "") -> Transform:
        v = np.asarray(rotvec, dtype=float)
        angle = float(np.linalg.norm(v))
        R = np.eye(3) if angle < 1e-12 else axangles.axangle2mat(v / angle, angle)
        return cls.from_rotation_translation(R, t, parent, child)

    @classmethod
    def from_ur_pose(cls, pose: Sequence[float], parent: str = "base", child: str = "tool0") -> Transform:
        """A UR pose [x, y, z, rx, ry, rz] (metres, rotation vector in radians)."""
        pose = np.asarray(pose, dtype=float)
        if pose.shape != (6,):
            raise ConfigError(f"a UR pose has 6 numbers [x, y, z, rx, ry, rz], got {pose.tolist()}")
        return cls.from_rotvec(pose[:3], pose[3:], parent, child)

    # -- views ----------------------------------------------------------------------------------
    @property
    def rotation(self) -> np.ndarray:
        return self.matrix[:3, :3]

    @property
    def translation(self) -> np.ndarray:
        return self.matrix[:3, 3]

    @property
    def quaternion_wxyz(self) -> np.ndarray:
        q = quaternions.mat2quat(self.rotation)
        return q if q[0] >= 0 else -q

    @property
    def quaternion_xyzw(self) -> np.ndarray:
        w, x, y, z = self.quaternion_wxyz
        return np.array([x, y, z, w])

    @property
    def rotvec(self) -> np.ndarray:
        # From the quaternion with atan2: exact down to the smallest angles, where an eigenvector search
        # (transforms3d's mat2axangle) can pick the wrong axis among three eigenvalues all near 1.
        q = self.quaternion_wxyz
        v = q[1:]
        s = float(np.linalg.norm(v))
        if s == 0.0:
            return np.zeros(3)
        return v * (2.0 * np.arctan2(s, q[0]) / s)

    def to_ur_pose(self) -> np.ndarray:
        return np.concatenate([self.translation, self.rotvec])

    # -- algebra --------------------------------------------------------------------------------
    def inverse(self) -> Transform:
        R, t = self.rotation, self.translation
        m = np.eye(4)
        m[:3, :3] = R.T
        m[:3, 3] = -R.T @ t
        return Transform(m, self.child, self.parent)

    def __matmul__(self, other: Transform) -> Transform:
        if self.child and other.parent and self.child != other.parent:
            raise ConfigError(
                f"cannot chain {self.parent}_T_{self.child} with {other.parent}_T_{other.child}: "
                f"frame {self.child!r} != {other.parent!r}"
            )
        return Transform(self.matrix @ other.matrix, self.parent, other.child)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map points (N, 3) or (3,) from ``child`` into ``parent``."""
        p = np.asarray(points, dtype=float)
        return p @ self.rotation.T + self.translation

    def rotate(self, vectors: np.ndarray) -> np.ndarray:
        """Rotate direction vectors (no translation)."""
        return np.asarray(vectors, dtype=float) @ self.rotation.T

    def __repr__(self) -> str:
        t = np.round(self.translation, 4).tolist()
        q = np.round(self.quaternion_xyzw, 4).tolist()
        return f"Transform({self.parent}_T_{self.child}, t={t}, q_xyzw={q})"
