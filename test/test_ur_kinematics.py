"""UR5 / UR5e kinematics: known poses from the DH parameters, an independent DH chain, IK round trips
over random joints (hypothesis), Jacobian against finite differences, limits and capsules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from spatial_trace_ros.planning.volumes import self_collision_clearance
from spatial_trace_ros.robots.model import make_robot_model
from spatial_trace_ros.robots.ur.kinematics import UR5_DH, UR5E_DH, ur5, ur5e

HOME = np.array([0.0, -np.pi / 2, np.pi / 2, -np.pi / 2, -np.pi / 2, 0.0])
MODELS = {"ur5": ur5(), "ur5e": ur5e()}


def reference_fk(q: np.ndarray, d: list[float], a: list[float]) -> np.ndarray:
    """Textbook standard-DH chain, written out separately from the model under test."""
    alpha = [np.pi / 2, 0.0, 0.0, np.pi / 2, -np.pi / 2, 0.0]
    T = np.eye(4)
    for theta, di, ai, al in zip(q, d, a, alpha):
        rot_z = np.array([[np.cos(theta), -np.sin(theta), 0, 0], [np.sin(theta), np.cos(theta), 0, 0],
                          [0, 0, 1, 0], [0, 0, 0, 1]])
        trans = np.eye(4)
        trans[:3, 3] = [ai, 0.0, di]
        rot_x = np.array([[1, 0, 0, 0], [0, np.cos(al), -np.sin(al), 0], [0, np.sin(al), np.cos(al), 0],
                          [0, 0, 0, 1]])
        T = T @ rot_z @ trans @ rot_x
    return T


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # All joints at zero: arm stretched along -x, TCP offset by -(d4 + d6) in y and d1 - d5 in z.
        ("ur5e", [-(0.425 + 0.3922), -(0.1333 + 0.0996), 0.1625 - 0.0997]),
        ("ur5", [-(0.425 + 0.39225), -(0.10915 + 0.0823), 0.089159 - 0.09465]),
    ],
)
def test_zero_pose_matches_dh_facts(name: str, expected: list[float]) -> None:
    T = MODELS[name].fk(np.zeros(6))
    np.testing.assert_allclose(T[:3, 3], expected, atol=1e-12)
    # Tool z (flange normal) points along -y of base, tool x along +x.
    np.testing.assert_allclose(T[:3, :3], [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12)


def test_ur5e_home_pose_points_the_tool_down() -> None:
    # Upper arm up (0.425), forearm back along -x (0.3922), wrist offsets d4 (y) and d5 (x), flange down d6.
    T = ur5e().fk(HOME)
    np.testing.assert_allclose(T[:3, 3], [-(0.3922 + 0.0997), -0.1333, 0.1625 + 0.425 - 0.0996], atol=1e-12)
    np.testing.assert_allclose(T[:3, 2], [0, 0, -1], atol=1e-12)


@pytest.mark.parametrize("name", ["ur5", "ur5e"])
def test_fk_equals_independent_dh_chain(name: str) -> None:
    model = MODELS[name]
    dh = UR5_DH if name == "ur5" else UR5E_DH
    rng = np.random.default_rng(3)
    qs = rng.uniform(-2 * np.pi, 2 * np.pi, (200, 6))
    batch = model.fk_many(qs)
    for q, T in zip(qs, batch):
        ref = reference_fk(q, [dh.d1, 0, 0, dh.d4, dh.d5, dh.d6], [0, dh.a2, dh.a3, 0, 0, 0])
        np.testing.assert_allclose(T, ref, atol=1e-12)
        np.testing.assert_allclose(model.fk(q), ref, atol=1e-12)


def test_registry_builds_both_models_with_ur_limits() -> None:
    for name in ("ur5", "ur5e"):
        model = make_robot_model(name)
        assert model.name == name and model.base_frame == "base" and model.tool_frame == "tool0"
        assert model.dof == 6 and model.joint_names[2] == "elbow_joint"
        np.testing.assert_allclose(model.upper_rad, [2 * np.pi] * 2 + [np.pi] + [2 * np.pi] * 3)
        np.testing.assert_allclose(model.lower_rad, -model.upper_rad)
        np.testing.assert_allclose(model.max_velocity_radps, np.deg2rad(180.0))


joint_vectors = st.lists(st.floats(-np.pi + 1e-3, np.pi - 1e-3), min_size=6, max_size=6).map(np.array)


@settings(max_examples=200, deadline=None)
@given(q=joint_vectors, name=st.sampled_from(["ur5", "ur5e"]))
@example(q=np.array([0.0, -np.pi / 2, np.pi / 2, -np.pi / 2, -np.pi / 2, 0.0]), name="ur5e")  # home
@example(q=np.array([0.0, 1.0, 0.0, -1.953125, 1e-09, 0.0]), name="ur5")  # wrist singular
def test_scalar_single_pose_ik_matches_the_vectorised_form(q: np.ndarray, name: str) -> None:
    """The per-pose solver the run-time guard uses is the same closed form as the path solver."""
    model = MODELS[name]
    T = model.fk(q)
    scalar = model._solve_one(T, float(q[5]))
    vector = model.ik_all_many(T, q6_hint=np.array([q[5]]))[0]
    np.testing.assert_array_equal(np.isnan(scalar), np.isnan(vector))
    finite = np.isfinite(vector)
    gap = np.abs((scalar[finite] - vector[finite] + np.pi) % (2 * np.pi) - np.pi)
    assert gap.max(initial=0.0) < 1e-6  # arccos amplifies round-off at singular poses, as above


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(q=joint_vectors, name=st.sampled_from(["ur5", "ur5e"]))
@example(q=np.array([0.0, 1.0, 0.0, 0.0, 0.0, 0.0]), name="ur5")  # wrist and elbow singular together
@example(q=np.array([0.0, 1.0, 0.0, -1.953125, 1e-09, 0.0]), name="ur5")  # stretched, wrist almost singular
@example(q=np.array([-0.00086, 0.0, 0.0, -1.77, 0.0, 0.0]), name="ur5e")
def test_ik_of_fk_round_trips(q: np.ndarray, name: str) -> None:
    model = MODELS[name]
    T = model.fk(q)
    solutions = model.ik_all(T, q)
    assert len(solutions) >= 1
    # Every closed-form solution reproduces the pose (to 1e-6: at an exact singularity the arccos
    # amplifies round-off to ~1e-8 rad).
    for sol in solutions:
        np.testing.assert_allclose(model.fk(sol), T, atol=1e-6)
    if abs(np.sin(q[4])) > 1e-3 and abs(np.sin(q[2])) > 1e-3:  # away from singularities q itself is found
        np.testing.assert_allclose(model.ik(T, q), q, atol=1e-6)


def test_generic_pose_has_eight_distinct_solutions() -> None:
    model = ur5e()
    q = np.array([0.3, -1.2, 1.4, -1.7, -1.3, 0.4])
    sols = model.ik_all(model.fk(q), q)
    assert len(sols) == 8
    assert len({tuple(np.round(s, 6)) for s in sols}) == 8


def test_ik_prefers_the_turn_nearest_the_reference() -> None:
    model = ur5e()
    q = np.array([0.3, -1.2, 1.4, -1.7, -1.3, 0.4])
    ref = q + np.array([-2 * np.pi, 0, 0, 0, 0, -2 * np.pi])
    np.testing.assert_allclose(model.ik(model.fk(q), ref), ref, atol=1e-6)


def test_unreachable_pose_gives_none() -> None:
    T = np.eye(4)
    T[:3, 3] = [1.5, 0.0, 0.3]
    assert ur5e().ik(T, HOME) is None
    assert np.all(np.isnan(ur5e().ik_path(np.stack([T, T]), HOME)))


def test_wrist_singularity_still_solves() -> None:
    model = ur5e()
    q = np.array([0.2, -1.0, 1.2, -0.5, 0.0, 0.7])  # q5 = 0: q4 and q6 axes align
    T = model.fk(q)
    best = model.ik(T, q)
    np.testing.assert_allclose(model.fk(best), T, atol=1e-8)


@pytest.mark.parametrize("name", ["ur5", "ur5e"])
def test_jacobian_matches_finite_differences(name: str) -> None:
    model = MODELS[name]
    rng = np.random.default_rng(5)
    eps = 1e-7
    for q in rng.uniform(-np.pi, np.pi, (20, 6)):
        T0 = model.fk(q)
        numeric = np.zeros((6, 6))
        for j in range(6):
            dq = np.zeros(6)
            dq[j] = eps
            T1 = model.fk(q + dq)
            numeric[:3, j] = (T1[:3, 3] - T0[:3, 3]) / eps
            numeric[3:, j] = Rotation.from_matrix(T1[:3, :3] @ T0[:3, :3].T).as_rotvec() / eps
        np.testing.assert_allclose(model.jacobian(q), numeric, atol=1e-5)
        np.testing.assert_allclose(model.jacobian_many(q[None])[0], model.jacobian(q))


def test_condition_number_batch_matches_single_and_flags_stretched_arm() -> None:
    model = ur5e()
    qs = np.random.default_rng(2).uniform(-np.pi, np.pi, (50, 6))
    np.testing.assert_allclose(model.condition_numbers(qs), [model.condition_number(q) for q in qs], rtol=1e-6)
    assert model.condition_number(HOME) < 17
    stretched = np.array([0.0, -np.pi / 2, 0.0, -np.pi / 2, -np.pi / 2, 0.0])  # elbow straight
    assert model.condition_number(stretched) > 1e6


def test_ik_path_stays_on_one_branch_along_a_smooth_path() -> None:
    model = ur5e()
    start = model.fk(HOME)
    poses = np.repeat(start[None], 60, axis=0)
    poses[:, 0, 3] += np.linspace(0.0, -0.25, 60)  # 25 cm straight line
    poses[:, 1, 3] += np.linspace(0.0, 0.3, 60)
    q = model.ik_path(poses, HOME)
    assert np.all(np.isfinite(q))
    np.testing.assert_allclose(q[0], HOME, atol=1e-9)
    assert np.abs(np.diff(q, axis=0)).max() < 0.05
    np.testing.assert_allclose(model.fk_many(q), poses, atol=1e-9)
    # The base-class fallback (solve each pose near the previous one) agrees with the vectorised one.
    fallback = type(model).__mro__[1].ik_path(model, poses, HOME)
    np.testing.assert_allclose(fallback, q, atol=1e-8)


def test_ik_path_shifts_a_whole_joint_turn_to_stay_within_limits() -> None:
    model = ur5e()
    q0 = HOME.copy()
    q0[5] = 2 * np.pi - 0.05  # wrist 3 near its upper limit
    poses = np.array([model.fk(q0 + np.array([0, 0, 0, 0, 0, t])) for t in np.linspace(0, 0.3, 10)])
    q = model.ik_path(poses, q0)
    assert np.all(np.isfinite(q)) and model.within_limits(q.max(axis=0)) and model.within_limits(q.min(axis=0))
    np.testing.assert_allclose(np.diff(q[:, 5]), 0.3 / 9, atol=1e-9)


def test_capsules_follow_the_links_and_detect_a_folded_arm() -> None:
    model = ur5e()
    caps = model.capsules(HOME)
    assert [c.link for c in caps] == ["base_column", "upper_arm", "forearm", "wrist_1", "wrist_2", "wrist_3"]
    frames = model.link_frames(HOME)
    np.testing.assert_allclose(caps[1].p0, frames[1][:3, 3])
    np.testing.assert_allclose(caps[5].p1, frames[6][:3, 3])
    gap, _ = self_collision_clearance(model, HOME[None])
    assert gap[0] > 0.05
    folded = np.array([0.0, -1.0, 3.0, -1.0, -np.pi / 2, 0.0])  # forearm folded back onto the upper arm
    gap, _ = self_collision_clearance(model, folded[None])
    assert gap[0] < 0.0


def test_structurally_separated_wrist_pairs_never_report_contact() -> None:
    """The pairs the UR model leaves out of the self-collision check (forearm/wrist 2, wrist 1/wrist 3)
    are kept apart by the DH offsets in every configuration."""
    model = ur5e()
    qs = np.random.default_rng(9).uniform(-np.pi, np.pi, (5000, 6))
    p0, p1, radii = model.capsule_segments_many(qs)
    from spatial_trace_ros.planning.volumes import segment_distances

    checked = set(model.self_collision_pairs())
    skipped = {(i, j) for i in range(6) for j in range(i + 2, 6)} - checked
    assert skipped == {(2, 4), (3, 5)}
    for i, j in skipped:
        gap = segment_distances(p0[:, i], p1[:, i], p0[:, j], p1[:, j]) - radii[i] - radii[j]
        assert gap.min() > 0.005
