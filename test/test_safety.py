"""Safety filter and setpoint guard: every check in isolation (one limit broken at a time), the verdict
rules, the config file, and the run-time guard."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.planning.plan import Plan, SafetyReason, Verdict
from spatial_trace_ros.planning.safety import (
    CandidatePath,
    SafetyCode,
    SafetyConfig,
    SafetyFilter,
    SetpointGuard,
    TraceFacts,
    load_safety_config,
    safety_config_from_dict,
    verdict_of,
)
from spatial_trace_ros.planning.tool_geometry import ToolGeometry
from spatial_trace_ros.robots.ur.kinematics import ur5e
from spatial_trace_ros.tools.description import tool_from_dict

REPO = Path(__file__).resolve().parents[1]
MODEL = ur5e()
HOME = np.array([0.0, -np.pi / 2, np.pi / 2, -np.pi / 2, -np.pi / 2, 0.0])
TOOL_DOWN = np.diag([1.0, -1.0, -1.0])


def cfg(**sections: dict) -> SafetyConfig:
    return safety_config_from_dict(sections)


def line_candidate(a: list[float], b: list[float], spacing_m: float = 0.01, seed: np.ndarray = HOME,
                   speed_mps: float = 0.25, accel_mps2: float = 0.5) -> CandidatePath:
    n = max(2, int(np.ceil(np.linalg.norm(np.subtract(b, a)) / spacing_m)) + 1)
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, :3, :3] = TOOL_DOWN
    poses[:, :3, 3] = np.linspace(a, b, n)
    return CandidatePath(poses, MODEL.ik_path(poses, seed), seed, speed_mps, accel_mps2)


def joint_candidate(qs: np.ndarray) -> CandidatePath:
    return CandidatePath(MODEL.fk_many(qs), np.asarray(qs, float), qs[0], 0.25, 0.5)


GOOD = line_candidate([-0.35, -0.25, 0.2], [-0.35, 0.0, 0.2])


def codes(report: object) -> list[str]:
    return [r.code for r in report.reasons]


def run(candidate: CandidatePath = GOOD, config: SafetyConfig | None = None, facts: TraceFacts | None = None,
        **kwargs: float) -> tuple[Plan | None, object]:
    return SafetyFilter(config or SafetyConfig(), MODEL).filter(candidate, facts, **kwargs)


def test_a_plain_path_is_accepted_and_timed() -> None:
    plan, report = run()
    assert report.verdict is Verdict.ACCEPT and report.reasons == ()
    assert plan is not None and plan.report is report and len(plan) == len(GOOD.poses)
    assert plan.duration_s == pytest.approx(0.25 / 0.25 + 0.25 / 0.5)  # trapezoid over 0.25 m


def test_outside_workspace_is_refused_with_where() -> None:
    plan, report = run(config=cfg(workspace={"min_m": [-0.85, -0.85, 0.0], "max_m": [0.85, -0.1, 1.0]}))
    assert plan is None and codes(report) == ["OUTSIDE_WORKSPACE"]
    r = report.reasons[0]
    assert r.waypoint == 16 and "workspace" in r.message and "safety.yaml" in r.message


def test_clip_to_workspace_adjusts_small_excursions_only() -> None:
    box = {"min_m": [-0.85, -0.85, 0.0], "max_m": [0.85, -0.03, 1.0], "clip_to_workspace": True}
    plan, report = run(config=cfg(workspace=box))
    assert report.verdict is Verdict.ADJUSTED and codes(report) == ["CLIPPED_TO_WORKSPACE"]
    assert plan.positions[:, 1].max() <= -0.03 + 1e-12
    np.testing.assert_allclose(MODEL.fk_many(plan.joints), plan.poses, atol=1e-9)
    plan, report = run(config=cfg(workspace={**box, "max_m": [0.85, -0.1, 1.0]}))  # 0.1 m outside > max_clip_m
    assert plan is None and codes(report) == ["OUTSIDE_WORKSPACE"]


def test_keep_out_box_is_refused_by_name() -> None:
    zone = {"name": "fixture", "shape": "box", "min_m": [-0.4, -0.15, 0.0], "max_m": [-0.3, -0.1, 0.3]}
    plan, report = run(config=cfg(keep_out_zones=[zone]))
    assert plan is None and codes(report) == ["KEEP_OUT_ZONE"]
    assert "'fixture'" in report.reasons[0].message and report.reasons[0].waypoint == 10


def test_default_zone_around_the_base() -> None:
    plan, report = run(line_candidate([-0.25, -0.15, 0.3], [-0.1, -0.1, 0.3]))
    assert plan is None and "KEEP_OUT_ZONE" in codes(report)
    assert "robot_base" in report.summary()


def test_below_the_table_plane() -> None:
    plan, report = run(config=cfg(table={"z_m": 0.19}))
    assert plan is None and codes(report) == ["BELOW_TABLE", "LINK_BELOW_TABLE"]
    assert report.reasons[0].limit == pytest.approx(0.21)


def test_links_below_the_table_plane() -> None:
    # TCP 3 cm above the table, but the wrist 3 capsule (radius 4 cm) around the flange reaches below it.
    plan, report = run(config=cfg(table={"z_m": 0.17, "tcp_clearance_m": 0.0}))
    assert plan is None and codes(report) == ["LINK_BELOW_TABLE"]


def test_unreachable_waypoints() -> None:
    big = cfg(workspace={"min_m": [-2, -2, 0], "max_m": [2, 2, 2]})
    plan, report = run(line_candidate([-0.5, -0.25, 0.2], [-1.2, -0.25, 0.2], spacing_m=0.02), config=big)
    assert plan is None and "UNREACHABLE" in codes(report)
    r = report.reasons[codes(report).index("UNREACHABLE")]
    assert "closer to the robot" in r.message


def test_joint_limit_margin() -> None:
    qs = np.tile(HOME, (20, 1))
    qs[:, 5] = np.linspace(2 * np.pi - 0.3, 2 * np.pi - 0.05, 20)  # wrist 3 turning towards its limit
    plan, report = run(joint_candidate(qs))
    assert plan is None and codes(report) == ["JOINT_LIMIT"]
    assert "wrist_3_joint" in report.reasons[0].message
    assert report.reasons[0].waypoint == int(np.argmax(qs[:, 5] > 2 * np.pi - 0.1))
    plan, report = run(joint_candidate(qs), config=cfg(joint_limits={"margin_rad": 0.0}))
    assert report.verdict is Verdict.ACCEPT


def test_configuration_flip_between_waypoints() -> None:
    joints = GOOD.joints.copy()
    others = MODEL.ik_all(GOOD.poses[10], joints[10])
    joints[10] = others[np.argmax(np.abs(others - joints[10]).max(axis=1))]  # same pose, other arm configuration
    plan, report = run(replace(GOOD, joints=joints))
    assert plan is None and "JOINT_JUMP" in codes(report)
    assert report.reasons[codes(report).index("JOINT_JUMP")].waypoint == 9


def test_step_between_waypoints() -> None:
    plan, report = run(line_candidate([-0.35, -0.25, 0.2], [-0.35, 0.0, 0.2], spacing_m=0.08))
    assert plan is None and codes(report) == ["STEP_TOO_LARGE"]
    assert "spacing_m" in report.reasons[0].message


def _wrist_near_singular(condition: float) -> float:
    """q5 at which HOME's condition number equals ``condition`` (bisection; it falls as q5 leaves 0)."""
    lo, hi = 1e-4, np.pi / 2
    for _ in range(60):
        mid = (lo + hi) / 2
        q = HOME.copy()
        q[4] = -mid
        lo, hi = (mid, hi) if MODEL.condition_number(q) > condition else (lo, mid)
    return -lo


def test_singularity_refused_at_the_stop_threshold() -> None:
    q5 = _wrist_near_singular(40.0)
    qs = np.tile(HOME, (15, 1))
    qs[:, 4] = q5
    qs[:, 0] = np.linspace(0.0, 0.1, 15)
    plan, report = run(joint_candidate(qs))
    assert plan is None and codes(report) == ["SINGULARITY"]
    assert report.reasons[0].limit == 30.0


def test_singularity_slows_down_between_thresholds() -> None:
    q5 = _wrist_near_singular(23.5)  # halfway between 17 and 30: speed factor 0.5
    qs = np.tile(HOME, (30, 1))
    qs[:, 4] = q5
    qs[:, 0] = np.linspace(0.0, 0.3, 30)
    plan, report = run(joint_candidate(qs))
    assert report.verdict is Verdict.ADJUSTED and codes(report) == ["SINGULARITY_SLOWED"]
    assert report.reasons[0].value == pytest.approx(0.5, abs=0.02)
    speeds = np.linalg.norm(np.diff(plan.positions, axis=0), axis=1) / np.diff(plan.times_s)
    assert speeds.max() <= 0.25 * 0.52
    fast, _ = run(joint_candidate(qs), config=cfg(singularity={"slow_down_condition": 25.0}))
    assert fast.duration_s < plan.duration_s


# Wrist bent back so the flange (wrist 3) dips 3 cm into the forearm; well-conditioned (no singularity).
TOOL_IN_FOREARM = np.array([1.9, -0.4, 1.8, 2.2, 2.4, -2.7])
OPEN_CELL = {"workspace": {"min_m": [-2, -2, -2], "max_m": [2, 2, 2]}, "keep_out_zones": [],
             "table": {"enabled": False}}


def test_self_collision() -> None:
    assert MODEL.condition_number(TOOL_IN_FOREARM) < 17
    qs = np.tile(TOOL_IN_FOREARM, (5, 1))
    qs[:, 0] += np.linspace(0.0, 0.05, 5)
    plan, report = run(joint_candidate(qs), config=cfg(**OPEN_CELL))
    assert plan is None and codes(report) == ["SELF_COLLISION"]
    assert "forearm and wrist_3" in report.reasons[0].message
    assert report.reasons[0].value < 0  # overlap


@pytest.mark.parametrize(
    ("facts", "code"),
    [
        (TraceFacts(n_points=1), "TRACE_TOO_SHORT"),
        (TraceFacts(n_points=20, depth_valid_fraction=0.5), "DEPTH_INVALID"),
        (TraceFacts(n_points=20, model_agreement=0.3, n_samples=5), "MODEL_DISAGREEMENT"),
        (TraceFacts(n_points=20, frame_age_s=20.0), "FRAME_TOO_OLD"),
        (TraceFacts(n_points=20, trace_age_s=6.0), "TRACE_TOO_OLD"),
        (TraceFacts(n_points=20, max_point_step_m=0.3), "TRACE_JUMP"),
    ],
)
def test_data_checks(facts: TraceFacts, code: str) -> None:
    plan, report = run(facts=facts)
    assert plan is None and codes(report) == [code]
    assert "; " in report.reasons[0].message  # what is wrong; what to do


def test_data_checks_pass_fresh_good_data_and_single_sample_agreement_is_ignored() -> None:
    facts = TraceFacts(n_points=20, depth_valid_fraction=0.9, max_point_step_m=0.05, frame_age_s=2.0,
                       trace_age_s=0.1, model_agreement=0.1, n_samples=1)
    _, report = run(facts=facts)
    assert report.verdict is Verdict.ACCEPT
    _, report = run(facts=replace(facts, trace_age_s=2.0), max_trace_age_s=1.0)  # a stricter request applies
    assert codes(report) == ["TRACE_TOO_OLD"]
    _, report = run(facts=replace(facts, trace_age_s=2.0), max_trace_age_s=60.0)  # a looser one does not
    assert report.verdict is Verdict.ACCEPT


def test_requests_above_the_ceilings_are_adjusted_never_raised() -> None:
    fast = replace(GOOD, speed_mps=1.0, accel_mps2=3.0)
    plan, report = run(fast)
    assert report.verdict is Verdict.ADJUSTED and codes(report) == ["SPEED_LIMITED", "ACCEL_LIMITED"]
    reference, _ = run()
    np.testing.assert_allclose(plan.times_s, reference.times_s)
    slow, report = run(replace(GOOD, speed_mps=0.1))  # slower requests are honoured as they are
    assert report.verdict is Verdict.ACCEPT and slow.duration_s > reference.duration_s


def test_verdict_rules() -> None:
    info = SafetyReason("NO_JOINT_STATE", "x")
    adjust = SafetyReason("SPEED_LIMITED", "y")
    reject = SafetyReason("KEEP_OUT_ZONE", "z")
    assert verdict_of([]) is Verdict.ACCEPT
    assert verdict_of([info]) is Verdict.ACCEPT
    assert verdict_of([info, adjust]) is Verdict.ADJUSTED
    assert verdict_of([adjust, reject, info]) is Verdict.REJECT
    assert {SafetyCode(c).severity for c in ("SPEED_LIMITED", "CLIPPED_TO_WORKSPACE")} == {"adjust"}


def test_verify_catches_a_tampered_plan() -> None:
    plan, _ = run()
    filt = SafetyFilter(SafetyConfig(), MODEL)
    assert filt.verify(plan).verdict is Verdict.ACCEPT
    rushed = Plan(plan.robot, plan.frame_id, plan.joint_names, plan.times_s * 0.5, plan.joints, plan.poses)
    assert {"TCP_SPEED", "TCP_ACCEL"} <= set(codes(filt.verify(rushed)))
    other = plan.joints.copy()
    other[:, 0] += 0.05
    mismatched = Plan(plan.robot, plan.frame_id, plan.joint_names, plan.times_s, other, plan.poses)
    assert "UNREACHABLE" in codes(filt.verify(mismatched))


# -- config file ----------------------------------------------------------------------------------------
def test_shipped_safety_yaml_equals_the_defaults() -> None:
    loaded = load_safety_config(REPO / "config" / "safety.yaml")
    assert loaded == SafetyConfig()
    assert loaded.motion.max_tcp_speed_mps == 0.25 and loaded.joint_limits.margin_rad == 0.1
    assert (loaded.singularity.slow_down_condition, loaded.singularity.stop_condition) == (17.0, 30.0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"workspace": {"min_m": [0, 0, 0], "max_m": [1, -1, 1]}}, "workspace"),
        ({"motion": {"max_tcp_speed_mps": 5.0}}, r"motion\.max_tcp_speed_mps"),
        ({"singularity": {"slow_down_condition": 40.0}}, "slow_down_condition must be below"),
        ({"keep_out_zones": [{"name": "x", "shape": "sphere"}]}, "keep_out_zones"),
        ({"motoin": {}}, "motoin"),
    ],
)
def test_invalid_safety_files_name_the_problem(tmp_path: Path, data: dict, message: str) -> None:
    path = tmp_path / "safety.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message):
        load_safety_config(path)


def test_missing_safety_file() -> None:
    with pytest.raises(ConfigError, match=r"copy config/safety\.yaml"):
        load_safety_config("/nonexistent/safety.yaml")


# -- run-time guard -------------------------------------------------------------------------------------
GUARD = SetpointGuard(SafetyConfig(), MODEL)
TCP = MODEL.fk(HOME)


def moved(dx: float = 0.0, dy: float = 0.0, dz: float = 0.0) -> np.ndarray:
    out = TCP.copy()
    out[:3, 3] += [dx, dy, dz]
    return out


def test_guard_pose_checks() -> None:
    assert GUARD.check_pose(TCP, moved(0.001), 0.008, HOME) is None  # 0.125 m/s
    np.testing.assert_allclose(MODEL.fk(GUARD.last_solution), moved(0.001), atol=1e-9)
    assert GUARD.check_pose(TCP, moved(0.003), 0.008, HOME).code == "TCP_SPEED"  # 0.375 m/s
    assert GUARD.check_pose(TCP, moved(0.06), 1.0, HOME).code == "STEP_TOO_LARGE"
    assert GUARD.check_pose(TCP, moved(dz=-0.48), 10.0, HOME).code in {"BELOW_TABLE", "STEP_TOO_LARGE"}
    assert GUARD.check_pose(TCP, moved(0.001), 0.0, HOME).code == "BAD_TIMING"
    assert GUARD.check_pose(TCP, moved(np.nan), 0.008, HOME).code == "NON_FINITE"
    far = np.eye(4)
    far[:3, 3] = [0.84, 0.84, 0.9]
    assert GUARD.check_pose(far, far, 0.008, HOME).code == "UNREACHABLE"


def test_guard_joint_checks() -> None:
    assert GUARD.check_joints(HOME, HOME + 0.001, 0.008) is None
    assert GUARD.check_joints(HOME, HOME + np.r_[0.4, 0, 0, 0, 0, 0], 1.0).code == "JOINT_JUMP"
    assert GUARD.check_joints(HOME, HOME + np.r_[0, 0, 0, 0, 0, 0.02], 0.008).code == "JOINT_SPEED"
    assert GUARD.check_joints(HOME, HOME + np.r_[0, 0.01, 0, 0, 0, 0], 0.008).code == "TCP_SPEED"
    near_limit = HOME.copy()
    near_limit[5] = 2 * np.pi - 0.05
    assert GUARD.check_joints(near_limit, near_limit, 0.008).code == "JOINT_LIMIT"
    relaxed = SetpointGuard(cfg(**OPEN_CELL), MODEL)
    assert relaxed.check_joints(TOOL_IN_FOREARM, TOOL_IN_FOREARM, 0.008).code == "SELF_COLLISION"
    assert GUARD.check_joints(HOME, np.full(6, np.inf), 0.008).code == "NON_FINITE"
    # A target on another branch than the measured arm is a flip, however small the commanded step.
    assert GUARD.check_joints(HOME, HOME + 0.001, 0.008, q_measured=HOME + np.r_[0.5, 0, 0, 0, 0, 0]).code == \
        "JOINT_JUMP"


def test_guard_twist_checks() -> None:
    assert GUARD.check_twist(TCP, np.array([0.1, 0, 0, 0, 0, 0]), HOME) is None
    assert GUARD.check_twist(TCP, np.array([0.27, 0, 0, 0, 0, 0]), HOME) is None  # within the 10 % tolerance
    assert GUARD.check_twist(TCP, np.array([0.3, 0, 0, 0, 0, 0]), HOME).code == "TCP_SPEED"
    assert GUARD.check_twist(TCP, np.array([0, 0, 0, 0, 0, 2.0]), HOME).code == "TOOL_ANGULAR_SPEED"
    at_edge = moved(dz=-0.46)  # 2.8 cm above the table: one horizon down at 0.2 m/s crosses the clearance
    q_edge = MODEL.ik(at_edge, HOME)
    relaxed = SetpointGuard(cfg(table={"check_links": False}), MODEL)
    assert relaxed.check_twist(at_edge, np.array([0, 0, -0.2, 0, 0, 0]), q_edge).code == "BELOW_TABLE"
    assert relaxed.check_twist(at_edge, np.array([0, 0, 0.2, 0, 0, 0]), q_edge) is None
    assert GUARD.check_twist(TCP, np.array([0.1, 0.0]), HOME).code == "NON_FINITE"


# A joint 0.25 rad inside its limit: fine with the default margin (0.1 rad), refused with 0.3 rad.
NEAR_WRIST_LIMIT = HOME + np.r_[0, 0, 0, 0, 0, 2 * np.pi - 0.25]
STRICT_LIMITS = SetpointGuard(cfg(joint_limits={"margin_rad": 0.3}), MODEL)


def test_every_setpoint_kind_gets_the_joint_checks() -> None:
    """Before, only joint setpoints were checked for joint limits, singularity and collisions: a pose,
    a speed command or a path reaching the same configuration passed on TCP checks alone."""
    tcp = MODEL.fk(NEAR_WRIST_LIMIT)
    target = tcp.copy()
    target[0, 3] += 0.001
    assert GUARD.check_pose(tcp, target, 0.008, NEAR_WRIST_LIMIT) is None
    assert STRICT_LIMITS.check_pose(tcp, target, 0.008, NEAR_WRIST_LIMIT).code == "JOINT_LIMIT"
    assert STRICT_LIMITS.check_joints(NEAR_WRIST_LIMIT, NEAR_WRIST_LIMIT, 0.008).code == "JOINT_LIMIT"
    assert STRICT_LIMITS.check_twist(tcp, np.array([0.1, 0, 0, 0, 0, 0]), NEAR_WRIST_LIMIT).code == "JOINT_LIMIT"
    path = np.stack([target, target @ _shift(0.002)])
    assert GUARD.check_path(tcp, path, 0.1, NEAR_WRIST_LIMIT) is None
    assert STRICT_LIMITS.check_path(tcp, path, 0.1, NEAR_WRIST_LIMIT).code == "JOINT_LIMIT"


def _shift(dx: float) -> np.ndarray:
    out = np.eye(4)
    out[0, 3] = dx
    return out


def test_pose_setpoints_near_a_singularity_or_in_self_collision_are_refused() -> None:
    wrist_aligned = HOME + np.r_[0, 0, 0, 0, np.pi / 2 - 0.01, 0]  # q5 near 0: wrist singularity
    tcp = MODEL.fk(wrist_aligned)
    assert GUARD.check_pose(tcp, tcp, 0.008, wrist_aligned).code == "SINGULARITY"
    relaxed = SetpointGuard(cfg(**OPEN_CELL), MODEL)
    folded = MODEL.fk(TOOL_IN_FOREARM)
    assert relaxed.check_pose(folded, folded, 0.008, TOOL_IN_FOREARM).code == "SELF_COLLISION"


def test_a_measured_joint_far_from_the_pose_solution_stops() -> None:
    target = moved(0.001)
    flipped = HOME + np.r_[0.5, 0, 0, 0, 0, 0]
    assert GUARD.check_pose(TCP, target, 0.008, HOME, q_measured=flipped).code == "JOINT_JUMP"


def test_the_way_between_waypoints_through_a_zone_is_refused() -> None:
    """Two waypoints on either side of a thin wall: each is outside it, the straight way is not."""
    wall = {"name": "wall", "shape": "box", "min_m": [-0.36, -0.13, 0.0], "max_m": [-0.34, -0.12, 0.5]}
    config = cfg(keep_out_zones=[wall], motion={"max_step_m": 0.2})
    sparse = line_candidate([-0.35, -0.25, 0.2], [-0.35, 0.0, 0.2], spacing_m=0.1)
    plan, report = SafetyFilter(config, MODEL).filter(sparse)
    assert plan is None and codes(report) == ["KEEP_OUT_ZONE"] and "cuts through" in report.reasons[0].message
    guard = SetpointGuard(config, MODEL)
    a, b = sparse.poses[1], sparse.poses[2]
    found = guard.check_pose(a, b, 1.0, sparse.joints[1])
    assert found is not None and found.code == "KEEP_OUT_ZONE"


def test_zones_with_check_links_keep_the_whole_arm_out() -> None:
    links_only = {"name": "above_arm", "shape": "box", "min_m": [-0.2, -0.3, 0.55], "max_m": [0.2, 0.3, 0.7],
                  "check_links": True}
    assert SafetyFilter(cfg(keep_out_zones=[{**links_only, "check_links": False}]), MODEL).check_waypoints(
        MODEL.fk(HOME)[None], HOME[None])[0] == []
    found, _ = SafetyFilter(cfg(keep_out_zones=[links_only]), MODEL).check_waypoints(MODEL.fk(HOME)[None], HOME[None])
    assert [r.code for r in found] == ["KEEP_OUT_ZONE"] and "link" in found[0].message


def test_attached_tool_capsules_join_the_checks() -> None:
    """A 50 cm rod on the flange (a tool description): the TCP stays high, the rod's tip would go
    through the table."""
    rod = {"name": "rod", "robots": ["ur5e"], "gripper": {"kind": "sim"},
           "collision": [{"shape": "capsule", "name": "rod", "start_m": [0, 0, 0], "end_m": [0, 0, 0.5],
                          "radius_m": 0.02}]}
    low = HOME.copy()
    tcp = MODEL.fk(low)
    plain = SetpointGuard(SafetyConfig(), MODEL)
    with_rod = SetpointGuard(SafetyConfig(), MODEL, tool=ToolGeometry(tool_from_dict(rod), SafetyConfig(), MODEL))
    assert tcp[2, 3] > 0.45 and tcp[2, 2] < -0.9  # tool pointing down, flange above 45 cm
    target = tcp.copy()
    target[2, 3] -= 0.001
    assert plain.check_pose(tcp, target, 0.008, low) is None
    found = with_rod.check_pose(tcp, target, 0.008, low)
    assert found is not None and found.code == "TOOL_COLLISION" and "rod" in found.message and "table" in found.message


def test_measured_tcp_and_tracking_error_are_checked() -> None:
    assert GUARD.check_measured(TCP) is None
    below = moved(dz=-0.47)
    assert GUARD.check_measured(below).code == "BELOW_TABLE" and "measured TCP" in GUARD.check_measured(below).message
    assert GUARD.check_tracking(0.01) is None
    assert GUARD.check_tracking(0.05).code == "TRACKING_ERROR"


def test_the_hazard_table_names_tests_that_exist() -> None:
    """docs/safety.md names the test that shows each hazard is caught: every one must exist."""
    doc = (REPO / "docs" / "safety.md").read_text()
    defined: dict[str, set[str]] = {}
    for path in (REPO / "test").glob("test_*.py"):
        for name in re.findall(r"^def (test_\w+)", path.read_text(), re.MULTILINE):
            defined.setdefault(name, set()).add(path.name)
    cited = re.findall(r"`(?:(test_\w+\.py)::)?(test_\w+)`", doc)
    assert len(cited) > 30
    wrong = [f"{file}::{name}" for file, name in cited if name not in defined or (file and file not in defined[name])]
    assert wrong == [], f"docs/safety.md cites tests that do not exist: {wrong}"
