"""Rigid transforms: a known chain, conversions between encodings, and round-trip properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.geometry import Transform

finite = st.floats(-2.0, 2.0)
quats = st.tuples(st.floats(-1, 1), st.floats(-1, 1), st.floats(-1, 1), st.floats(-1, 1)).filter(
    lambda q: np.linalg.norm(q) > 0.1
)


def _unit(q: tuple) -> np.ndarray:
    q = np.asarray(q, float)
    return q / np.linalg.norm(q)


def test_known_chain_camera_point_to_base() -> None:
    # Camera 1 m above the base origin looking straight down: optical z = -base z, optical x = base x,
    # optical y = -base y. A point 0.8 m in front of the camera is 0.2 m above the base.
    base_T_cam = Transform.from_rpy([0, 0, 1.0], [np.pi, 0, 0], "base", "camera")
    np.testing.assert_allclose(base_T_cam.apply([0.1, 0.2, 0.8]), [0.1, -0.2, 0.2], atol=1e-12)
    # Base at (0.5, 0, 0) in a world frame rotated 90 deg about z.
    world_T_base = Transform.from_rpy([0.5, 0, 0], [0, 0, np.pi / 2], "world", "base")
    world_T_cam = world_T_base @ base_T_cam
    assert (world_T_cam.parent, world_T_cam.child) == ("world", "camera")
    np.testing.assert_allclose(world_T_cam.apply([0.1, 0.2, 0.8]), [0.5 + 0.2, 0.1, 0.2], atol=1e-12)


def test_chain_with_mismatched_frames_fails() -> None:
    a = Transform.identity("base", "tool0")
    b = Transform.identity("camera", "marker")
    with pytest.raises(ConfigError, match="'tool0' != 'camera'"):
        _ = a @ b


def test_ur_pose_known_answer() -> None:
    # 90 deg about z as a rotation vector.
    tf = Transform.from_ur_pose([0.4, -0.1, 0.3, 0, 0, np.pi / 2])
    np.testing.assert_allclose(tf.apply([1.0, 0, 0]), [0.4, 0.9, 0.3], atol=1e-12)
    np.testing.assert_allclose(tf.quaternion_xyzw, [0, 0, np.sqrt(0.5), np.sqrt(0.5)], atol=1e-12)


def test_invalid_rotation_rejected_with_reason() -> None:
    m = np.eye(4)
    m[0, 0] = -1.0
    with pytest.raises(ConfigError, match="reflection"):
        Transform(m)
    m = np.eye(4)
    m[0, 1] = 0.3
    with pytest.raises(ConfigError, match="not orthonormal"):
        Transform(m)
    with pytest.raises(ConfigError, match="unit norm"):
        Transform.from_quaternion_xyzw([0, 0, 0], [0, 0, 0, 2])


@settings(max_examples=200, deadline=None)
@given(t=st.tuples(finite, finite, finite), q=quats)
def test_encodings_round_trip(t: tuple, q: tuple) -> None:
    tf = Transform.from_quaternion_wxyz(t, _unit(q))
    for other in (
        Transform.from_quaternion_xyzw(t, tf.quaternion_xyzw),
        Transform.from_ur_pose(tf.to_ur_pose()),
        Transform.from_rotvec(t, tf.rotvec),
    ):
        np.testing.assert_allclose(other.matrix, tf.matrix, atol=1e-7)


@settings(max_examples=200, deadline=None)
@given(t=st.tuples(finite, finite, finite), q=quats, p=st.tuples(finite, finite, finite))
def test_inverse_round_trip(t: tuple, q: tuple, p: tuple) -> None:
    tf = Transform.from_quaternion_wxyz(t, _unit(q), "a", "b")
    np.testing.assert_allclose(tf.inverse().apply(tf.apply(p)), p, atol=1e-9)
    np.testing.assert_allclose((tf @ tf.inverse()).matrix, np.eye(4), atol=1e-9)


@pytest.mark.parametrize("angle", [1e-12, 2.4e-7, 1e-3, 1.0, np.pi - 1e-9, np.pi])
def test_rotvec_is_exact_at_every_angle(angle: float) -> None:
    axis = np.array([0.48, -0.6, 0.64])  # unit length
    tf = Transform.from_rotvec([0, 0, 0], axis * angle)
    rotvec = tf.rotvec
    if angle < np.pi:  # at pi, -axis names the same rotation
        np.testing.assert_allclose(rotvec, axis * angle, rtol=1e-6, atol=1e-15)
    np.testing.assert_allclose(Transform.from_rotvec([0, 0, 0], rotvec).matrix, tf.matrix, atol=1e-12)
