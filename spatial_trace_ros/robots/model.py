"""The ``RobotModel`` contract: kinematics and limits of one arm, without any I/O.

The planner, the safety filter and the controller's per-setpoint guard all ask the same model, so a
plan that passed at plan time is checked against identical limits at run time. Poses are 4x4
``base_T_tool`` matrices in the model's ``base_frame`` (for UR: the controller's ``base`` frame that
RTDE poses use, i.e. ``base_link`` rotated by pi about z).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from spatial_trace_ros.registry import load_registered

# Safety factor of the Cholesky certificate in ``RobotModel.condition_numbers_below``.
CONDITION_CERTIFICATE_MARGIN = 1.25


@dataclass(frozen=True)
class Capsule:
    """A link's coarse collision volume: the segment p0-p1 (base frame) swept by a sphere."""

    link: str
    p0: np.ndarray
    p1: np.ndarray
    radius_m: float


@dataclass(frozen=True)
class OneConfiguration:
    """What the run-time screen needs of one joint row, as plain floats where it loops: the
    conditioning Jacobian (6, dof) and the capsule end points (L lists of 3) and radii (L,)."""

    jacobian: np.ndarray
    p0: list[list[float]]
    p1: list[list[float]]
    radii: list[float]


class RobotModel(ABC):
    """Forward/inverse kinematics, Jacobian and limits of one serial arm."""

    name: str
    base_frame: str
    tool_frame: str
    joint_names: tuple[str, ...]
    lower_rad: np.ndarray
    upper_rad: np.ndarray
    max_velocity_radps: np.ndarray

    @property
    def dof(self) -> int:
        return len(self.joint_names)

    @abstractmethod
    def fk(self, q: np.ndarray) -> np.ndarray:
        """``base_T_tool`` (4x4) at joint positions ``q``."""

    @abstractmethod
    def link_frames(self, q: np.ndarray) -> list[np.ndarray]:
        """``base_T_link_i`` for every joint frame and the tool, in chain order (for capsules, RViz)."""

    @abstractmethod
    def jacobian(self, q: np.ndarray) -> np.ndarray:
        """6 x dof geometric Jacobian in the base frame: rows vx, vy, vz, wx, wy, wz."""

    @abstractmethod
    def ik(self, base_T_tool: np.ndarray, q_near: np.ndarray) -> np.ndarray | None:
        """The joint solution within limits nearest to ``q_near``, or None if the pose is unreachable."""

    @abstractmethod
    def capsules(self, q: np.ndarray) -> list[Capsule]:
        """Coarse collision capsules of the links at ``q`` (adjacent links may touch)."""

    def within_limits(self, q: np.ndarray, margin_rad: float = 0.0) -> bool:
        q = np.asarray(q, float)
        return bool(np.all(q >= self.lower_rad + margin_rad) and np.all(q <= self.upper_rad - margin_rad))

    def condition_number(self, q: np.ndarray) -> float:
        """Jacobian condition number (the MoveIt Servo singularity measure), as ``condition_numbers``."""
        return float(self.condition_numbers(np.asarray(q, float)[None])[0])

    # -- batch forms used by the planner and safety filter; models may override them with vectorised
    # versions (the UR model does), these defaults loop over the single-configuration methods.
    def fk_many(self, qs: np.ndarray) -> np.ndarray:
        """``base_T_tool`` (N, 4, 4) for joint rows (N, dof)."""
        return np.array([self.fk(q) for q in np.asarray(qs, float).reshape(-1, self.dof)])

    def jacobian_many(self, qs: np.ndarray) -> np.ndarray:
        """Geometric Jacobians (N, 6, dof) for joint rows (N, dof)."""
        return np.array([self.jacobian(q) for q in np.asarray(qs, float).reshape(-1, self.dof)])

    def conditioning_jacobians(self, qs: np.ndarray) -> np.ndarray:
        """The Jacobians (N, 6, dof) whose condition number measures closeness to a singularity. A
        model may scale rows (e.g. linear rows by a characteristic length); ``condition_numbers`` and
        ``condition_numbers_below`` both use this, so they always measure the same thing."""
        return self.jacobian_many(qs)

    def condition_numbers(self, qs: np.ndarray) -> np.ndarray:
        """Jacobian condition numbers (N,) (inf at an exact singularity)."""
        jac = self.conditioning_jacobians(qs)
        jt = np.swapaxes(jac, 1, 2)
        # Eigenvalues of the smaller Gram matrix are the squared singular values (cheaper than an SVD).
        eig = np.linalg.eigvalsh(jt @ jac if jac.shape[2] <= 6 else jac @ jt)
        lo, hi = eig[:, 0], eig[:, -1]
        singular = lo <= hi * 1e-14
        return np.where(singular, np.inf, np.sqrt(hi / np.where(singular, 1.0, lo)))

    def condition_numbers_below(self, qs: np.ndarray, limit: float) -> bool:
        """True when every row's Jacobian condition number is provably below ``limit``; False when that
        is not certain (then ask ``condition_numbers``). Much cheaper than the eigenvalues: with
        ``G = J^T J`` and ``lambda_max <= trace(G)``, a Cholesky factorisation of
        ``G - CONDITION_CERTIFICATE_MARGIN * trace(G) / limit^2 * I`` exists only if
        ``lambda_min > trace(G) / limit^2 >= lambda_max / limit^2``. The margin (25 %) dwarfs the
        factorisation's round-off (about 1e-13 of the trace), so the answer True is never wrong."""
        jac = self.conditioning_jacobians(qs)
        if len(jac) == 0:
            return True
        gram = np.einsum("nki,nkj->nij", jac, jac) if jac.shape[2] <= 6 else np.einsum("nik,njk->nij", jac, jac)
        if not np.all(np.isfinite(gram)):
            return False
        shift = CONDITION_CERTIFICATE_MARGIN * np.trace(gram, axis1=1, axis2=2) / (limit * limit)
        size = gram.shape[1]
        gram[:, np.arange(size), np.arange(size)] -= shift[:, None]
        try:
            np.linalg.cholesky(gram)
        except np.linalg.LinAlgError:
            return False
        return True

    def ik_path(self, poses: np.ndarray, q_near: np.ndarray) -> np.ndarray:
        """Joint rows (N, dof) for a path of poses, each solved near the previous one so the arm does
        not switch configuration mid-path; NaN rows where a pose is unreachable."""
        out = np.full((len(poses), self.dof), np.nan)
        seed = np.asarray(q_near, float)
        for i, pose in enumerate(poses):
            q = self.ik(pose, seed)
            if q is not None:
                out[i] = seed = q
        return out

    def capsule_segments_many(self, qs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Capsules at each joint row: end points (N, L, 3) twice and radii (L,)."""
        caps = [self.capsules(q) for q in np.asarray(qs, float).reshape(-1, self.dof)]
        p0 = np.array([[c.p0 for c in row] for row in caps], float)
        p1 = np.array([[c.p1 for c in row] for row in caps], float)
        return p0, p1, np.array([c.radius_m for c in caps[0]], float)

    def one_configuration(self, q: np.ndarray) -> OneConfiguration:
        """``conditioning_jacobians`` and ``capsule_segments_many`` of one row; models may compute it
        faster (the UR model does, in scalar arithmetic)."""
        qs = np.asarray(q, float).reshape(1, self.dof)
        p0, p1, radii = self.capsule_segments_many(qs)
        return OneConfiguration(self.conditioning_jacobians(qs)[0], p0[0].tolist(), p1[0].tolist(), radii.tolist())

    def self_collision_pairs(self) -> list[tuple[int, int]]:
        """Capsule index pairs that must never touch: by default every non-adjacent pair."""
        n = len(self.capsules(np.zeros(self.dof)))
        return [(i, j) for i in range(n) for j in range(i + 2, n)]


# robot name -> "module:factory"; factory() -> RobotModel.
ROBOT_MODELS: dict[str, str] = {
    "ur5": "spatial_trace_ros.robots.ur.kinematics:ur5",
    "ur5e": "spatial_trace_ros.robots.ur.kinematics:ur5e",
    "g1_left_arm": "spatial_trace_ros.robots.g1.kinematics:g1_left_arm",
    "g1_right_arm": "spatial_trace_ros.robots.g1.kinematics:g1_right_arm",
}


def make_robot_model(name: str) -> RobotModel:
    """The model registered under ``name``; unknown names are answered with the known ones."""
    return load_registered(ROBOT_MODELS, name, "robot")()
