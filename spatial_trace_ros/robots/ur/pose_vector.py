"""UR pose vectors [x, y, z, rx, ry, rz] (metres, rotation vector in radians) <-> 4x4 ``base_T_tool``.

The format of every RTDE pose (getActualTCPPose, moveL, servoL targets). Kept free of the geometry
package so the real-time worker and the fake controller start fast and convert in microseconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial.transform import Rotation


def ur_pose(pose: np.ndarray) -> list[float]:
    """``base_T_tool`` (4x4) -> [x, y, z, rx, ry, rz]."""
    pose = np.asarray(pose, float)
    return [*pose[:3, 3].tolist(), *Rotation.from_matrix(pose[:3, :3]).as_rotvec().tolist()]


def pose_matrix(vector: Sequence[float]) -> np.ndarray:
    """[x, y, z, rx, ry, rz] -> ``base_T_tool`` (4x4)."""
    out = np.eye(4)
    out[:3, 3] = vector[:3]
    out[:3, :3] = Rotation.from_rotvec(np.asarray(vector[3:6], float)).as_matrix()
    return out
