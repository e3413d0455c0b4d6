"""Time parameterisation: known answers for straight moves, no limit exceeded anywhere, and no uniformly
faster timing within the limits (the plan is as fast as the limits allow)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from spatial_trace_ros.planning.timing import (
    TimingLimits,
    rotation_angles,
    segment_velocities,
    time_parameterize,
    waypoint_accelerations,
)

LIMITS = TimingLimits(0.25, 0.5, 1.0, np.full(6, np.pi))
TOL = 1 + 1e-9


def poses_at(points: np.ndarray, yaw_rad: np.ndarray | None = None) -> np.ndarray:
    out = np.tile(np.eye(4), (len(points), 1, 1))
    out[:, :3, 3] = points
    if yaw_rad is not None:
        c, s = np.cos(yaw_rad), np.sin(yaw_rad)
        out[:, 0, 0], out[:, 0, 1], out[:, 1, 0], out[:, 1, 1] = c, -s, s, c
    return out


def measured(points: np.ndarray, times: np.ndarray) -> tuple[float, float]:
    """Largest segment speed and waypoint acceleration, computed here from first principles."""
    dt = np.diff(times)
    v = np.diff(points, axis=0) / dt[:, None]
    v_ext = np.vstack([np.zeros(3), v, np.zeros(3)])
    half = (np.concatenate([[0.0], dt]) + np.concatenate([dt, [0.0]])) / 2
    a = np.diff(v_ext, axis=0) / half[:, None]
    return float(np.linalg.norm(v, axis=1).max()), float(np.linalg.norm(a, axis=1).max())


@pytest.mark.parametrize(
    ("length_m", "expected_s"),
    [
        (0.5, 0.5 / 0.25 + 0.25 / 0.5),  # trapezoid: cruise at 0.25 m/s, 0.5 s to accelerate and to brake
        (0.1, 2 * np.sqrt(0.1 / 0.5)),  # triangle: too short to reach full speed
    ],
)
def test_straight_move_takes_the_trapezoid_time(length_m: float, expected_s: float) -> None:
    pts = np.linspace([0.0, 0.0, 0.0], [length_m, 0.0, 0.0], 101)
    t = time_parameterize(poses_at(pts), np.zeros((101, 6)), LIMITS)
    assert t[0] == 0.0 and np.all(np.diff(t) > 0)
    assert t[-1] == pytest.approx(expected_s, rel=1e-9)
    speed, accel = measured(pts, t)
    assert speed <= 0.25 * TOL and accel <= 0.5 * TOL


def test_a_uniformly_faster_timing_breaks_a_limit() -> None:
    pts = np.linspace([0.0, 0.0, 0.0], [0.3, 0.2, 0.0], 60)
    t = time_parameterize(poses_at(pts), np.zeros((60, 6)), LIMITS)
    speed, accel = measured(pts, t * 0.99)
    assert speed > 0.25 or accel > 0.5


def test_measures_match_the_module_helpers() -> None:
    pts = np.random.default_rng(0).normal(size=(20, 3)) * 0.05
    t = np.cumsum(np.r_[0.0, np.random.default_rng(1).uniform(0.05, 0.2, 19)])
    speed, accel = measured(pts, t)
    assert np.linalg.norm(segment_velocities(pts, t), axis=1).max() == pytest.approx(speed)
    assert np.linalg.norm(waypoint_accelerations(pts, t), axis=1).max() == pytest.approx(accel)


def test_sharp_corner_is_slowed_to_keep_the_acceleration() -> None:
    leg = np.linspace(0.0, 0.2, 21)
    pts = np.vstack([np.c_[leg, 0 * leg, 0 * leg], np.c_[np.full(20, 0.2), leg[1:], 0 * leg[1:]]])  # 90 deg turn
    t = time_parameterize(poses_at(pts), np.zeros((len(pts), 6)), LIMITS)
    speed, accel = measured(pts, t)
    assert accel <= 0.5 * TOL and speed <= 0.25 * TOL
    corner_speed = np.linalg.norm(pts[21] - pts[19]) / (t[21] - t[19])
    assert corner_speed < 0.1


def test_joint_and_rotation_caps_stretch_the_timing() -> None:
    pts = np.linspace([0.0, 0.0, 0.0], [0.1, 0.0, 0.0], 11)
    joints = np.zeros((11, 6))
    joints[:, 0] = np.linspace(0.0, 1.0, 11)  # 1 rad over the move
    slow = TimingLimits(0.25, 0.5, 1.0, np.full(6, 0.5))
    t = time_parameterize(poses_at(pts), joints, slow)
    assert np.all(np.abs(np.diff(joints[:, 0])) / np.diff(t) <= 0.5 * TOL)
    assert t[-1] >= 2.0  # 1 rad at 0.5 rad/s
    yaw = np.linspace(0.0, 2.0, 11)
    t = time_parameterize(poses_at(pts, yaw), np.zeros((11, 6)), LIMITS)
    assert np.all(rotation_angles(poses_at(pts, yaw)) / np.diff(t) <= 1.0 * TOL)


def test_turning_in_place_is_timed_by_rotation() -> None:
    pts = np.array([[0.0, 0, 0], [0.0, 0, 0], [0.05, 0, 0]])
    t = time_parameterize(poses_at(pts, np.array([0.0, 0.5, 0.5])), np.zeros((3, 6)), LIMITS)
    assert t[1] == pytest.approx(0.5)  # 0.5 rad at 1 rad/s
    speed, accel = measured(pts, t)
    assert speed <= 0.25 * TOL and accel <= 0.5 * TOL


def test_speed_scale_slows_only_its_segments() -> None:
    pts = np.linspace([0.0, 0.0, 0.0], [1.0, 0.0, 0.0], 101)
    scale = np.ones(100)
    scale[40:60] = 0.2
    t = time_parameterize(poses_at(pts), np.zeros((101, 6)), LIMITS, scale)
    v = np.linalg.norm(segment_velocities(pts, t), axis=1)
    assert np.all(v[40:60] <= 0.05 * TOL)
    assert v[:20].max() == pytest.approx(0.25)


@settings(max_examples=300, deadline=None)
@given(
    steps=arrays(float, st.tuples(st.integers(2, 40), st.just(3)), elements=st.floats(-0.05, 0.05)),
    v_max=st.floats(0.01, 1.0),
    a_max=st.floats(0.05, 5.0),
)
def test_random_paths_never_exceed_the_limits(steps: np.ndarray, v_max: float, a_max: float) -> None:
    pts = np.vstack([np.zeros(3), np.cumsum(steps, axis=0)])
    keep = np.r_[True, np.linalg.norm(np.diff(pts, axis=0), axis=1) > 1e-6]
    pts = pts[keep]
    if len(pts) < 2:
        return
    t = time_parameterize(poses_at(pts), np.zeros((len(pts), 6)), TimingLimits(v_max, a_max, 1.0, np.ones(6)))
    assert t[0] == 0.0 and np.all(np.diff(t) > 0)
    speed, accel = measured(pts, t)
    assert speed <= v_max * TOL
    assert accel <= a_max * TOL
