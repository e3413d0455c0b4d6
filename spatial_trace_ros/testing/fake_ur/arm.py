"""The fake controller's arm: joint positions moved by the motion the control script asked for.

Purely kinematic (no dynamics, no payload): each motion type turns its command into joint positions
per controller step, through the fake's own kinematics (``kinematics.FakeArmKinematics``, written
apart from the product's ``RobotModel``, so a bug there shows as the arm not following the plan). The
emulations are simple on purpose and documented where they differ from a real controller:

- servoj / servoL: the joints follow the latest target with a first-order lag whose time constant is
  ``lookahead_time * 300 / gain`` (0.1 s at the common lookahead 0.1 s, gain 300).
- speedl / speedj: the commanded speed is approached at the given acceleration; tool speed is
  turned into joint speed with a damped least-squares inverse of the Jacobian.
- movel / path moves: a trapezoidal speed profile along the polyline of waypoints (position linear,
  orientation slerp per segment, rotation counted as ``ROTATION_LENGTH_M_PER_RAD`` of path length);
  blend radii are not modelled, the arm passes through every waypoint.
- movej: a trapezoidal profile on the joint with the largest travel, all joints in sync.
- stop*: joint speeds fall linearly to zero within speed / deceleration.
Every step is clamped to the model's joint speed limits.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np
from scipy.spatial.transform import Rotation

from spatial_trace_ros.testing.fake_ur.kinematics import FakeArmKinematics

ROTATION_LENGTH_M_PER_RAD = 0.1
DLS_DAMPING = 0.01
STANDSTILL_RADPS = 1e-6


class InverseKinematicsError(RuntimeError):
    """The arm was asked to reach a pose it cannot reach (a real control script stops with an error)."""


def trapezoid(length: float, speed: float, accel: float) -> tuple[float, float, float]:
    """(duration, accel time, peak speed) of a rest-to-rest trapezoidal profile over ``length``."""
    speed, accel = max(speed, 1e-9), max(accel, 1e-9)
    if length <= 0.0:
        return 0.0, 0.0, 0.0
    if length <= speed * speed / accel:  # triangular: never reaches ``speed``
        t_acc = math.sqrt(length / accel)
        return 2.0 * t_acc, t_acc, accel * t_acc
    t_acc = speed / accel
    return 2.0 * t_acc + (length - speed * t_acc) / speed, t_acc, speed


def trapezoid_distance(t: float, duration: float, t_acc: float, peak: float, length: float) -> float:
    """Distance travelled at time ``t`` along the profile from :func:`trapezoid`."""
    if t >= duration:
        return length
    accel = peak / t_acc if t_acc > 0 else 0.0
    if t < t_acc:
        return 0.5 * accel * t * t
    if t > duration - t_acc:
        remaining = duration - t
        return length - 0.5 * accel * remaining * remaining
    return 0.5 * accel * t_acc * t_acc + peak * (t - t_acc)


class Motion(ABC):
    @abstractmethod
    def step(self, arm: SimulatedArm, dt: float) -> bool:
        """Advance the arm by ``dt``; True when this motion has finished."""


class ServoMotion(Motion):
    """servoj / servoL: follow the latest joint target with a first-order lag; never finishes."""

    def __init__(self, target_q: np.ndarray, time_constant_s: float) -> None:
        self.target_q = np.asarray(target_q, float)
        self.time_constant_s = time_constant_s

    def step(self, arm: SimulatedArm, dt: float) -> bool:
        alpha = 1.0 - math.exp(-dt / max(self.time_constant_s, 1e-4))
        arm.move_to(arm.q + alpha * (self.target_q - arm.q), dt)
        return False


class ToolSpeedMotion(Motion):
    """speedl: approach the commanded tool twist (base frame) at ``accel``; never finishes."""

    def __init__(self, twist: np.ndarray, accel: float, current: np.ndarray) -> None:
        self.target = np.asarray(twist, float)
        self.accel = accel
        self.current = np.asarray(current, float)

    def step(self, arm: SimulatedArm, dt: float) -> bool:
        delta = self.target - self.current
        for part in (slice(0, 3), slice(3, 6)):
            norm = float(np.linalg.norm(delta[part]))
            limit = self.accel * dt
            if norm > limit:
                delta[part] *= limit / norm
        self.current = self.current + delta
        jac = arm.model.jacobian(arm.q)
        qd = jac.T @ np.linalg.solve(jac @ jac.T + DLS_DAMPING**2 * np.eye(6), self.current)
        arm.move_to(arm.q + qd * dt, dt)
        return False


class JointSpeedMotion(Motion):
    """speedj: approach the commanded joint speeds at ``accel`` (leading axis); never finishes."""

    def __init__(self, qd: np.ndarray, accel: float, current: np.ndarray) -> None:
        self.target = np.asarray(qd, float)
        self.accel = accel
        self.current = np.asarray(current, float)

    def step(self, arm: SimulatedArm, dt: float) -> bool:
        delta = self.target - self.current
        lead = float(np.max(np.abs(delta)))
        if lead > self.accel * dt:
            delta *= self.accel * dt / lead
        self.current = self.current + delta
        arm.move_to(arm.q + self.current * dt, dt)
        return False


class CartesianPathMotion(Motion):
    """movel to one pose or along a path of poses (4x4, base frame) from the current TCP."""

    def __init__(self, start: np.ndarray, targets: list[np.ndarray], speed: float, accel: float) -> None:
        self.poses = [np.asarray(start, float)] + [np.asarray(p, float) for p in targets]
        self.rotvecs = []
        lengths = []
        for a, b in zip(self.poses[:-1], self.poses[1:], strict=True):
            rotvec = Rotation.from_matrix(a[:3, :3].T @ b[:3, :3]).as_rotvec()
            self.rotvecs.append(rotvec)
            lengths.append(max(float(np.linalg.norm(b[:3, 3] - a[:3, 3])),
                               float(np.linalg.norm(rotvec)) * ROTATION_LENGTH_M_PER_RAD))
        self.cumulative = np.concatenate([[0.0], np.cumsum(lengths)])
        self.profile = trapezoid(float(self.cumulative[-1]), speed, accel)
        self.elapsed_s = 0.0
        self.segment = 0

    def pose_at_distance(self, s: float) -> np.ndarray:
        i = int(np.clip(np.searchsorted(self.cumulative, s, side="right") - 1, 0, len(self.poses) - 2))
        self.segment = i
        span = self.cumulative[i + 1] - self.cumulative[i]
        f = 1.0 if span <= 0 else float(np.clip((s - self.cumulative[i]) / span, 0.0, 1.0))
        a, b = self.poses[i], self.poses[i + 1]
        out = np.eye(4)
        out[:3, 3] = a[:3, 3] + f * (b[:3, 3] - a[:3, 3])
        out[:3, :3] = a[:3, :3] @ Rotation.from_rotvec(f * self.rotvecs[i]).as_matrix()
        return out

    def step(self, arm: SimulatedArm, dt: float) -> bool:
        self.elapsed_s += dt
        duration, t_acc, peak = self.profile
        s = trapezoid_distance(self.elapsed_s, duration, t_acc, peak, float(self.cumulative[-1]))
        pose = self.pose_at_distance(s)
        q = arm.model.ik(pose, arm.q)
        if q is None:
            where = np.round(pose[:3, 3], 4).tolist()
            raise InverseKinematicsError(f"movel: no inverse kinematics solution at {where}")
        arm.move_to(q, dt)
        return self.elapsed_s >= duration


class JointMotion(Motion):
    """movej: joint-linear move with a trapezoidal profile on the leading axis."""

    def __init__(self, start: np.ndarray, goal: np.ndarray, speed: float, accel: float) -> None:
        self.start = np.asarray(start, float)
        self.delta = np.asarray(goal, float) - self.start
        self.length = float(np.max(np.abs(self.delta)))
        self.profile = trapezoid(self.length, speed, accel)
        self.elapsed_s = 0.0

    def step(self, arm: SimulatedArm, dt: float) -> bool:
        self.elapsed_s += dt
        duration, t_acc, peak = self.profile
        s = trapezoid_distance(self.elapsed_s, duration, t_acc, peak, self.length)
        f = 1.0 if self.length <= 0 else s / self.length
        arm.move_to(self.start + f * self.delta, dt)
        return self.elapsed_s >= duration


class StopMotion(Motion):
    """stopl / stopj / servoStop / speedStop: joint speeds fall linearly to zero in ``duration_s``."""

    def __init__(self, qd: np.ndarray, duration_s: float) -> None:
        self.qd0 = np.asarray(qd, float)
        self.duration_s = duration_s
        self.elapsed_s = 0.0

    def step(self, arm: SimulatedArm, dt: float) -> bool:
        self.elapsed_s += dt
        scale = max(0.0, 1.0 - self.elapsed_s / self.duration_s) if self.duration_s > 0 else 0.0
        arm.move_to(arm.q + self.qd0 * scale * dt, dt)
        return scale <= 0.0


class SimulatedArm:
    """Joint state of the arm plus the motion in progress."""

    def __init__(self, model: FakeArmKinematics, q0: np.ndarray) -> None:
        self.model = model
        self.q = np.asarray(q0, float).copy()
        self.qd = np.zeros(model.dof)
        self.motion: Motion | None = None
        self.stuck = False  # a fault injected by a test: commands are taken, the joints do not move

    @property
    def tcp(self) -> np.ndarray:
        return self.model.fk(self.q)

    @property
    def tcp_speed(self) -> np.ndarray:
        return self.model.jacobian(self.q) @ self.qd

    @property
    def moving(self) -> bool:
        return bool(np.max(np.abs(self.qd)) > STANDSTILL_RADPS)

    def move_to(self, q: np.ndarray, dt: float) -> None:
        """Set joints to ``q``, no faster than the joint speed limits allow in ``dt``."""
        if self.stuck:
            return
        limit = self.model.max_velocity_radps * dt
        step = np.clip(np.asarray(q, float) - self.q, -limit, limit)
        self.q = self.q + step

    def step(self, dt: float) -> bool:
        """Advance the current motion by ``dt``; True if a motion finished in this step. Raises
        :class:`InverseKinematicsError` when the motion cannot continue (the arm is halted first)."""
        before = self.q.copy()
        finished = False
        if self.motion is not None:
            try:
                finished = self.motion.step(self, dt)
            except InverseKinematicsError:
                self.halt()
                raise
            if finished:
                self.motion = None
        self.qd = (self.q - before) / dt if dt > 0 else np.zeros_like(self.q)
        return finished

    def start(self, motion: Motion) -> None:
        self.motion = motion

    def stop(self, decel: float, linear: bool) -> None:
        """Decelerate to rest at ``decel`` (m/s^2 of the tool if ``linear``, else rad/s^2 of the
        leading joint)."""
        speed = float(np.linalg.norm(self.tcp_speed[:3])) if linear else float(np.max(np.abs(self.qd)))
        duration = speed / decel if decel > 0 else 0.0
        self.motion = StopMotion(self.qd, duration) if duration > 0 and self.moving else None
        if self.motion is None:
            self.qd = np.zeros_like(self.qd)

    def halt(self) -> None:
        """Immediate standstill (safety stop)."""
        self.motion = None
        self.qd = np.zeros_like(self.qd)

    @property
    def idle(self) -> bool:
        return self.motion is None
