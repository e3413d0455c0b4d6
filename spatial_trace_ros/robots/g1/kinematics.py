"""Kinematics of the G1 arms (7 DoF each), planned in ``torso_link`` with the waist held fixed.

Joint origins, axes and limits are the published ``g1_29dof`` URDF facts (unitree_ros
``g1_description``). Every arm joint turns about a principal axis of its own frame, so forward
kinematics is a chain of fixed origins and one elementary rotation per joint. IK is damped least
squares started from ``q_near`` with the joint limits enforced at every step; the redundant 7th
degree of freedom stays where ``q_near`` had it because the minimum-norm steps leave it alone.

Joint speed limits are those of arm_sdk operation (0.5 rad/s, see ``config/g1.yaml``), not the
motors' 22-37 rad/s, so plans the planner times with this model are ones the driver will follow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from transforms3d.euler import euler2mat

from spatial_trace_ros.geometry.transforms import Transform
from spatial_trace_ros.robots.g1.motors import LEFT_ARM_JOINTS, RIGHT_ARM_JOINTS, WAIST_JOINTS
from spatial_trace_ros.robots.model import Capsule, RobotModel

BASE_FRAME = "torso_link"
ARM_SDK_MAX_VELOCITY_RADPS = 0.5

# Waist joints (pelvis -> torso_link). The arm_sdk driver holds them where they are; their limits
# bound what it will hold.
WAIST_LIMITS_RAD: dict[str, tuple[float, float]] = dict(
    zip(WAIST_JOINTS, ((-2.618, 2.618), (-0.52, 0.52), (-0.52, 0.52)))  # yaw, roll, pitch
)

# Head RealSense D435 mount (d435_joint, fixed on torso_link): the link is x forward, y left, z up,
# pitched down about y. Its color optical frame is that link turned to x right, y down, z forward.
HEAD_CAMERA_XYZ_M = (0.0576235, 0.01753, 0.41987)
HEAD_CAMERA_PITCH_RAD = 0.8307767239493009
_LINK_R_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])

# Coarse collision radii (m). The torso is a capsule on its z axis, up to the shoulders.
TORSO_CAPSULE = (np.array([0.0, 0.0, 0.02]), np.array([0.0, 0.0, 0.26]), 0.07)
UPPER_ARM_RADIUS_M = 0.045
FOREARM_RADIUS_M = 0.04
HAND_RADIUS_M = 0.04
HAND_LENGTH_M = 0.08  # the hand reaches this far past the tool frame along its x axis

# Singularity measure: the Jacobian's linear rows are divided by this length before taking the
# condition number. MoveIt Servo's thresholds (slow down at 17, stop at 30) assume arm links of a
# UR's size; the G1's are 0.1-0.2 m, which puts the raw number at 20-40 in ordinary poses. Scaled by
# a characteristic length (Angeles) the number is unit-consistent: 6-14 in ordinary poses, rising
# past 30 only near real singularities, so the same thresholds mean the same thing on both robots.
CHARACTERISTIC_LENGTH_M = 0.15


@dataclass(frozen=True)
class ArmJoint:
    """One revolute joint as the URDF gives it: origin in the parent link, axis index (0 x, 1 y, 2 z)."""

    name: str
    xyz_m: tuple[float, float, float]
    rpy_rad: tuple[float, float, float]
    axis: int
    lower_rad: float
    upper_rad: float


LEFT_ARM_CHAIN: tuple[ArmJoint, ...] = (
    ArmJoint("left_shoulder_pitch_joint", (0.0039563, 0.10022, 0.23778), (0.27931, 5.4949e-05, -0.00019159), 1,
             -3.0892, 2.6704),
    ArmJoint("left_shoulder_roll_joint", (0.0, 0.038, -0.013831), (-0.27925, 0.0, 0.0), 0, -1.5882, 2.2515),
    ArmJoint("left_shoulder_yaw_joint", (0.0, 0.00624, -0.1032), (0.0, 0.0, 0.0), 2, -2.618, 2.618),
    ArmJoint("left_elbow_joint", (0.015783, 0.0, -0.080518), (0.0, 0.0, 0.0), 1, -1.0472, 2.0944),
    ArmJoint("left_wrist_roll_joint", (0.100, 0.00188791, -0.010), (0.0, 0.0, 0.0), 0, -1.972222054, 1.972222054),
    ArmJoint("left_wrist_pitch_joint", (0.038, 0.0, 0.0), (0.0, 0.0, 0.0), 1, -1.614429558, 1.614429558),
    ArmJoint("left_wrist_yaw_joint", (0.046, 0.0, 0.0), (0.0, 0.0, 0.0), 2, -1.614429558, 1.614429558),
)
RIGHT_ARM_CHAIN: tuple[ArmJoint, ...] = (
    ArmJoint("right_shoulder_pitch_joint", (0.0039563, -0.10021, 0.23778), (-0.27931, 5.4949e-05, 0.00019159), 1,
             -3.0892, 2.6704),
    ArmJoint("right_shoulder_roll_joint", (0.0, -0.038, -0.013831), (0.27925, 0.0, 0.0), 0, -2.2515, 1.5882),
    ArmJoint("right_shoulder_yaw_joint", (0.0, -0.00624, -0.1032), (0.0, 0.0, 0.0), 2, -2.618, 2.618),
    ArmJoint("right_elbow_joint", (0.015783, 0.0, -0.080518), (0.0, 0.0, 0.0), 1, -1.0472, 2.0944),
    ArmJoint("right_wrist_roll_joint", (0.100, -0.00188791, -0.010), (0.0, 0.0, 0.0), 0, -1.972222054, 1.972222054),
    ArmJoint("right_wrist_pitch_joint", (0.038, 0.0, 0.0), (0.0, 0.0, 0.0), 1, -1.614429558, 1.614429558),
    ArmJoint("right_wrist_yaw_joint", (0.046, 0.0, 0.0), (0.0, 0.0, 0.0), 2, -1.614429558, 1.614429558),
)
# Fixed {left,right}_hand_palm_joint: wrist_yaw_link -> {left,right}_rubber_hand (the tool frame).
LEFT_HAND_XYZ_M = (0.0415, 0.003, 0.0)
RIGHT_HAND_XYZ_M = (0.0415, -0.003, 0.0)


def head_camera_extrinsic() -> Transform:
    """``torso_link_T_camera_color_optical_frame`` of the head D435 (the default eye-to-hand extrinsic).

    From the URDF mount; the few millimetres between the D435's mounting frame and its color imager
    are not modelled, so calibrate for better than about 1 cm.
    """
    R = euler2mat(0.0, HEAD_CAMERA_PITCH_RAD, 0.0, "sxyz") @ _LINK_R_OPTICAL
    return Transform.from_rotation_translation(R, HEAD_CAMERA_XYZ_M, BASE_FRAME, "camera_color_optical_frame")


def _origin(joint: ArmJoint) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = euler2mat(*joint.rpy_rad, "sxyz")
    m[:3, 3] = joint.xyz_m
    return m


def _rotation_log(R: np.ndarray) -> np.ndarray:
    """Rotation vector of ``R`` (axis times angle), robust near 0 and pi."""
    cos_angle = np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0)
    angle = float(np.arccos(cos_angle))
    skew = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    if angle < 1e-6:
        return 0.5 * skew
    if np.pi - angle > 1e-4:
        return angle / (2.0 * np.sin(angle)) * skew
    # Near pi: the axis is the dominant column of (R + I) / 2.
    B = (R + np.eye(3)) / 2.0
    k = int(np.argmax(np.diag(B)))
    axis = B[:, k] / np.sqrt(max(B[k, k], 1e-12))
    axis /= np.linalg.norm(axis)
    if np.dot(axis, skew) < 0:
        axis = -axis
    return angle * axis


class G1ArmModel(RobotModel):
    """One G1 arm from its shoulder to the rubber hand, in ``torso_link``."""

    ik_position_tolerance_m = 1e-4
    ik_rotation_tolerance_rad = 1e-3
    ik_max_iterations = 150
    ik_damping = 0.05
    ik_max_step_rad = 0.3
    ik_restarts = 6

    def __init__(self, name: str, side: str, chain: tuple[ArmJoint, ...], hand_xyz_m: tuple[float, float, float],
                 joint_names: tuple[str, ...]) -> None:
        if tuple(j.name for j in chain) != joint_names:
            raise ValueError(f"{name}: URDF chain {[j.name for j in chain]} does not match joints {joint_names}")
        self.name = name
        self.side = side
        self.base_frame = BASE_FRAME
        self.tool_frame = f"{side}_rubber_hand"
        self.joint_names = joint_names
        self.lower_rad = np.array([j.lower_rad for j in chain])
        self.upper_rad = np.array([j.upper_rad for j in chain])
        self.max_velocity_radps = np.full(len(chain), ARM_SDK_MAX_VELOCITY_RADPS)
        self._origins = [_origin(j) for j in chain]
        self._axes = [j.axis for j in chain]
        self._tool = np.eye(4)
        self._tool[:3, 3] = hand_xyz_m
        self.shoulder_m = self._origins[0][:3, 3].copy()
        # Longest possible shoulder-to-hand distance: the chain's offsets laid end to end.
        offsets = [np.linalg.norm(o[:3, 3]) for o in self._origins[1:]] + [np.linalg.norm(hand_xyz_m)]
        self.max_reach_m = float(sum(offsets))

    # -- forward kinematics ------------------------------------------------------------------------
    def _chain(self, q: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        q = np.asarray(q, dtype=float)
        if q.shape != (self.dof,):
            raise ValueError(f"{self.name} needs {self.dof} joint positions, got shape {q.shape}")
        frames = []
        T = np.eye(4)
        for origin, axis, angle in zip(self._origins, self._axes, q):
            T = T @ origin
            c, s = np.cos(angle), np.sin(angle)
            rot = np.eye(4)
            i, j = [(1, 2), (2, 0), (0, 1)][axis]
            rot[i, i] = c
            rot[j, j] = c
            rot[i, j] = -s
            rot[j, i] = s
            T = T @ rot
            frames.append(T)
        return frames, T @ self._tool

    def fk(self, q: np.ndarray) -> np.ndarray:
        return self._chain(q)[1]

    def link_frames(self, q: np.ndarray) -> list[np.ndarray]:
        frames, tool = self._chain(q)
        return [*frames, tool]

    def _jacobian_from(self, frames: list[np.ndarray], tool: np.ndarray) -> np.ndarray:
        Z = np.array([T[:3, axis] for T, axis in zip(frames, self._axes)])  # joint axes, dof x 3
        R = tool[:3, 3] - np.array([T[:3, 3] for T in frames])  # joint origin -> tool, dof x 3
        J = np.empty((6, self.dof))
        J[0] = Z[:, 1] * R[:, 2] - Z[:, 2] * R[:, 1]
        J[1] = Z[:, 2] * R[:, 0] - Z[:, 0] * R[:, 2]
        J[2] = Z[:, 0] * R[:, 1] - Z[:, 1] * R[:, 0]
        J[3:] = Z.T
        return J

    def jacobian(self, q: np.ndarray) -> np.ndarray:
        return self._jacobian_from(*self._chain(q))

    def conditioning_jacobians(self, qs: np.ndarray) -> np.ndarray:
        """Jacobians with the linear rows divided by ``CHARACTERISTIC_LENGTH_M`` (unit-consistent)."""
        J = self.jacobian_many(qs)
        J[:, :3] /= CHARACTERISTIC_LENGTH_M
        return J

    # -- inverse kinematics ------------------------------------------------------------------------
    def _pose_error(self, target: np.ndarray, current: np.ndarray) -> np.ndarray:
        err = np.empty(6)
        err[:3] = target[:3, 3] - current[:3, 3]
        err[3:] = _rotation_log(target[:3, :3] @ current[:3, :3].T)
        return err

    def _within_tolerance(self, err: np.ndarray) -> bool:
        return bool(np.linalg.norm(err[:3]) < self.ik_position_tolerance_m
                    and np.linalg.norm(err[3:]) < self.ik_rotation_tolerance_rad)

    def _solve(self, target: np.ndarray, seed: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, float]:
        """Damped least squares from ``seed``: (the solution or None, the closest q met, its error size)."""
        q = np.clip(seed, self.lower_rad, self.upper_rad)
        eye6 = np.eye(6)
        best, closest = np.inf, q
        stalled = 0
        for _ in range(self.ik_max_iterations):
            frames, tool = self._chain(q)
            err = self._pose_error(target, tool)
            if self._within_tolerance(err):
                return q, q, 0.0
            size = np.linalg.norm(err[:3]) + 0.1 * np.linalg.norm(err[3:])
            stalled = stalled + 1 if size > 0.99 * best else 0
            if size < best:
                best, closest = size, q
            if stalled >= 8:
                return None, closest, best  # stuck at a joint limit or a singularity: let another seed try
            J = self._jacobian_from(frames, tool)
            # Damping shrinks with the error squared: robust far away, fast convergence close in (also
            # where the arm is nearly singular, where linear shrinking stalled at a 0.2 mm residual).
            lam2 = self.ik_damping**2 * min(1.0, size / 0.05) ** 2
            dq = self._limited_step(J, err, q, lam2 * eye6)
            step = np.max(np.abs(dq))
            if step > self.ik_max_step_rad:
                dq *= self.ik_max_step_rad / step
            q = np.clip(q + dq, self.lower_rad, self.upper_rad)
        return None, closest, best

    def _polish(self, target: np.ndarray, q0: np.ndarray) -> np.ndarray | None:
        """Bounded nonlinear least squares (scipy's trust-region reflective) from the closest q the damped
        iterations met: the last resort for poses that need joints pressed against their limits."""
        weights = np.array([1.0, 1.0, 1.0, 0.1, 0.1, 0.1])

        def residual(q: np.ndarray) -> np.ndarray:
            return weights * self._pose_error(target, self.fk(q))

        def jacobian(q: np.ndarray) -> np.ndarray:
            return -weights[:, None] * self.jacobian(q)

        fit = least_squares(residual, q0, jac=jacobian, bounds=(self.lower_rad, self.upper_rad), method="trf",
                            xtol=1e-12, ftol=1e-12, gtol=1e-12, max_nfev=200)
        q = np.clip(fit.x, self.lower_rad, self.upper_rad)
        return q if self._within_tolerance(self._pose_error(target, self.fk(q))) else None

    def _limited_step(self, J: np.ndarray, err: np.ndarray, q: np.ndarray, damping: np.ndarray) -> np.ndarray:
        """The damped least-squares step, solved again without the joints that sit at a limit and are
        pushed past it. Clipping alone would leave the other joints moving as if those had moved too, and
        the iteration stalls on targets that need a joint at its limit."""
        at_lower = q <= self.lower_rad + 1e-9
        at_upper = q >= self.upper_rad - 1e-9
        locked = np.zeros(self.dof, bool)
        for _ in range(self.dof):
            Jf = np.where(locked, 0.0, J)
            dq = Jf.T @ np.linalg.solve(Jf @ Jf.T + damping, err)
            pushed_out = ~locked & ((at_lower & (dq < 0)) | (at_upper & (dq > 0)))
            if not pushed_out.any():
                return dq
            locked |= pushed_out
        return dq

    def ik(self, base_T_tool: np.ndarray, q_near: np.ndarray) -> np.ndarray | None:
        target = np.asarray(base_T_tool, dtype=float)
        q_near = np.clip(np.asarray(q_near, dtype=float), self.lower_rad, self.upper_rad)
        if target.shape != (4, 4) or not np.all(np.isfinite(target)):
            return None
        if np.linalg.norm(target[:3, 3] - self.shoulder_m) > self.max_reach_m:
            return None  # further than the arm stretched out: no need to iterate
        solution, closest, closest_size = self._solve(target, q_near)
        if solution is not None:
            return solution
        # Restarts from fixed seeds spread over the joint ranges (deterministic: same answer every time).
        rng = np.random.default_rng(7)
        found = []
        for _ in range(self.ik_restarts):
            seed = rng.uniform(self.lower_rad, self.upper_rad)
            q, near, size = self._solve(target, seed)
            if q is not None:
                found.append(q)
            elif size < closest_size:
                closest, closest_size = near, size
        if found:
            return min(found, key=lambda q: float(np.linalg.norm(q - q_near)))
        return self._polish(target, closest)

    # -- collision volumes -------------------------------------------------------------------------
    def capsules(self, q: np.ndarray) -> list[Capsule]:
        frames, tool = self._chain(q)
        p = [T[:3, 3] for T in frames]
        hand_tip = tool[:3, 3] + tool[:3, 0] * HAND_LENGTH_M
        side = self.side
        return [
            Capsule("torso_link", TORSO_CAPSULE[0].copy(), TORSO_CAPSULE[1].copy(), TORSO_CAPSULE[2]),
            Capsule(f"{side}_upper_arm", p[1].copy(), p[3].copy(), UPPER_ARM_RADIUS_M),  # shoulder roll -> elbow
            Capsule(f"{side}_forearm", p[3].copy(), p[5].copy(), FOREARM_RADIUS_M),  # elbow -> wrist pitch
            Capsule(f"{side}_hand", p[5].copy(), hand_tip, HAND_RADIUS_M),
        ]


def g1_left_arm() -> G1ArmModel:
    return G1ArmModel("g1_left_arm", "left", LEFT_ARM_CHAIN, LEFT_HAND_XYZ_M, LEFT_ARM_JOINTS)


def g1_right_arm() -> G1ArmModel:
    return G1ArmModel("g1_right_arm", "right", RIGHT_ARM_CHAIN, RIGHT_HAND_XYZ_M, RIGHT_ARM_JOINTS)
