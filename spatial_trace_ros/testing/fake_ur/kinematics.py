"""The fake controller's own kinematics, written apart from the product's ``RobotModel`` so that "the
arm followed the plan" is checked against an independent account of where a UR's TCP is.

From the published DH facts (Universal Robots' DH tables, as in docs/shared DESIGN.md): forward
kinematics as the product of the four elementary DH motions per joint, the geometric Jacobian from
those frames, and inverse kinematics the way a controller's ``get_inverse_kin(pose, qnear)`` behaves
for nearby targets: Newton steps (damped least squares) from the reference joints until the pose
matches. Poses are ``base_T_tool0`` in the controller's ``base`` frame.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

# (d, a, alpha) per joint [m, m, rad], Universal Robots' published DH parameters.
DH_TABLES = {
    "ur5": ((0.089159, 0.0, np.pi / 2), (0.0, -0.425, 0.0), (0.0, -0.39225, 0.0),
            (0.10915, 0.0, np.pi / 2), (0.09465, 0.0, -np.pi / 2), (0.0823, 0.0, 0.0)),
    "ur5e": ((0.1625, 0.0, np.pi / 2), (0.0, -0.425, 0.0), (0.0, -0.3922, 0.0),
             (0.1333, 0.0, np.pi / 2), (0.0997, 0.0, -np.pi / 2), (0.0996, 0.0, 0.0)),
}
JOINT_SPEED_RADPS = np.pi  # 180 deg/s on every joint
IK_ITERATIONS = 60
IK_DAMPING = 1e-6
IK_TOLERANCE = 1e-10  # [m] and [rad]


def _rot_z(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s, 0.0, 0.0], [s, c, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])


def _rot_x(alpha: float) -> np.ndarray:
    c, s = np.cos(alpha), np.sin(alpha)
    return np.array([[1.0, 0.0, 0.0, 0.0], [0.0, c, -s, 0.0], [0.0, s, c, 0.0], [0.0, 0.0, 0.0, 1.0]])


def _translate(x: float, z: float) -> np.ndarray:
    out = np.eye(4)
    out[0, 3], out[2, 3] = x, z
    return out


class FakeArmKinematics:
    """What the fake arm needs: ``fk``, ``jacobian``, ``ik``, ``max_velocity_radps`` and ``dof``."""

    dof = 6

    def __init__(self, robot: str) -> None:
        if robot not in DH_TABLES:
            raise ValueError(f"the fake UR knows {', '.join(DH_TABLES)}, not {robot!r}")
        self.robot = robot
        self.table = DH_TABLES[robot]
        self.max_velocity_radps = np.full(6, JOINT_SPEED_RADPS)
        # The fixed part of each joint's motion: translate d along z, a along x, then twist by alpha.
        self._fixed = [_translate(0.0, d) @ _translate(a, 0.0) @ _rot_x(alpha) for d, a, alpha in self.table]

    def frames(self, q: np.ndarray) -> list[np.ndarray]:
        """base_T_i for i = 0..6 (base, each joint's frame, tool0)."""
        out = [np.eye(4)]
        for theta, fixed in zip(np.asarray(q, float), self._fixed, strict=True):
            out.append(out[-1] @ _rot_z(theta) @ fixed)
        return out

    def fk(self, q: np.ndarray) -> np.ndarray:
        return self.frames(q)[-1]

    def jacobian(self, q: np.ndarray) -> np.ndarray:
        """6 x 6, rows vx vy vz wx wy wz in the base frame: joint i turns about z of frame i."""
        return _jacobian_from(self.frames(q))

    def ik(self, pose: np.ndarray, q_near: np.ndarray) -> np.ndarray | None:
        """Joints reaching ``pose`` found by Newton steps from ``q_near`` (None if they do not converge)."""
        q = np.asarray(q_near, float).copy()
        target = np.asarray(pose, float)
        for _ in range(IK_ITERATIONS):
            frames = self.frames(q)
            now = frames[-1]
            error = np.concatenate([target[:3, 3] - now[:3, 3], _rotation_error(target[:3, :3] @ now[:3, :3].T)])
            if np.max(np.abs(error)) < IK_TOLERANCE:
                return q
            jac = _jacobian_from(frames)
            q = q + jac.T @ np.linalg.solve(jac @ jac.T + IK_DAMPING * np.eye(6), error)
        return None


def _jacobian_from(frames: list[np.ndarray]) -> np.ndarray:
    axes = np.array([f[:3, 2] for f in frames[:-1]])
    origins = np.array([f[:3, 3] for f in frames[:-1]])
    return np.vstack([np.cross(axes, frames[-1][:3, 3] - origins).T, axes.T])


def _rotation_error(rotation: np.ndarray) -> np.ndarray:
    """Rotation vector of ``rotation``; its skew part (sin(angle) x axis) below 90 deg, which leads
    Newton's steps to the same zero at a fraction of the cost."""
    if np.trace(rotation) < 1.0:
        return Rotation.from_matrix(rotation).as_rotvec()
    return 0.5 * np.array([rotation[2, 1] - rotation[1, 2], rotation[0, 2] - rotation[2, 0],
                           rotation[1, 0] - rotation[0, 1]])
