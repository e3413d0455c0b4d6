"""The G1 arm driver against the fake G1 over real Cyclone DDS on loopback (one DDS domain per test).

The driver runs in the test process; the fake G1 in its own process checks every command's CRC,
blends by the arm_sdk weight and publishes rt/lowstate at 500 Hz. Plans come from the real planner
with the G1 model, the head-camera calibration and config/safety.g1.yaml.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cyclonedds", reason="the G1 DDS layer is the optional [g1] extra")

from cyclonedds.pub import DataWriter
from cyclonedds.topic import Topic

from helpers.g1_plans import MODEL, READY, READY_Q, REPO, arc_plan, distance_to_polyline, planner, trace_from_base
from spatial_trace_ros.errors import RobotError, SafetyError
from spatial_trace_ros.planning.plan import Plan, Verdict
from spatial_trace_ros.planning.safety import SetpointGuard
from spatial_trace_ros.planning.safety_config import load_safety_config
from spatial_trace_ros.policies.base import load_policy_class
from spatial_trace_ros.robots.driver import driver_factory
from spatial_trace_ros.robots.execution import ExecutionLoop, ExecutionResult, PeriodReport, StopSignal
from spatial_trace_ros.robots.g1 import idl
from spatial_trace_ros.robots.g1.config import load_g1_config
from spatial_trace_ros.robots.g1.crc import low_cmd_crc
from spatial_trace_ros.robots.g1.driver import G1ArmDriver
from spatial_trace_ros.robots.g1.motors import ARM_SDK_JOINTS, LEFT_ARM_JOINTS, MOTOR_SLOT
from spatial_trace_ros.testing.fake_g1 import FakeG1Process
from spatial_trace_ros.testing.processes import ProcessGroup, wait_for

pytestmark = pytest.mark.timeout(60)

ARM = [ARM_SDK_JOINTS.index(n) for n in LEFT_ARM_JOINTS]
RAMP_S = 0.5
WEIGHT_STEP = 0.02 / RAMP_S  # per 50 Hz period
_used_domains: set[int] = set()


@pytest.fixture
def domain_id() -> int:
    """A DDS domain of this test's own (the ROS tests use 10-99)."""
    rng = random.SystemRandom()
    while (d := rng.randint(100, 229)) in _used_domains:
        pass
    _used_domains.add(d)
    return d


@pytest.fixture
def fake(procs: ProcessGroup, tmp_path: Path, domain_id: int) -> FakeG1Process:
    return FakeG1Process(procs, tmp_path, domain_id, q0=READY)


def make_driver(domain_id: int, **options: float) -> G1ArmDriver:
    # A 2 s silence limit: the fake's publisher may starve for a second on two busy cores.
    settings = {"network_interface": "lo", "dds_domain_id": domain_id, "weight_ramp_s": RAMP_S,
                "lowstate_timeout_s": 2.0, "connect_timeout_s": 5.0, **options}
    return driver_factory("g1_arm_sdk")(MODEL, **settings)


@pytest.fixture
def driver(fake: FakeG1Process, domain_id: int) -> Iterator[G1ArmDriver]:
    d = make_driver(domain_id)
    d.connect()
    d.prepare_motion()
    try:
        yield d
    finally:
        d.disconnect()


def guard() -> SetpointGuard:
    """The run-time guard with config/safety.g1.yaml; the speed allowance at its maximum, because the
    loop judges setpoint speed over the nominal period and a shared CI machine delays periods."""
    config = load_safety_config(REPO / "config" / "safety.g1.yaml")
    # Staleness after 10 periods (200 ms), not 3: the fake is a Python publisher on a shared machine.
    runtime = config.runtime.model_copy(update={"speed_tolerance": 0.5, "max_stale_periods": 10})
    return SetpointGuard(config.model_copy(update={"runtime": runtime}), MODEL)


def run_plan(driver: G1ArmDriver, plan: Plan) -> ExecutionResult:
    """The controller's execution loop with the servo_stream policy (joint space on the G1) and the guard."""
    policy = load_policy_class("servo_stream")(MODEL, period_s=driver.period_s, driver_supports=driver.supports)
    return ExecutionLoop(driver, policy, guard()).run(plan)


def test_plan_on_fake_follows_waypoints(fake: FakeG1Process, driver: G1ArmDriver) -> None:
    for run in range(2):
        state = driver.read_state()
        assert state.ok
        plan = arc_plan(state.q)
        assert plan.report.verdict is Verdict.ACCEPT
        result = run_plan(driver, plan)
        assert result.succeeded, result.reason
        path = result.tcp_positions_m
        for i, waypoint in enumerate(plan.positions):
            gap = distance_to_polyline(waypoint, path)
            assert gap < 0.005, f"run {run}: waypoint #{i} missed by {gap * 1000:.1f} mm"
        assert path[-1] == pytest.approx(plan.positions[-1], abs=0.01)
        # The loop's stop at the end handed the arm back; the next run takes it over again.
        assert driver.wait_released(RAMP_S + 1.0)
        with pytest.raises(RobotError, match="prepare_motion"):
            driver.servo_joints(state.q)
        driver.prepare_motion()
    status = fake.status()
    assert status["bad_crc"] == 0 and status["commands"] > 80


def test_weight_ramps_in_and_out_without_a_jump(fake: FakeG1Process, domain_id: int) -> None:
    d = make_driver(domain_id)
    d.connect()
    d.prepare_motion()
    assert d.read_state().ready
    time.sleep(0.2)
    d.disconnect()
    wait_for(lambda: fake.status()["weight"] == 0.0, 2.0, "the fake to see weight 0")
    rows = fake.commands()
    weights, q = rows[:, 1], rows[:, 2:]
    peak = int(np.argmax(weights))
    assert weights[0] <= 2 * WEIGHT_STEP + 1e-6 and weights[peak] == pytest.approx(1.0)
    assert weights[-1] == 0.0 and fake.status()["bad_crc"] == 0
    steps = np.diff(weights)
    assert np.all(steps[:peak] > 0) and np.all(steps[peak:] <= 1e-9)  # up, hold, down: monotonic
    assert np.abs(steps).max() <= WEIGHT_STEP + 1e-6
    take_over_pose = np.array([fake.status()["commanded_q"][MOTOR_SLOT[n]] for n in ARM_SDK_JOINTS])
    assert np.abs(q - take_over_pose).max() < 1e-6  # the command never left the pose it took over at
    assert np.array(fake.status()["q"])[[MOTOR_SLOT[n] for n in LEFT_ARM_JOINTS]] == pytest.approx(READY_Q, abs=1e-3)


def run_plan_in_background(driver: G1ArmDriver, plan: Plan, stop: StopSignal) -> tuple[threading.Thread, list]:
    policy = load_policy_class("servo_stream")(MODEL, period_s=driver.period_s, driver_supports=driver.supports)
    loop = ExecutionLoop(driver, policy, guard(), stop_signal=stop)
    results: list[ExecutionResult] = []
    thread = threading.Thread(target=lambda: results.append(loop.run(plan)), daemon=True)
    thread.start()
    return thread, results


def test_estop_mid_motion_holds_and_releases(fake: FakeG1Process, driver: G1ArmDriver) -> None:
    plan = arc_plan(driver.read_state().q)
    stop = StopSignal()
    thread, results = run_plan_in_background(driver, plan, stop)
    time.sleep(0.5 * plan.duration_s)
    stop.request("e-stop")  # what the controller does on /spatial_trace/estop
    thread.join(5.0)
    assert results and results[0].outcome == "stopped" and results[0].reason == "e-stop"
    with pytest.raises(RobotError, match="releas"):
        driver.servo_joints(plan.joints[-1])
    measured = []
    t_stop = time.monotonic()
    while not driver.wait_released(0.0) and time.monotonic() - t_stop < 3.0:
        measured.append(driver.read_state().q)
        time.sleep(0.02)
    assert driver.wait_released(1.0)
    wait_for(lambda: fake.status()["weight"] == 0.0, 2.0, "the fake to see weight 0")
    rows = fake.commands()
    after = rows[np.flatnonzero(rows[:, 1] == 1.0)[-1]:]  # from the last full-weight command: the ramp down
    held = after[:, 2:]
    assert np.abs(held - held[0]).max() < 1e-6  # holding one pose while releasing
    assert np.abs(held[0, ARM] - READY_Q).max() > 0.05  # ...the one it had moved to, mid-path
    assert after[-1, 1] == 0.0 and np.diff(after[:, 1]).max() <= 1e-9
    moves = np.abs(np.diff(np.array(measured), axis=0)).max()
    assert moves < 0.05  # the arm glides back to the robot's own pose, no jump


def test_silent_lowstate_aborts_and_releases(fake: FakeG1Process, driver: G1ArmDriver) -> None:
    plan = arc_plan(driver.read_state().q)
    thread, results = run_plan_in_background(driver, plan, StopSignal())
    time.sleep(0.3 * plan.duration_s)
    fake.go_silent()
    thread.join(10.0)
    assert results and results[0].outcome == "aborted"
    # The loop sees the tick stop before the driver's silence limit: either reason stops the run.
    assert any(why in results[0].reason for why in ("connection", "rt/lowstate", "stopped advancing"))
    wait_for(lambda: not driver.read_state().connected, 5.0, "the driver to see the silence")
    assert not driver.read_state().ok
    with pytest.raises(RobotError):  # released (or faulted): nothing is taken until prepare_motion
        driver.servo_joints(plan.joints[0])
    assert driver.wait_released(RAMP_S + 1.0)
    wait_for(lambda: fake.status()["weight"] == 0.0, 2.0, "the fake to see weight 0")
    fake.speak_again()
    driver.prepare_motion()  # takes over again once the robot talks
    assert driver.read_state().ok


def test_joint_pushed_outside_its_limits_faults(procs: ProcessGroup, tmp_path: Path, domain_id: int) -> None:
    fake = FakeG1Process(procs, tmp_path, domain_id, q0=READY, shove=("left_elbow_joint", 0.5))
    limits = dict(load_g1_config().joint_limits_rad)
    limits["left_elbow_joint"] = (-1.0, 0.0)  # tighter than the URDF; the arm rests at -0.3
    d = make_driver(domain_id, joint_limits_rad=limits)  # type: ignore[arg-type]
    d.connect()
    d.prepare_motion()
    try:
        fake.shove()  # someone pushes the elbow to +0.2 rad
        wait_for(lambda: d.read_state().fault, 5.0, "the limit fault")
        assert "left_elbow_joint is at 0.2" in d.read_state().fault
        assert d.wait_released(RAMP_S + 1.0)
    finally:
        d.disconnect()


def test_corrupted_crc_command_is_detected_by_the_fake(fake: FakeG1Process, domain_id: int) -> None:
    participant = idl.join_domain(domain_id, "lo")
    writer = DataWriter(participant, Topic(participant, idl.ARM_SDK_TOPIC, idl.LowCmd_))
    msg = idl.LowCmd_()
    msg.motor_cmd[MOTOR_SLOT["left_elbow_joint"]].q = 1.0
    msg.motor_cmd[MOTOR_SLOT["left_elbow_joint"]].kp = 60.0
    msg.motor_cmd[29].q = 1.0  # would take over at once: must never be applied
    msg.crc = low_cmd_crc(msg) ^ 0x1
    wait_for(lambda: writer.write(msg) or fake.status()["bad_crc"] >= 1, 10.0, "the fake to count a bad CRC")
    status = fake.status()
    assert status["commands"] == 0 and status["weight"] == 0.0
    msg.motor_cmd[29].q = 0.0
    msg.crc = low_cmd_crc(msg)
    wait_for(lambda: writer.write(msg) or fake.status()["commands"] >= 1, 10.0, "the fake to accept a good one")
    assert fake.status()["weight"] == 0.0


def test_target_out_of_reach_is_refused_before_any_command(fake: FakeG1Process, driver: G1ArmDriver) -> None:
    q_now = driver.read_state().q
    far = MODEL.fk(q_now)[:3, 3] + np.linspace([0.0, 0.0, 0.0], [0.6, 0.0, 0.0], 10)
    plan, report = planner().plan(trace_from_base(far), q_now, now_s=time.time())
    assert plan is None and report.verdict is Verdict.REJECT
    assert "UNREACHABLE" in [r.code for r in report.reasons]
    with pytest.raises(SafetyError, match="outside its limits"):
        driver.servo_joints(READY_Q + np.array([0, 0, 0, 3.0, 0, 0, 0]))
    time.sleep(0.1)
    commanded = fake.commands()[:, 2:][:, ARM]
    assert np.abs(commanded - READY_Q).max() < 1e-6  # nothing but the held pose was ever sent


def test_take_over_refused_when_the_arm_is_outside_its_limits(
    procs: ProcessGroup, tmp_path: Path, domain_id: int
) -> None:
    fake = FakeG1Process(procs, tmp_path, domain_id, q0={**READY, "left_elbow_joint": 2.3})
    d = make_driver(domain_id)
    d.connect()
    with pytest.raises(RobotError, match=r"not taking over.*left_elbow_joint is at 2\.300"):
        d.prepare_motion()
    d.disconnect()
    time.sleep(0.1)
    assert fake.status()["commands"] == 0


def test_connect_without_a_robot_says_what_to_check(domain_id: int) -> None:
    d = make_driver(domain_id, connect_timeout_s=0.5)
    with pytest.raises(RobotError, match=r"no rt/lowstate from the G1 within 0\.5 s.*Nothing was sent"):
        d.connect()
    assert d.read_state().connected is False
    d.disconnect()
    assert d.stats.extra.get("commands_sent", 0) == 0


def test_lowstate_failing_its_crc_is_never_used(procs: ProcessGroup, tmp_path: Path, domain_id: int) -> None:
    fake = FakeG1Process(procs, tmp_path, domain_id, q0=READY, corrupt_lowstate_every=1)
    d = make_driver(domain_id, connect_timeout_s=1.0)
    with pytest.raises(RobotError, match=r"no rt/lowstate.*Nothing was sent; \d+ rt/lowstate samples failed "
                                         r"their crc check.*check_lowstate_crc: false"):
        d.connect()
    assert d.stats.extra.get("commands_sent", 0) == 0 and d.read_state().connected is False
    d.disconnect()
    assert fake.status()["commands"] == 0


def test_corrupted_lowstate_samples_are_dropped_and_counted(
    procs: ProcessGroup, tmp_path: Path, domain_id: int
) -> None:
    fake = FakeG1Process(procs, tmp_path, domain_id, q0=READY, corrupt_lowstate_every=2)
    d = make_driver(domain_id)
    d.connect()
    d.prepare_motion()
    try:
        wait_for(lambda: d.read_state() and d.stats.extra["lowstate_bad_crc"] > 5, 5.0, "dropped samples")
        state = d.read_state()
        assert state.ok and not state.fault
        np.testing.assert_allclose(state.q, READY_Q, atol=1e-3)
    finally:
        d.disconnect()
    assert fake.status()["commands"] > 0


def test_crc_check_can_be_switched_off_for_firmware_without_one(
    procs: ProcessGroup, tmp_path: Path, domain_id: int
) -> None:
    FakeG1Process(procs, tmp_path, domain_id, q0=READY, corrupt_lowstate_every=1)
    d = make_driver(domain_id, check_lowstate_crc=False)
    d.connect()
    try:
        assert d.read_state().ok and d.stats.extra["lowstate_bad_crc"] == 0
    finally:
        d.disconnect()


def test_connecting_listens_and_never_takes_the_arm(fake: FakeG1Process, domain_id: int) -> None:
    """A (re)connect only listens: the arm is taken over at the start of a run the operator asked for."""
    d = make_driver(domain_id)
    d.connect()
    try:
        assert d.read_state().ok
        time.sleep(0.3)
        assert fake.status()["commands"] == 0 and fake.status()["weight"] == 0.0
        d.prepare_motion()
        wait_for(lambda: fake.status()["weight"] == 1.0, 5.0, "the take-over at the run's start")
    finally:
        d.disconnect()


def test_a_robot_whose_state_stops_advancing_stops_the_run(fake: FakeG1Process, driver: G1ArmDriver) -> None:
    """rt/lowstate keeps coming with the same tick: the robot is not silent, its state is frozen."""
    plan = arc_plan(driver.read_state().q)
    policy = load_policy_class("servo_stream")(MODEL, period_s=driver.period_s, driver_supports=driver.supports)
    frozen: list[bool] = []

    def freeze_once(period: PeriodReport) -> None:
        if period.progress > 0.2 and not frozen:
            fake.freeze()
            frozen.append(True)

    result = ExecutionLoop(driver, policy, guard(), on_period=freeze_once).run(plan)
    assert frozen
    assert result.outcome == "aborted" and "stopped advancing" in result.reason, result.reason
    assert driver.wait_released(RAMP_S + 1.0)
