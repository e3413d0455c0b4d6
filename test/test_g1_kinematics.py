"""G1 arm kinematics against the URDF: FK known values, Jacobian, IK round trips, reach, camera mount."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation
from transforms3d.axangles import axangle2mat

from spatial_trace_ros.geometry.calibration import load_calibration
from spatial_trace_ros.geometry.transforms import Transform
from spatial_trace_ros.robots.g1.kinematics import (
    LEFT_ARM_CHAIN,
    LEFT_HAND_XYZ_M,
    G1ArmModel,
    g1_left_arm,
    g1_right_arm,
    head_camera_extrinsic,
)
from spatial_trace_ros.robots.model import make_robot_model

REPO = Path(__file__).resolve().parents[1]
LEFT = g1_left_arm()
RIGHT = g1_right_arm()
AXES = np.eye(3)


def urdf_fk(q: np.ndarray) -> np.ndarray:
    """The left arm composed link by link the URDF way, with library transforms only."""
    T = Transform.identity("torso_link", "torso_link")
    for joint, angle in zip(LEFT_ARM_CHAIN, q):
        origin = Transform.from_rpy(joint.xyz_m, joint.rpy_rad)
        turn = Transform.from_rotation_translation(axangle2mat(AXES[joint.axis], angle), (0, 0, 0))
        T = Transform(T.matrix @ origin.matrix @ turn.matrix)
    return T.matrix @ Transform.from_rpy(LEFT_HAND_XYZ_M, (0, 0, 0)).matrix


def random_q(model: G1ArmModel, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(model.lower_rad, model.upper_rad)


def test_registered_models() -> None:
    for name, side in (("g1_left_arm", "left"), ("g1_right_arm", "right")):
        model = make_robot_model(name)
        assert model.dof == 7 and model.base_frame == "torso_link" and model.tool_frame == f"{side}_rubber_hand"
        assert model.joint_names[0] == f"{side}_shoulder_pitch_joint"
        assert np.all(model.max_velocity_radps == 0.5)


def test_fk_zero_pose_known_value() -> None:
    # Offsets summed by hand from the URDF (the shoulder roll origin turned by the 0.27931 rad mount):
    # x = 0.0039563 + 0.015783 + 0.1 + 0.038 + 0.046 + 0.0415, y ~ 0.1517, z ~ 0.0412; the hand points +x.
    T = LEFT.fk(np.zeros(7))
    assert T[:3, 3] == pytest.approx([0.2452393, 0.15169, 0.04124], abs=2e-4)
    assert T[:3, :3] == pytest.approx(np.eye(3), abs=1e-3)


def test_fk_elbow_quarter_turn_known_value() -> None:
    # Elbow at +90 deg (about y): forearm and hand (0.2255 m from the elbow joint along x) now point down.
    q = np.zeros(7)
    q[3] = np.pi / 2
    elbow = LEFT.link_frames(q)[3][:3, 3]
    hand = LEFT.fk(q)[:3, 3]
    assert hand - elbow == pytest.approx([-0.010, 0.00488791, -0.2255], abs=5e-4)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000))
def test_fk_matches_urdf_composition(seed: int) -> None:
    q = random_q(LEFT, seed)
    assert LEFT.fk(q) == pytest.approx(urdf_fk(q), abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_right_arm_mirrors_left(seed: int) -> None:
    q = random_q(LEFT, seed)
    mirrored = q * np.array([1, -1, -1, 1, -1, 1, -1])  # pitch joints keep their sign, roll/yaw flip
    if not RIGHT.within_limits(mirrored):
        return
    left, right = LEFT.fk(q)[:3, 3], RIGHT.fk(mirrored)[:3, 3]
    assert right == pytest.approx(left * np.array([1, -1, 1]), abs=2e-4)  # URDF sides differ by 0.01 mm


@pytest.mark.parametrize("seed", range(5))
def test_jacobian_matches_finite_differences(seed: int) -> None:
    model = LEFT if seed % 2 else RIGHT
    q = random_q(model, seed)
    J = model.jacobian(q)
    eps = 1e-6
    for k in range(7):
        dq = np.zeros(7)
        dq[k] = eps
        plus, minus = model.fk(q + dq), model.fk(q - dq)
        assert J[:3, k] == pytest.approx((plus[:3, 3] - minus[:3, 3]) / (2 * eps), abs=1e-6)
        omega = Rotation.from_matrix(plus[:3, :3] @ minus[:3, :3].T).as_rotvec() / (2 * eps)
        assert J[3:, k] == pytest.approx(omega, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["left", "right"]))
def test_ik_round_trip_within_limits(seed: int, side: str) -> None:
    model = LEFT if side == "left" else RIGHT
    q = random_q(model, seed)
    target = model.fk(q)
    near = np.clip(q + np.random.default_rng(seed + 1).normal(0, 0.1, 7), model.lower_rad, model.upper_rad)
    solution = model.ik(target, near)
    assert solution is not None
    assert model.within_limits(solution)
    reached = model.fk(solution)
    assert reached[:3, 3] == pytest.approx(target[:3, 3], abs=2e-4)
    assert np.linalg.norm(Rotation.from_matrix(reached[:3, :3] @ target[:3, :3].T).as_rotvec()) < 2e-3


def test_ik_stays_near_the_seed() -> None:
    q = np.array([-0.3, 0.3, 0.1, 0.9, 0.2, -0.1, 0.1])
    target = LEFT.fk(q)
    target[:3, 3] += [0.01, -0.005, 0.01]
    solution = LEFT.ik(target, q)
    assert solution is not None and np.max(np.abs(solution - q)) < 0.2


@pytest.mark.parametrize(
    "xyz",
    [
        (0.9, 0.2, 0.2),  # far beyond the stretched arm
        (0.0, 0.15, -0.5),  # below the waist
        (-0.6, 0.1, 0.3),  # behind the back
    ],
)
def test_out_of_reach_is_refused(xyz: tuple[float, float, float]) -> None:
    target = np.eye(4)
    target[:3, 3] = xyz
    assert LEFT.ik(target, np.zeros(7)) is None


def test_ik_never_answers_outside_the_limits() -> None:
    # A pose reachable only with the elbow bent backwards past its lower limit.
    q = np.zeros(7)
    q[3] = -1.5
    solution = LEFT.ik(LEFT.fk(q), np.zeros(7))
    assert solution is None or LEFT.within_limits(solution)


def test_capsules_follow_the_arm_and_clear_the_torso_at_rest() -> None:
    caps = LEFT.capsules(np.zeros(7))
    assert [c.link for c in caps] == ["torso_link", "left_upper_arm", "left_forearm", "left_hand"]
    frames = LEFT.link_frames(np.zeros(7))
    assert caps[1].p1 == pytest.approx(frames[3][:3, 3])  # upper arm ends at the elbow joint
    for i, j in LEFT.self_collision_pairs():
        a, b = caps[i], caps[j]
        closest = min(np.linalg.norm(p - s) for p in (a.p0, a.p1) for s in np.linspace(b.p0, b.p1, 50))
        assert closest > a.radius_m + b.radius_m


def test_head_camera_extrinsic_matches_the_shipped_calibration() -> None:
    cal = load_calibration(REPO / "config" / "calibration.g1_head.yaml")
    assert cal.mode == "eye_to_hand"
    assert cal.transform.parent == "torso_link" and cal.transform.child == "camera_color_optical_frame"
    assert cal.transform.matrix == pytest.approx(head_camera_extrinsic().matrix, abs=1e-9)


def test_head_camera_looks_forward_and_down_at_the_hands() -> None:
    cam = head_camera_extrinsic()
    forward = cam.rotate([0, 0, 1])  # optical axis
    assert forward[0] > 0.6 and forward[2] < -0.7  # pitched 47.6 deg below horizontal
    assert cam.rotate([1, 0, 0]) == pytest.approx([0, -1, 0])  # image x is the robot's right
    # A hand held in front of the chest lands in front of the camera.
    q = np.array([-0.6, 0.2, 0.0, 0.6, 0.0, 0.0, 0.0])
    in_camera = cam.inverse().apply(LEFT.fk(q)[:3, 3])
    assert in_camera[2] > 0.2
