"""Control policies: their plan sampling and choices in isolation, then each one executing a plan on
a fake UR through the real-time worker (real ur_rtde inside), the fake arm's TCP following the plan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers.plans import HOME_Q, offset_plan
from helpers.worker_runs import fake_ur_with_worker, run_plan, start_worker
from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.planning.plan import Plan
from spatial_trace_ros.policies.base import available_policies, load_policy_class
from spatial_trace_ros.policies.movel_path import MoveLPathPolicy
from spatial_trace_ros.policies.servo_stream import ServoStreamPolicy
from spatial_trace_ros.policies.speed_track import SpeedTrackPolicy
from spatial_trace_ros.policies.tracking import PathTracker, PlanSampler
from spatial_trace_ros.robots.driver import RobotState
from spatial_trace_ros.robots.model import make_robot_model
from spatial_trace_ros.testing.fake_ur.client import start_fake_ur

MODEL = make_robot_model("ur5")
CORNER_PATH = [(0.04, 0.0, 0.0), (0.04, 0.04, 0.0)]  # 8 cm with a right-angle corner


def _state(q: np.ndarray, qd: np.ndarray | None = None) -> RobotState:
    return RobotState(stamp_s=0.0, q=q, tcp=MODEL.fk(q), qd=qd)


def _rotating_plan() -> Plan:
    plan = offset_plan(MODEL, HOME_Q, CORNER_PATH, 2.0)
    turn = np.linspace(0.0, 0.6, len(plan))
    poses = plan.poses.copy()
    for i, angle in enumerate(turn):
        c, s = np.cos(angle), np.sin(angle)
        poses[i, :3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ poses[i, :3, :3]
    return Plan(robot=plan.robot, frame_id=plan.frame_id, joint_names=plan.joint_names, times_s=plan.times_s,
                joints=plan.joints, poses=poses)


# -- in isolation -------------------------------------------------------------------------------------
def test_plan_sampler_matches_the_plans_own_interpolation() -> None:
    plan = _rotating_plan()
    sampler = PlanSampler(plan)
    for t in np.linspace(-0.5, plan.duration_s + 0.5, 97):
        np.testing.assert_allclose(sampler.pose_at(t), plan.pose_at(t), atol=1e-12)
        np.testing.assert_allclose(sampler.joints_at(t), plan.joints_at(t), atol=1e-12)


def test_path_tracker_reports_arc_length_progress_and_distance() -> None:
    tracker = PathTracker(np.array([[0.0, 0, 0], [1.0, 0, 0], [1.0, 1.0, 0]]))
    progress, distance = tracker.locate(np.array([1.2, 0.5, 0.0]))
    assert progress == pytest.approx(0.75) and distance == pytest.approx(0.2)
    assert tracker.locate(np.array([-1.0, 0.0, 0.0])) == pytest.approx((0.0, 1.0))


def test_servo_stream_streams_joints_on_joint_only_drivers() -> None:
    plan = offset_plan(MODEL, HOME_Q, CORNER_PATH, 2.0)
    policy = ServoStreamPolicy(MODEL, driver_supports=frozenset({"servo_joints"}))
    assert policy.requires == {"servo_joints"}
    policy.start(plan, _state(HOME_Q))
    step = policy.step(1.0, _state(HOME_Q))
    assert step.setpoint.kind == "servo_joints" and not step.done
    np.testing.assert_allclose(step.setpoint.q, plan.joints_at(1.0))
    pose_policy = ServoStreamPolicy(MODEL, lookahead_s=0.05, gain=500, driver_supports=frozenset(
        {"servo_pose", "servo_joints"}))
    pose_policy.start(plan, _state(HOME_Q))
    sp = pose_policy.step(0.5, _state(HOME_Q)).setpoint
    assert sp.kind == "servo_pose" and (sp.lookahead_s, sp.gain) == (0.05, 500)
    np.testing.assert_allclose(sp.pose, plan.pose_at(0.5), atol=1e-12)


def test_servo_stream_finishes_only_when_settled_at_the_end() -> None:
    plan = offset_plan(MODEL, HOME_Q, CORNER_PATH, 2.0)
    policy = ServoStreamPolicy(MODEL, goal_tolerance_m=0.005, settle_s=1.0)
    policy.start(plan, _state(HOME_Q))
    end = plan.joints[-1]
    assert not policy.step(2.1, _state(HOME_Q)).done  # far from the end
    assert not policy.step(2.1, _state(end, qd=np.full(6, 0.1))).done  # there, still moving
    assert policy.step(2.1, _state(end, qd=np.zeros(6))).done
    assert policy.step(3.2, _state(HOME_Q)).done  # settle time over: the loop judges the end gap


def test_movel_path_sends_the_path_once_at_the_plans_speed_with_safe_blends() -> None:
    plan = offset_plan(MODEL, HOME_Q, CORNER_PATH, 2.0)
    policy = MoveLPathPolicy(MODEL, blend_m=0.05, max_tcp_speed_mps=0.25)
    policy.start(plan, _state(HOME_Q))
    first = policy.step(0.0, _state(HOME_Q))
    cmd = first.setpoint.path
    assert first.setpoint.kind == "move_path" and cmd.speed_mps == pytest.approx(0.08 / 2.0)
    assert len(cmd.poses) == len(plan) - 1  # the robot already stands at the first waypoint
    assert cmd.blend_m <= 0.4 * 0.005 + 1e-12  # never past the shortest segment's share
    moving = RobotState(stamp_s=0.0, q=HOME_Q, tcp=MODEL.fk(HOME_Q), moving=True)
    assert policy.step(0.5, moving).setpoint is None and not policy.step(0.5, moving).done
    assert policy.step(2.5, _state(plan.joints[-1])).done
    capped = MoveLPathPolicy(MODEL, max_tcp_speed_mps=0.01)
    capped.start(plan, _state(HOME_Q))
    assert capped.command.speed_mps == pytest.approx(0.01)


def test_speed_track_feeds_forward_and_corrects_within_limits() -> None:
    plan = offset_plan(MODEL, HOME_Q, [(0.1, 0.0, 0.0)], 2.0)
    policy = SpeedTrackPolicy(MODEL, track_gain_per_s=4.0, max_tcp_speed_mps=0.25)
    policy.start(plan, _state(HOME_Q))
    on_track = policy.step(1.0, _state(MODEL.ik(plan.pose_at(1.0), HOME_Q))).setpoint.twist
    np.testing.assert_allclose(on_track, [0.05, 0, 0, 0, 0, 0], atol=1e-6)  # the plan's own velocity
    behind = policy.step(1.0, _state(HOME_Q)).setpoint.twist  # 5 cm behind: 0.05 + 4 * 0.05 m/s
    assert behind[0] == pytest.approx(0.25) and np.allclose(behind[1:], 0, atol=1e-6)
    far = policy.step(1.0, _state(HOME_Q - 0.3)).setpoint.twist  # far off: capped at the limits
    assert np.linalg.norm(far[:3]) == pytest.approx(0.25) and np.linalg.norm(far[3:]) <= 1.0 + 1e-9


def test_installed_policies_and_unknown_names() -> None:
    assert {"movel_path", "servo_stream", "speed_track"} <= set(available_policies())
    with pytest.raises(ConfigError, match=r"available: .*movel_path, servo_stream, speed_track"):
        load_policy_class("no_such_policy")


# -- on a fake UR through the worker ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def ur(tmp_path_factory: pytest.TempPathFactory):
    with fake_ur_with_worker(tmp_path_factory.mktemp("procs"), "ur5") as pair:
        yield pair


def _follow(fake, worker, policy: str) -> tuple[Plan, np.ndarray]:
    plan = offset_plan(MODEL, np.array(fake.state()["q"]), CORNER_PATH, 2.0)
    fake.reset_log()
    result = run_plan(worker, plan, policy)
    assert result.outcome == "succeeded", result.reason
    _, tcp = fake.tcp_log()
    return plan, tcp


def _assert_follows(plan: Plan, tcp: np.ndarray, path_tolerance_m: float, end_tolerance_m: float) -> None:
    tracker = PathTracker(plan.positions)
    distances = np.array([tracker.locate(p)[1] for p in tcp])
    assert distances.max() < path_tolerance_m, f"left the path by {distances.max() * 1000:.1f} mm"
    assert np.linalg.norm(tcp[-1] - plan.positions[-1]) < end_tolerance_m
    assert tracker.locate(tcp[len(tcp) // 2])[0] > 0.2  # it really travelled along the path


@pytest.mark.integration
@pytest.mark.parametrize("policy", ["movel_path", "servo_stream", "speed_track"])
def test_policy_executes_a_plan_on_the_fake_ur(ur, policy: str) -> None:
    fake, worker = ur
    plan, tcp = _follow(fake, worker, policy)
    # moveL and speedL stay on the polyline; the servo's lag cuts the right-angle corner by ~2 mm.
    _assert_follows(plan, tcp, path_tolerance_m=0.004, end_tolerance_m=0.006)
    counts = fake.commands()["counts"]
    expected = {"movel_path": "MOVE_PATH", "servo_stream": "SERVOL", "speed_track": "SPEEDL"}[policy]
    assert counts.get(expected, 0) > 0, counts


@pytest.mark.integration
def test_servo_stream_uses_servoj_when_the_driver_offers_only_joints(procs) -> None:
    fake = start_fake_ur(procs, "ur5")
    worker = start_worker(fake, "ur5", driver_options={"command_kinds": ["servo_joints"]})
    try:
        plan, tcp = _follow(fake, worker, "servo_stream")
    finally:
        worker.close()
    _assert_follows(plan, tcp, path_tolerance_m=0.004, end_tolerance_m=0.006)
    counts = fake.commands()["counts"]
    assert counts.get("SERVOJ", 0) > 0 and counts.get("SERVOL", 0) == 0, counts


LAB_POLICY = '''
import numpy as np
from spatial_trace_ros.policies.base import ControlPolicy, PolicyStep, Setpoint


class JointLinePolicy(ControlPolicy):
    """A lab's own policy: joint-space interpolation between the plan's ends, streamed with servoJ."""

    name = "joint_line"
    requires = frozenset({"servo_joints"})

    def start(self, plan, state):
        self.plan, self.q0 = plan, np.asarray(state.q, float)

    def step(self, t_s, state):
        f = min(1.0, t_s / self.plan.duration_s)
        q = self.q0 + f * (self.plan.joints[-1] - self.q0)
        done = f >= 1.0 and np.max(np.abs(np.asarray(state.q) - self.plan.joints[-1])) < 1e-3
        return PolicyStep(Setpoint(kind="servo_joints", q=q), done=done, progress=f)
'''


@pytest.mark.integration
def test_a_labs_own_policy_registers_through_the_entry_point_group(procs, tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "my_lab_policy"
    package.mkdir()
    (package / "__init__.py").write_text(LAB_POLICY)
    dist = tmp_path / "my_lab_policy-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my_lab_policy\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[spatial_trace_ros.control_policies]\njoint_line = my_lab_policy:JointLinePolicy\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # the spawned worker inherits sys.path
    assert "joint_line" in available_policies()
    fake = start_fake_ur(procs, "ur5")
    worker = start_worker(fake, "ur5")
    try:
        plan = offset_plan(MODEL, np.array(fake.state()["q"]), [(0.0, 0.03, 0.0)], 1.0)
        result = run_plan(worker, plan, "joint_line")
    finally:
        worker.close()
    assert result.outcome == "succeeded", result.reason
    assert fake.commands()["counts"].get("SERVOJ", 0) > 0
    np.testing.assert_allclose(fake.state()["tcp_pose"][:3], plan.positions[-1], atol=2e-3)
