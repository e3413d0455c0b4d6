"""Planner core: the frame chain (a point seen by the camera lands where the calibration says),
resampling, orientation policies, approach/retreat, start from the current pose, IK continuity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.geometry import Calibration, Trace, Transform, load_calibration
from spatial_trace_ros.planning.node_config import PlannerNodeConfig, build_planner
from spatial_trace_ros.planning.plan import Verdict
from spatial_trace_ros.planning.planner import Planner, PlannerConfig
from spatial_trace_ros.planning.pose_history import PoseHistory
from spatial_trace_ros.planning.safety import SafetyConfig
from spatial_trace_ros.robots.ur.kinematics import ur5e

REPO = Path(__file__).resolve().parents[1]
HOME = np.array([0.0, -np.pi / 2, np.pi / 2, -np.pi / 2, -np.pi / 2, 0.0])
CAMERA = "camera_color_optical_frame"
MODEL = ur5e()
# Camera 0.8 m above the base at x = -0.4, looking straight down (optical z = -base z, y = -base y).
DOWN_CAMERA = Calibration("eye_to_hand", Transform.from_rpy([-0.4, 0.0, 0.8], [np.pi, 0.0, 0.0], "base", CAMERA))


def camera_trace(base_points: np.ndarray, calibration: Calibration = DOWN_CAMERA, stamp_s: float = 100.0) -> Trace:
    """The trace a camera would report for these base-frame points."""
    cam = calibration.base_T_camera().inverse().apply(base_points)
    return Trace(cam, CAMERA, stamp_s=stamp_s)


def line(a: list[float], b: list[float], n: int = 20) -> np.ndarray:
    return np.linspace(a, b, n)


def test_camera_point_lands_where_the_calibration_says() -> None:
    # Worked by hand: base = (-0.4, 0, 0.8) + (x, -y, -z) for a camera point (x, y, z).
    trace = Trace(np.array([[0.1, 0.2, 0.6], [0.05, 0.1, 0.6]]), CAMERA, stamp_s=1.0)
    result = Planner(MODEL, DOWN_CAMERA).plan_detailed(trace, HOME)
    np.testing.assert_allclose(result.trace_base, [[-0.3, -0.2, 0.2], [-0.35, -0.1, 0.2]], atol=1e-12)
    assert result.report.allowed
    trace_part = result.plan.positions[np.isclose(result.plan.positions[:, 2], 0.2)]
    np.testing.assert_allclose(trace_part[0], [-0.3, -0.2, 0.2], atol=1e-9)
    np.testing.assert_allclose(trace_part[-1], [-0.35, -0.1, 0.2], atol=1e-9)


def test_eye_in_hand_uses_the_tcp_pose_at_capture() -> None:
    cal = Calibration("eye_in_hand", Transform.from_rpy([0.0, 0.05, 0.0], [0, 0, 0], "tool0", CAMERA))
    planner = Planner(MODEL, cal)
    tcp = MODEL.fk(HOME)  # at (-0.4919, -0.1333, 0.4879), tool x = base y, tool y = base x, tool z down
    trace = Trace(np.array([[0.0, 0.0, 0.3], [0.1, 0.0, 0.3]]), CAMERA, stamp_s=1.0)
    result = planner.plan_detailed(trace, HOME, base_T_tool_at_capture=tcp)
    np.testing.assert_allclose(result.trace_base[0], [-0.4919 + 0.05, -0.1333, 0.4879 - 0.3], atol=1e-9)
    np.testing.assert_allclose(result.trace_base[1], [-0.4919 + 0.05, -0.1333 + 0.1, 0.4879 - 0.3], atol=1e-9)
    refused = planner.plan_detailed(trace, HOME)
    assert refused.plan is None and refused.report.reasons[0].code == "NO_TCP_POSE"


def test_trace_in_another_camera_frame_is_refused() -> None:
    trace = Trace(np.array([[0.1, 0.2, 0.6], [0.05, 0.1, 0.6]]), "other_camera_optical_frame")
    plan, report = Planner(MODEL, DOWN_CAMERA).plan(trace, HOME)
    assert plan is None and report.verdict is Verdict.REJECT and report.reasons[0].code == "WRONG_FRAME"
    assert "calibration" in report.reasons[0].message


def test_calibration_in_another_base_frame_is_a_config_error() -> None:
    cal = Calibration("eye_to_hand", Transform.from_rpy([0.5, 0, 0.8], [np.pi, 0, 0], "base_link", CAMERA))
    with pytest.raises(ConfigError, match="base_link"):
        Planner(MODEL, cal)


def test_resampled_trace_is_evenly_spaced_at_most_spacing() -> None:
    planner = Planner(MODEL, DOWN_CAMERA, PlannerConfig(spacing_m=0.02, approach_offset_m=0, retreat_offset_m=0,
                                                       start_from_current=False))
    pts = np.array([[-0.3, -0.2, 0.2], [-0.3, 0.0, 0.2], [-0.45, 0.0, 0.2]])  # 0.35 m polyline
    plan, report = planner.plan(camera_trace(pts), HOME)
    assert report.allowed
    steps = np.linalg.norm(np.diff(plan.positions, axis=0), axis=1)
    assert steps.max() <= 0.02 + 1e-12
    assert len(plan) == int(np.ceil(0.35 / 0.02)) + 1
    # Even along the arc length: every chord is 0.35 m / 18, except the one that cuts the corner.
    np.testing.assert_allclose(np.sort(steps)[1:], 0.35 / 18, rtol=1e-9)
    np.testing.assert_allclose(plan.positions[[0, -1]], pts[[0, -1]], atol=1e-12)


@pytest.mark.parametrize("policy", ["fixed", "keep_current", "follow_tangent"])
def test_orientation_policies(policy: str) -> None:
    q_now = HOME + np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.5])  # tool rotated 0.5 rad about its axis
    cfg = PlannerConfig(orientation_policy=policy, fixed_tool_rpy_rad=[np.pi, 0.0, 0.0])
    planner = Planner(MODEL, DOWN_CAMERA, cfg)
    result = planner.plan_detailed(camera_trace(line([-0.35, -0.25, 0.2], [-0.35, 0.05, 0.2], 30)), q_now)
    assert result.report.allowed, result.report.summary()
    plan = result.plan
    on_trace = np.flatnonzero(np.isclose(plan.positions[:, 2], 0.2) & (plan.positions[:, 1] > -0.24)
                              & (plan.positions[:, 1] < 0.04))
    R = plan.poses[on_trace, :3, :3]
    np.testing.assert_allclose(R[:, :, 2], np.tile([0, 0, -1], (len(R), 1)), atol=1e-9)  # tool z down throughout
    if policy == "fixed":
        np.testing.assert_allclose(R, np.tile(np.diag([1.0, -1.0, -1.0]), (len(R), 1, 1)), atol=1e-9)
    elif policy == "keep_current":
        np.testing.assert_allclose(R, np.tile(MODEL.fk(q_now)[:3, :3], (len(R), 1, 1)), atol=1e-9)
    else:  # moving along +y: tool x follows the heading
        np.testing.assert_allclose(R[:, :, 0], np.tile([0, 1, 0], (len(R), 1)), atol=1e-6)


def test_approach_retreat_and_start_from_current() -> None:
    cfg = PlannerConfig(approach_offset_m=0.08, retreat_offset_m=0.04)
    trace_pts = line([-0.35, -0.25, 0.2], [-0.35, 0.0, 0.2], 10)
    plan, report = Planner(MODEL, DOWN_CAMERA, cfg).plan(camera_trace(trace_pts), HOME)
    assert report.allowed
    np.testing.assert_allclose(plan.joints[0], HOME, atol=1e-9)  # starts where the robot is
    np.testing.assert_allclose(plan.poses[0], MODEL.fk(HOME), atol=1e-9)
    pos = plan.positions
    approach = np.flatnonzero(np.all(np.isclose(pos, trace_pts[0] + [0, 0, 0.08], atol=1e-9), axis=1))
    first = np.flatnonzero(np.all(np.isclose(pos, trace_pts[0], atol=1e-9), axis=1))
    assert len(approach) == 1 and len(first) == 1 and approach[0] < first[0]
    np.testing.assert_allclose(pos[-1], trace_pts[-1] + [0, 0, 0.04], atol=1e-9)  # retreat up along -tool z
    # The way down from the approach point is a straight vertical line.
    down = pos[approach[0]:first[0] + 1]
    np.testing.assert_allclose(down[:, :2], np.tile(trace_pts[0, :2], (len(down), 1)), atol=1e-9)


def test_without_joint_state_the_seed_is_used_and_said() -> None:
    plan, report = Planner(MODEL, DOWN_CAMERA).plan(camera_trace(line([-0.35, -0.25, 0.2], [-0.35, 0.0, 0.2])),
                                                    None, seed_joints=HOME)
    assert report.verdict is Verdict.ACCEPT
    assert [r.code for r in report.reasons] == ["NO_JOINT_STATE"]
    assert "initial_joints_rad" in report.summary()
    np.testing.assert_allclose(plan.positions[0], [-0.35, -0.25, 0.25], atol=1e-9)  # begins at the approach point
    with pytest.raises(ConfigError, match="seed"):
        Planner(MODEL, DOWN_CAMERA).plan(camera_trace(line([-0.35, -0.25, 0.2], [-0.35, 0.0, 0.2])), None)


def test_joint_path_is_continuous_and_matches_the_poses() -> None:
    pts = np.c_[np.linspace(-0.3, -0.5, 40), 0.15 * np.sin(np.linspace(0, 3, 40)) - 0.1, np.full(40, 0.15)]
    plan, report = Planner(MODEL, DOWN_CAMERA, PlannerConfig(orientation_policy="follow_tangent")).plan(
        camera_trace(pts), HOME)
    assert report.allowed, report.summary()
    np.testing.assert_allclose(MODEL.fk_many(plan.joints), plan.poses, atol=1e-9)
    assert np.abs(np.diff(plan.joints, axis=0)).max() <= SafetyConfig().motion.max_joint_step_rad
    assert plan.frame_id == "base" and plan.robot == "ur5e"


def test_requested_speed_above_the_limit_is_adjusted_down() -> None:
    planner = Planner(MODEL, DOWN_CAMERA, PlannerConfig(max_tcp_speed_mps=0.6))
    plan, report = planner.plan(camera_trace(line([-0.3, -0.3, 0.2], [-0.45, 0.1, 0.2])), HOME)
    assert report.verdict is Verdict.ADJUSTED
    assert "SPEED_LIMITED" in [r.code for r in report.reasons]
    speeds = np.linalg.norm(np.diff(plan.positions, axis=0), axis=1) / np.diff(plan.times_s)
    assert speeds.max() <= 0.25 * (1 + 1e-9)
    assert plan.report is report


def test_pose_history_interpolates_between_samples() -> None:
    history = PoseHistory(max_gap_s=0.1)
    a = Transform.from_rpy([0.0, 0.0, 0.0], [0, 0, 0]).matrix
    b = Transform.from_rpy([0.1, 0.0, 0.2], [0, 0, 0.4]).matrix
    history.add(10.0, a)
    history.add(10.05, b)
    mid = history.at(10.025, tolerance_s=0.01)
    np.testing.assert_allclose(mid[:3, 3], [0.05, 0.0, 0.1])
    np.testing.assert_allclose(Transform(mid).rotvec, [0, 0, 0.2], atol=1e-12)
    np.testing.assert_allclose(history.at(10.06, tolerance_s=0.02), b)
    assert history.at(11.0, tolerance_s=0.02) is None
    history.add(10.01, a)  # out of order: ignored
    assert len(history) == 2


def test_node_config_builds_from_files_and_names_what_is_wrong(tmp_path: Path) -> None:
    cal_file = REPO / "config" / "calibration.example.yaml"
    planner = build_planner(PlannerNodeConfig(calibration_file=str(cal_file),
                                              safety_file=str(REPO / "config" / "safety.yaml")))
    assert planner.calibration.mode == load_calibration(cal_file).mode
    with pytest.raises(ConfigError, match="calibration_file is empty"):
        build_planner(PlannerNodeConfig())
    bad = tmp_path / "safety.yaml"
    bad.write_text(yaml.safe_dump({"motion": {"max_tcp_speed_mps": -1}}))
    with pytest.raises(ConfigError, match=r"motion\.max_tcp_speed_mps"):
        build_planner(PlannerNodeConfig(calibration_file=str(cal_file), safety_file=str(bad)))
    with pytest.raises(ValueError, match="initial_joints_rad needs 6 values"):
        PlannerNodeConfig(initial_joints_rad=[0.0, 1.0])
    np.testing.assert_allclose(PlannerNodeConfig().seed_joints(), HOME)


def test_shipped_planner_params_file_is_valid_and_documented() -> None:
    params = yaml.safe_load((REPO / "config" / "planner.yaml").read_text())["planner_node"]["ros__parameters"]
    cfg = PlannerNodeConfig.model_validate(params)
    assert set(params) == set(PlannerNodeConfig.model_fields)  # every parameter listed, none unknown
    np.testing.assert_allclose(cfg.seed_joints(), HOME)
    defaults = PlannerNodeConfig()
    for name in ("spacing_m", "orientation_policy", "max_tcp_speed_mps", "max_trace_age_s", "robot"):
        assert getattr(cfg, name) == getattr(defaults, name), name
    docs = (REPO / "docs" / "planner.md").read_text()
    for name in PlannerNodeConfig.model_fields:
        assert f"| `{name}` |" in docs, f"docs/planner.md lacks a row for parameter {name}"
