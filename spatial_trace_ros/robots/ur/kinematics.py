"""UR5 / UR5e kinematics in closed form from the published DH parameters.

Frames: poses are ``base_T_tool0`` in the controller's ``base`` frame, the frame RTDE poses use
(``getActualTCPPose``, ``moveL`` targets); the UR ROS description's ``base_link`` is this frame
rotated by pi about z. ``tool0`` is the flange (TCP offset zero on the pendant).

Inverse kinematics is the classic analytic solution for arms with three parallel middle axes and a
spherical-offset wrist: eight solutions (shoulder left/right x wrist flip x elbow up/down), each joint
then shifted by multiples of 2 pi to the value nearest the reference that lies within the limits.
Everything is vectorised over many poses, so a 100-waypoint path solves in well under a millisecond.
One pose (the run-time guard solves one every control period) takes the same formulas in scalar
Python (``_solve_one``): numpy's per-call overhead dominates on eight rows. Measured per pose (bench/
bench_ur_controller.py): numpy form ~150 us, scalar form ~35 us, the compiled ``ur-analytic-ik`` 0.1
~15 us, which was not taken: at the UR home pose it discards four valid solutions as "incorrect"
(printing warnings to stdout) and so answers a far configuration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spatial_trace_ros.robots.model import Capsule, OneConfiguration, RobotModel

TWO_PI = 2.0 * np.pi
# Tolerance on the cosine arguments of the closed form: poses this far past the boundary of the
# reachable set are treated as on it (numerical noise), further ones as unreachable. At full stretch
# next to the wrist singularity round-off reaches ~1e-7 here (well under a micrometre of reach); such
# poses are singular and refused by the safety filter anyway.
ACOS_TOLERANCE = 1e-6
# "Nearest" configuration weighs the proximal joints more: moving them sweeps the whole arm, while a
# wrist turn moves little. Without this a far wrist-3 turn can make a shoulder flip look "nearer".
JOINT_DISTANCE_WEIGHTS = np.array([2.0, 2.0, 1.5, 1.0, 1.0, 1.0])
# |sin(q5)| below this is the wrist singularity, where q6 is not determined by the pose alone.
WRIST_SINGULAR_SIN = 1e-9


@dataclass(frozen=True)
class UrDh:
    """Standard DH lengths [m] of one UR arm (a1 = d2 = d3 = a4 = a5 = a6 = 0)."""

    d1: float
    a2: float
    a3: float
    d4: float
    d5: float
    d6: float

    @property
    def d(self) -> np.ndarray:
        return np.array([self.d1, 0.0, 0.0, self.d4, self.d5, self.d6])

    @property
    def a(self) -> np.ndarray:
        return np.array([0.0, self.a2, self.a3, 0.0, 0.0, 0.0])


UR_ALPHA = np.array([np.pi / 2, 0.0, 0.0, np.pi / 2, -np.pi / 2, 0.0])
UR5_DH = UrDh(d1=0.089159, a2=-0.425, a3=-0.39225, d4=0.10915, d5=0.09465, d6=0.0823)
UR5E_DH = UrDh(d1=0.1625, a2=-0.425, a3=-0.3922, d4=0.1333, d5=0.0997, d6=0.0996)
UR_JOINT_NAMES = (
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "elbow_joint",
    "wrist_1_joint",
    "wrist_2_joint",
    "wrist_3_joint",
)
# Coarse link radii [m] for the capsules along the DH segments (base column, upper arm, forearm, wrists).
UR_CAPSULE_RADII_M = (0.075, 0.06, 0.05, 0.04, 0.04, 0.04)
UR_CAPSULE_LINKS = ("base_column", "upper_arm", "forearm", "wrist_1", "wrist_2", "wrist_3")
# Non-adjacent capsule pairs that the DH offsets keep apart in every configuration (forearm / wrist 2
# by d4, wrist 1 / wrist 3 by d5, both more than their radii): never checked.
UR_SEPARATED_PAIRS = frozenset({(2, 4), (3, 5)})


def _wrap(angles: np.ndarray) -> np.ndarray:
    """Angles into [-pi, pi)."""
    return (angles + np.pi) % TWO_PI - np.pi


def _dh_matrices(q: np.ndarray, dh: UrDh) -> np.ndarray:
    """``(i-1)_T_i`` for every joint: (..., 6, 4, 4) from joint angles (..., 6)."""
    ct, st = np.cos(q), np.sin(q)
    ca, sa = np.cos(UR_ALPHA), np.sin(UR_ALPHA)
    a, d = dh.a, dh.d
    m = np.zeros((*q.shape, 4, 4))
    m[..., 0, 0] = ct
    m[..., 0, 1] = -st * ca
    m[..., 0, 2] = st * sa
    m[..., 0, 3] = a * ct
    m[..., 1, 0] = st
    m[..., 1, 1] = ct * ca
    m[..., 1, 2] = -ct * sa
    m[..., 1, 3] = a * st
    m[..., 2, 1] = sa
    m[..., 2, 2] = ca
    m[..., 2, 3] = d
    m[..., 3, 3] = 1.0
    return m


class UrKinematics(RobotModel):
    """A UR arm (CB3 or e-Series) from its DH lengths; limits as in the UR description."""

    base_frame = "base"
    tool_frame = "tool0"
    joint_names = UR_JOINT_NAMES

    def __init__(self, name: str, dh: UrDh) -> None:
        self.name = name
        self.dh = dh
        # +-360 deg on every joint except the elbow (+-180 deg, it would hit itself beyond).
        self.upper_rad = np.array([TWO_PI, TWO_PI, np.pi, TWO_PI, TWO_PI, TWO_PI])
        self.lower_rad = -self.upper_rad
        self.max_velocity_radps = np.full(6, np.pi)  # 180 deg/s on every joint
        self.capsule_radii_m = np.array(UR_CAPSULE_RADII_M)
        self._frames_cache: tuple[bytes, np.ndarray] | None = None  # (joint rows as bytes, frames)
        self._cos_alpha, self._sin_alpha = np.cos(UR_ALPHA).tolist(), np.sin(UR_ALPHA).tolist()
        self._dh_a, self._dh_d = dh.a.tolist(), dh.d.tolist()
        self._radii_list = list(UR_CAPSULE_RADII_M)
        self._one_cache: tuple[bytes, OneConfiguration] | None = None

    # -- forward kinematics -----------------------------------------------------------------------
    def link_frames_many(self, qs: np.ndarray) -> np.ndarray:
        """``base_T_i`` for i = 0 (base) .. 6 (tool0): (N, 7, 4, 4) for joint rows (N, 6).

        The last result is kept: the safety checks ask for the frames of the same path several times
        (Jacobians, capsules, table). The cache entry is one tuple, swapped atomically, so threads
        sharing a model never see a half-written entry. Callers must not modify the returned array.
        """
        qs = np.asarray(qs, float).reshape(-1, 6)
        key = qs.tobytes()
        cached = self._frames_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        if len(qs) == 1:  # one configuration (the run-time guard): scalar arithmetic beats numpy's overhead
            frames = self._frames_one(qs[0])
        else:
            steps = _dh_matrices(qs, self.dh)
            frames = np.empty((len(qs), 7, 4, 4))
            frames[:, 0] = np.eye(4)
            for i in range(6):
                frames[:, i + 1] = frames[:, i] @ steps[:, i]
        frames.setflags(write=False)
        self._frames_cache = (key, frames)
        return frames

    def _frames_one(self, q: np.ndarray) -> np.ndarray:
        """``link_frames_many`` of one row (1, 7, 4, 4)."""
        frames = np.zeros((1, 7, 4, 4))
        frames[0, :, :3, :] = np.array(self._chain_one(q)).transpose(0, 2, 1)
        frames[0, :, 3, 3] = 1.0
        return frames

    def _chain_one(self, q: np.ndarray) -> list[tuple[tuple[float, ...], ...]]:
        """The frames' axes and origins (x, y, z, p) of one row, the DH product written out per joint:
        x' = c x + s y, y' = ca (c y - s x) + sa z, z' = ca z - sa (c y - s x), p' = p + a x' + d z."""
        x, y, z, p = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (0.0, 0.0, 0.0)
        rows = [(x, y, z, p)]
        for qi, ca, sa, a, d in zip(q.tolist(), self._cos_alpha, self._sin_alpha, self._dh_a, self._dh_d, strict=True):
            c, s = math.cos(qi), math.sin(qi)
            nx = (c * x[0] + s * y[0], c * x[1] + s * y[1], c * x[2] + s * y[2])
            v = (c * y[0] - s * x[0], c * y[1] - s * x[1], c * y[2] - s * x[2])
            ny = (ca * v[0] + sa * z[0], ca * v[1] + sa * z[1], ca * v[2] + sa * z[2])
            z = (ca * z[0] - sa * v[0], ca * z[1] - sa * v[1], ca * z[2] - sa * v[2])
            p = (p[0] + a * nx[0] + d * rows[-1][2][0], p[1] + a * nx[1] + d * rows[-1][2][1],
                 p[2] + a * nx[2] + d * rows[-1][2][2])
            x, y = nx, ny
            rows.append((x, y, z, p))
        return rows

    def one_configuration(self, q: np.ndarray) -> OneConfiguration:
        """The Jacobian (columns z_i x (p_tool - p_i); z_i) and the capsules straight from the scalar
        chain; the last answer is kept (the guard's screens ask twice for the same joints)."""
        q = np.asarray(q, float).reshape(6)
        key = q.tobytes()
        cached = self._one_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        rows = self._chain_one(q)
        origins = [list(r[3]) for r in rows]
        tx, ty, tz = rows[6][3]
        jac = []
        for _, _, (zx, zy, zz), (px, py, pz) in rows[:6]:
            rx, ry, rz = tx - px, ty - py, tz - pz
            jac.append((zy * rz - zz * ry, zz * rx - zx * rz, zx * ry - zy * rx, zx, zy, zz))
        one = OneConfiguration(np.array(jac).T, origins[:-1], origins[1:], self._radii_list)
        self._one_cache = (key, one)
        return one

    def fk_many(self, qs: np.ndarray) -> np.ndarray:
        return self.link_frames_many(qs)[:, -1].copy()

    def fk(self, q: np.ndarray) -> np.ndarray:
        return self.link_frames_many(q)[0, -1].copy()

    def link_frames(self, q: np.ndarray) -> list[np.ndarray]:
        return [f.copy() for f in self.link_frames_many(q)[0]]

    # -- Jacobian -------------------------------------------------------------------------------------
    def jacobian_many(self, qs: np.ndarray) -> np.ndarray:
        """Geometric Jacobians (N, 6, 6) in the base frame: column i = [z_i x (p_tool - p_i); z_i]."""
        frames = self.link_frames_many(qs)
        z = frames[:, :6, :3, 2]
        p = frames[:, :6, :3, 3]
        p_tool = frames[:, 6, :3, 3][:, None, :]
        r = p_tool - p
        zx, zy, zz = z[..., 0], z[..., 1], z[..., 2]
        rx, ry, rz = r[..., 0], r[..., 1], r[..., 2]
        jac = np.empty((len(frames), 6, 6))
        # z x r written out (np.cross does the same products, with more overhead on small arrays).
        jac[:, 0, :] = zy * rz - zz * ry
        jac[:, 1, :] = zz * rx - zx * rz
        jac[:, 2, :] = zx * ry - zy * rx
        jac[:, 3:, :] = z.transpose(0, 2, 1)
        return jac

    def jacobian(self, q: np.ndarray) -> np.ndarray:
        return self.jacobian_many(q)[0]

    # -- inverse kinematics ---------------------------------------------------------------------------
    def ik_all_many(self, poses: np.ndarray, q6_hint: np.ndarray | None = None,
                    branch: int | None = None) -> np.ndarray:
        """All eight closed-form solutions of each pose: (N, 8, 6), angles in [-pi, pi), NaN rows
        where a branch cannot reach the pose. ``q6_hint`` (N,) fills q6 at the wrist singularity.

        Solution k uses shoulder sign ``k // 4``, wrist sign ``(k // 2) % 2`` and elbow sign ``k % 2``
        (index 0 = +, 1 = -). All branches are computed at once by broadcasting (axes: pose, shoulder,
        wrist, elbow); with ``branch`` only that one is computed and the result is (N, 1, 6).
        """
        T = np.asarray(poses, float).reshape(-1, 4, 4)
        n = len(T)
        dh = self.dh
        hint = np.zeros(n) if q6_hint is None else np.asarray(q6_hint, float).reshape(n)
        X, Y, Z, p6 = (T[:, :3, i] for i in range(4))  # tool axes and position in the base frame
        p5 = p6 - dh.d6 * Z  # wrist centre (frame 5 origin)
        both = np.array([1.0, -1.0])
        if branch is None:
            sign1 = sign5 = sign3 = both
        else:
            sign1, sign5, sign3 = (both[[i]] for i in (branch // 4, (branch // 2) % 2, branch % 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            # Shoulder: the offset d4 along z1 = (s1, -c1, 0) fixes q1 from the wrist centre.
            r = np.hypot(p5[:, 0], p5[:, 1])
            phi = np.arccos(_clip_or_nan(dh.d4 / r))
            q1 = (np.arctan2(p5[:, 1], p5[:, 0]) + np.pi / 2)[:, None] + sign1[None, :] * phi[:, None]  # (n, 2)
            s1, c1 = np.sin(q1), np.cos(q1)
            # Wrist: z1 seen from tool0 is (s5 c6, -s5 s6, c5), so q5 and q6 follow from the tool axes.
            # (atan2 of both components stays accurate at the wrist singularity, unlike arccos(c5).)
            vx = (X[:, 0:1] * s1 - X[:, 1:2] * c1)[:, :, None]
            vy = (Y[:, 0:1] * s1 - Y[:, 1:2] * c1)[:, :, None]
            vz = (Z[:, 0:1] * s1 - Z[:, 1:2] * c1)[:, :, None]
            q5 = sign5[None, None, :] * np.arctan2(np.hypot(vx, vy), vz)  # (n, 2, 2)
            s5, c5 = np.sin(q5), np.cos(q5)
            singular = np.abs(s5) < WRIST_SINGULAR_SIN
            s5_safe = np.where(singular, 1.0, s5)
            q6 = np.where(singular, hint[:, None, None], np.arctan2(-vy / s5_safe, vx / s5_safe))
            s6, c6 = np.sin(q6), np.cos(q6)
            # Frame 4 from the tool side: z4 = -s6 X - c6 Y, x4 = c5 c6 X - c5 s6 Y - s5 Z.
            e = (slice(None), None, None)
            p4 = p5[:, None, None, :] + dh.d5 * (s6[..., None] * X[e] + c6[..., None] * Y[e])
            x4 = (c5 * c6)[..., None] * X[e] - (c5 * s6)[..., None] * Y[e] - s5[..., None] * Z[e]
            # The planar 3R chain (q2, q3, q4) in frame 1 (x1 = (c1, s1, 0), y1 = base z).
            c1b, s1b = c1[:, :, None], s1[:, :, None]
            px = p4[..., 0] * c1b + p4[..., 1] * s1b
            py = p4[..., 2] - dh.d1
            q234 = np.arctan2(x4[..., 2], x4[..., 0] * c1b + x4[..., 1] * s1b)
            cos3 = (px**2 + py**2 - dh.a2**2 - dh.a3**2) / (2 * dh.a2 * dh.a3)
            q3 = sign3[None, None, None, :] * np.arccos(_clip_or_nan(cos3))[..., None]  # (n, 2, 2, 2)
            q2 = np.arctan2(py, px)[..., None] - np.arctan2(dh.a3 * np.sin(q3), dh.a2 + dh.a3 * np.cos(q3))
            q4 = q234[..., None] - q2 - q3
        shape = q3.shape
        sols = np.stack(
            [
                np.broadcast_to(q1[:, :, None, None], shape),
                q2,
                q3,
                q4,
                np.broadcast_to(q5[..., None], shape),
                np.broadcast_to(q6[..., None], shape),
            ],
            axis=-1,
        ).reshape(n, -1, 6)
        sols = _wrap(sols)
        sols[np.any(~np.isfinite(sols), axis=2)] = np.nan
        return sols

    def _nearest_turns(self, wrapped: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Shift each joint of ``wrapped`` by a multiple of 2 pi to the value nearest ``reference``
        that lies within the limits (NaN where no shift fits). The nearest turn overall is taken when it
        is within the limits; otherwise only one turn back towards the range can be (every range is at
        least 2 pi wide and the other direction leads further out)."""
        with np.errstate(invalid="ignore"):
            best = wrapped + TWO_PI * np.round((reference - wrapped) / TWO_PI)
            best = np.where(best > self.upper_rad, best - TWO_PI, np.where(best < self.lower_rad, best + TWO_PI, best))
            outside = (best > self.upper_rad) | (best < self.lower_rad)
        return np.where(outside, np.nan, best)

    def _solve_one(self, base_T_tool: np.ndarray, q6_hint: float) -> np.ndarray:
        """``ik_all_many`` for one pose in scalar arithmetic: (8, 6) in the same branch order, NaN rows
        where a branch cannot reach the pose."""
        dh = self.dh
        (xx, yx, zx, px6), (xy, yy, zy, py6), (xz, yz, zz, pz6) = base_T_tool[:3].tolist()
        p5x, p5y, p5z = px6 - dh.d6 * zx, py6 - dh.d6 * zy, pz6 - dh.d6 * zz
        out = np.full((8, 6), np.nan)
        r = math.hypot(p5x, p5y)
        if r == 0.0 or abs(dh.d4 / r) > 1 + ACOS_TOLERANCE:
            return out
        phi = math.acos(max(-1.0, min(1.0, dh.d4 / r)))
        base = math.atan2(p5y, p5x) + math.pi / 2
        a2, a3 = dh.a2, dh.a3
        k = 0
        for sign1 in (1.0, -1.0):
            q1 = base + sign1 * phi
            s1, c1 = math.sin(q1), math.cos(q1)
            vx, vy, vz = xx * s1 - xy * c1, yx * s1 - yy * c1, zx * s1 - zy * c1
            for sign5 in (1.0, -1.0):
                q5 = sign5 * math.atan2(math.hypot(vx, vy), vz)
                s5, c5 = math.sin(q5), math.cos(q5)
                q6 = q6_hint if abs(s5) < WRIST_SINGULAR_SIN else math.atan2(-vy / s5, vx / s5)
                s6, c6 = math.sin(q6), math.cos(q6)
                p4x = p5x + dh.d5 * (s6 * xx + c6 * yx)
                p4y = p5y + dh.d5 * (s6 * xy + c6 * yy)
                p4z = p5z + dh.d5 * (s6 * xz + c6 * yz)
                x4x = c5 * c6 * xx - c5 * s6 * yx - s5 * zx
                x4y = c5 * c6 * xy - c5 * s6 * yy - s5 * zy
                x4z = c5 * c6 * xz - c5 * s6 * yz - s5 * zz
                px, py = p4x * c1 + p4y * s1, p4z - dh.d1
                q234 = math.atan2(x4z, x4x * c1 + x4y * s1)
                cos3 = (px * px + py * py - a2 * a2 - a3 * a3) / (2 * a2 * a3)
                if abs(cos3) <= 1 + ACOS_TOLERANCE:
                    elbow = math.acos(max(-1.0, min(1.0, cos3)))
                    for sign3 in (1.0, -1.0):
                        q3 = sign3 * elbow
                        q2 = math.atan2(py, px) - math.atan2(a3 * math.sin(q3), a2 + a3 * math.cos(q3))
                        out[k + (0 if sign3 > 0 else 1)] = (q1, q2, q3, q234 - q2 - q3, q5, q6)
                k += 2
        return _wrap(out)

    def ik_all(self, base_T_tool: np.ndarray, q_near: np.ndarray | None = None) -> np.ndarray:
        """Every solution within limits (up to 8 x 6), each joint on the turn nearest ``q_near``."""
        ref = np.zeros(6) if q_near is None else np.asarray(q_near, float)
        sols = self._solve_one(np.asarray(base_T_tool, float).reshape(4, 4), float(ref[5]))
        shifted = self._nearest_turns(sols, ref[None, :])
        return shifted[np.all(np.isfinite(shifted), axis=1)]

    def ik(self, base_T_tool: np.ndarray, q_near: np.ndarray) -> np.ndarray | None:
        q_near = np.asarray(q_near, float)
        sols = self.ik_all(base_T_tool, q_near)
        if len(sols) == 0:
            return None
        return sols[int(np.argmin(np.sum((JOINT_DISTANCE_WEIGHTS * (sols - q_near)) ** 2, axis=1)))]

    def ik_path(self, poses: np.ndarray, q_near: np.ndarray) -> np.ndarray:
        """Joint rows for a path of poses without branch flips: the first pose takes the solution
        nearest ``q_near`` (weighted by ``JOINT_DISTANCE_WEIGHTS``); every later pose stays on the same
        branch (shoulder, elbow, wrist) and each joint follows continuously from the previous waypoint.
        Rows are NaN where that branch cannot reach the pose. A continuous branch can still jump near a
        singularity; callers check joint steps."""
        q_near = np.asarray(q_near, float)
        poses = np.asarray(poses, float).reshape(-1, 4, 4)
        n = len(poses)
        hint = np.full(n, q_near[5])
        first = self._nearest_turns(self.ik_all_many(poses[:1], q6_hint=hint[:1])[0], q_near[None, :])
        reachable = np.all(np.isfinite(first), axis=1)
        if not np.any(reachable):
            return np.full((n, 6), np.nan)
        with np.errstate(invalid="ignore"):
            cost = np.sum((JOINT_DISTANCE_WEIGHTS * (first - q_near)) ** 2, axis=1)
        cost = np.where(reachable, cost, np.inf)
        branch = int(np.argmin(cost))
        path = self.ik_all_many(poses, q6_hint=hint, branch=branch)[:, 0, :]
        valid = np.all(np.isfinite(path), axis=1)
        # Unwrap every joint against the previous valid waypoint, starting from the chosen first one.
        steps = _wrap(np.diff(np.where(valid[:, None], path, 0.0), axis=0))
        steps[~(valid[1:] & valid[:-1])] = 0.0
        out = first[branch] + np.vstack([np.zeros((1, 6)), np.cumsum(steps, axis=0)])
        # A whole-path shift by one turn may bring a joint inside its limits (start near +-2 pi).
        reached = out[valid]
        lowest = reached.min(axis=0) if len(reached) else self.lower_rad
        highest = reached.max(axis=0) if len(reached) else self.upper_rad
        for j in np.flatnonzero((lowest < self.lower_rad) | (highest > self.upper_rad)):
            for shift in (-TWO_PI, TWO_PI):
                if lowest[j] + shift >= self.lower_rad[j] and highest[j] + shift <= self.upper_rad[j]:
                    out[:, j] += shift
                    break
        out[~valid] = np.nan
        return out

    # -- collision volumes ------------------------------------------------------------------------------
    def capsule_segments_many(self, qs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Capsule end points (N, 6, 3) twice and radii (6,): one capsule per DH segment
        (frame i -> frame i+1), which follows the real links closely enough for coarse checks."""
        origins = self.link_frames_many(qs)[:, :, :3, 3]
        return origins[:, :-1], origins[:, 1:], self.capsule_radii_m.copy()

    def self_collision_pairs(self) -> list[tuple[int, int]]:
        return [(i, j) for i in range(6) for j in range(i + 2, 6) if (i, j) not in UR_SEPARATED_PAIRS]

    def capsules(self, q: np.ndarray) -> list[Capsule]:
        p0, p1, radii = self.capsule_segments_many(q)
        return [
            Capsule(name, p0[0, i], p1[0, i], float(radii[i])) for i, name in enumerate(UR_CAPSULE_LINKS)
        ]


def _clip_or_nan(cosine: np.ndarray) -> np.ndarray:
    """Cosine arguments clipped to [-1, 1] within ``ACOS_TOLERANCE`` (noise), NaN beyond (unreachable)."""
    return np.where(np.abs(cosine) <= 1 + ACOS_TOLERANCE, np.clip(cosine, -1.0, 1.0), np.nan)


def ur5() -> UrKinematics:
    """UR5 (CB3): DH from Universal Robots' published parameters."""
    return UrKinematics("ur5", UR5_DH)


def ur5e() -> UrKinematics:
    """UR5e (e-Series): DH from Universal Robots' published parameters."""
    return UrKinematics("ur5e", UR5E_DH)
