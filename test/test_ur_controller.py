"""The real-time worker (RtdeDriver on the real ur_rtde client, ExecutionLoop, guard, policies)
against the fake UR controller: stops, faults, refusals and dry runs, each checked on the fake arm."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from helpers.plans import offset_plan
from helpers.worker_runs import POLICY_OPTIONS, fake_ur_with_worker, relaxed_safety_file, run_plan, start_worker
from spatial_trace_ros.errors import RobotError
from spatial_trace_ros.policies.tracking import PathTracker
from spatial_trace_ros.robots.driver import driver_factory
from spatial_trace_ros.robots.model import make_robot_model
from spatial_trace_ros.testing.fake_ur.client import start_fake_ur
from spatial_trace_ros.testing.processes import wait_for

pytestmark = pytest.mark.integration
MODEL = make_robot_model("ur5")
LINE = [(0.08, 0.0, 0.0)]  # 8 cm along +x of the base frame


def _plan_from(fake, offsets=LINE, duration_s: float = 2.0, q_shift: float = 0.0):
    q = np.array(fake.state()["q"])
    q[0] += q_shift
    return offset_plan(MODEL, q, offsets, duration_s)


def _progress_above(fraction: float, action):
    def during(worker, event) -> bool:
        if event.progress >= fraction:
            action(worker)
            return True
        return False

    return during


def _at_rest(fake) -> dict:
    return fake.wait_until(lambda s: not s["moving"], 5.0, "the fake arm to come to rest")


@pytest.fixture(scope="module")
def ur(tmp_path_factory: pytest.TempPathFactory):
    """One fake and one worker for the tests that leave the robot usable."""
    with fake_ur_with_worker(tmp_path_factory.mktemp("procs"), "ur5") as pair:
        yield pair


def test_stop_request_mid_path_stops_the_arm_short_of_the_end(ur) -> None:
    fake, worker = ur
    plan = _plan_from(fake)
    fake.reset_log()
    result = run_plan(worker, plan, "servo_stream", during=_progress_above(0.3, lambda w: w.stop("test stop")))
    assert result.outcome == "stopped" and result.reason == "test stop"
    assert result.stop_sent_after_s is not None and result.stop_sent_after_s < 1.0
    state = _at_rest(fake)
    gap = np.linalg.norm(np.array(state["tcp_pose"][:3]) - plan.positions[-1])
    assert gap > 0.02, f"the arm went on to {gap:.3f} m from the end"
    names = [name for _, _, name in fake.commands()["transitions"]]
    assert "SERVOL" in names and names.index("SERVO_STOP") > names.index("SERVOL")


def test_guard_refuses_a_setpoint_outside_the_workspace(procs, tmp_path: Path) -> None:
    fake = start_fake_ur(procs, "ur5")
    x_limit = float(fake.state()["tcp_pose"][0]) + 0.03
    safety = relaxed_safety_file(tmp_path, workspace={"min_m": [-0.85, -0.85, 0.0], "max_m": [x_limit, 0.85, 1.0]})
    worker = start_worker(fake, "ur5", safety_file=safety)
    try:
        plan = _plan_from(fake)
        fake.reset_log()
        result = run_plan(worker, plan, "servo_stream")
    finally:
        worker.close()
    assert result.outcome == "aborted" and result.safety_reason is not None
    assert result.safety_reason.code == "OUTSIDE_WORKSPACE" and "workspace" in result.reason
    _at_rest(fake)
    _, tcp = fake.tcp_log()
    assert tcp[:, 0].max() < x_limit, "a refused setpoint reached the robot"


def test_plan_that_does_not_start_at_the_robot_is_refused(ur) -> None:
    fake, worker = ur
    before = fake.commands()["motion_packages"]
    result = run_plan(worker, _plan_from(fake, q_shift=0.2), "servo_stream")
    assert result.outcome == "aborted" and "plan starts 0.200 rad away" in result.reason
    assert fake.commands()["motion_packages"] == before


def test_dry_run_checks_everything_and_sends_no_motion(ur) -> None:
    fake, worker = ur
    q_before = fake.state()["q"]
    before = fake.commands()
    for policy in ("servo_stream", "movel_path", "speed_track"):
        result = run_plan(worker, _plan_from(fake), policy, dry_run=True)
        assert result.outcome == "succeeded" and result.reason.startswith("dry run, nothing sent"), result.reason
        assert result.setpoints_sent > 0
    after = fake.commands()
    assert after["motion_packages"] == before["motion_packages"]
    assert {k: v for k, v in after["counts"].items() if k != "NO_CMD"} == {
        k: v for k, v in before["counts"].items() if k != "NO_CMD"}
    np.testing.assert_allclose(fake.state()["q"], q_before, atol=1e-12)


def test_protective_stop_mid_path_aborts_and_is_reported(procs) -> None:
    fake = start_fake_ur(procs, "ur5")
    worker = start_worker(fake, "ur5")
    try:
        plan = _plan_from(fake)
        fake.inject("protective_stop", after_motion_s=0.5)
        result = run_plan(worker, plan, "speed_track")
    finally:
        worker.close()
    assert result.outcome == "aborted" and "protective stop" in result.reason
    state = fake.state()
    assert state["safety"] == "PROTECTIVE_STOP" and not state["moving"]
    assert PathTracker(plan.positions).locate(np.array(state["tcp_pose"][:3]))[0] < 0.9


def test_dropped_connection_is_detected_and_the_watchdog_stops_the_arm(procs) -> None:
    fake = start_fake_ur(procs, "ur5")
    worker = start_worker(fake, "ur5")
    try:
        plan = _plan_from(fake)
        fake.inject("drop_connection", after_motion_s=0.5)
        result = run_plan(worker, plan, "speed_track")
    finally:
        worker.close()
    assert result.outcome == "aborted" and "lost connection" in result.reason
    state = fake.wait_until(lambda s: s["watchdog_tripped"] and not s["moving"], 5.0, "the watchdog to stop the arm")
    assert state["offline"] and "watchdog" in state["program_error"]


def test_a_command_into_a_dropped_connection_says_so(procs) -> None:
    """ur_rtde tries to reconnect under the command, then fails or raises: either way a RobotError that
    names the lost connection, never a bare ur_rtde exception."""
    fake = start_fake_ur(procs, "ur5")
    driver = driver_factory("ur_rtde")(MODEL, robot_ip=fake.host)
    driver.connect()
    try:
        fake.inject("drop_connection")
        wait_for(lambda: fake.state()["offline"], 5.0, "the fake to drop its connections")
        with pytest.raises(RobotError, match="lost connection to the robot controller while sending speedL"):
            driver.speed_tcp(np.zeros(6), 0.5)
        assert driver.read_state().fault_reason() == "lost connection to the robot controller"
    finally:
        driver.disconnect()


def test_a_dead_realtime_loop_is_stopped_by_the_robot_watchdog(procs) -> None:
    fake = start_fake_ur(procs, "ur5")
    worker = start_worker(fake, "ur5")
    try:
        worker.execute(_plan_from(fake, duration_s=4.0), "speed_track", POLICY_OPTIONS, False)
        fake.wait_until(lambda s: s["moving"], 10.0, "the arm to move")
        os.kill(worker.pid, signal.SIGSEGV)  # the loop crashes mid-motion, leaving a speedL running
        wait_for(lambda: not worker.alive, 5.0, "the worker to die")
        failures = [e[1]["reason"] for e in worker.events() if isinstance(e, tuple) and e[0] == "failed"]
    finally:
        worker.close(timeout_s=1.0)
    assert len(failures) == 1 and "killed by SIGSEGV" in failures[0] and "watchdog stops the arm" in failures[0]
    state = fake.wait_until(lambda s: s["watchdog_tripped"] and not s["moving"], 5.0, "the watchdog to stop the arm")
    assert state["program"] == "STOPPED"


def test_policy_needing_a_command_the_driver_lacks_is_refused_before_motion(procs) -> None:
    fake = start_fake_ur(procs, "ur5")
    worker = start_worker(fake, "ur5", driver_options={"command_kinds": ["servo_joints"]})
    try:
        result = run_plan(worker, _plan_from(fake), "speed_track")
    finally:
        worker.close()
    assert result.outcome == "aborted" and "needs speed_tcp" in result.reason and "servo_joints" in result.reason
    assert fake.commands()["motion_packages"] == 0
    wait_for(lambda: not fake.state()["moving"], 1.0, "an arm at rest")


def test_a_frozen_controller_stops_the_run_within_a_few_periods(procs, tmp_path: Path) -> None:
    """The fake stopped with SIGSTOP, sockets open: before, setpoints went on for 2.5 s (ur_rtde's own
    timeout); now the RTDE timestamp that stops advancing ends the run (the time is in the benchmark)."""
    fake = start_fake_ur(procs, "ur5")
    # 6 periods (48 ms) instead of the default 3: the fake is a Python process on a shared machine.
    worker = start_worker(fake, "ur5", safety_file=relaxed_safety_file(tmp_path, runtime={"max_stale_periods": 6}))
    frozen: list[bool] = []

    def freeze(_worker) -> None:
        os.kill(fake.process.pid, signal.SIGSTOP)
        frozen.append(True)

    try:
        result = run_plan(worker, _plan_from(fake, duration_s=3.0), "servo_stream",
                          during=_progress_above(0.2, freeze))
    finally:
        os.kill(fake.process.pid, signal.SIGCONT)
        worker.close()
    assert frozen and result.outcome == "aborted" and result.progress >= 0.2
    assert "stopped advancing" in result.reason and "the controller froze" in result.reason


def test_a_path_move_that_never_starts_never_succeeds(procs) -> None:
    """A closed path (out and back) ends where it starts: an arm that never moved was at its end."""
    fake = start_fake_ur(procs, "ur5")
    worker = start_worker(fake, "ur5")
    fake.inject("stuck_arm")
    try:
        result = run_plan(worker, _plan_from(fake, offsets=[(0.06, 0.0, 0.0), (0.0, 0.0, 0.0)]), "movel_path")
    finally:
        worker.close()
    assert result.outcome == "aborted" and "never moved along the plan" in result.reason, result.reason


def test_an_arm_pushed_off_the_path_stops_the_run(procs) -> None:
    fake = start_fake_ur(procs, "ur5")
    worker = start_worker(fake, "ur5")
    fake.inject("displace", after_motion_s=0.5)
    try:
        result = run_plan(worker, _plan_from(fake, duration_s=3.0), "servo_stream")
    finally:
        worker.close()
    assert result.outcome == "aborted" and result.safety_reason is not None, result.reason
    assert result.safety_reason.code == "TRACKING_ERROR" and "plan's path" in result.reason


def test_without_the_rtde_watchdog_only_dry_runs_are_possible(procs) -> None:
    fake = start_fake_ur(procs, "ur5")
    worker = start_worker(fake, "ur5", driver_options={"watchdog_min_hz": 0.0})
    try:
        rehearsal = run_plan(worker, _plan_from(fake), "servo_stream", dry_run=True)
        real = run_plan(worker, _plan_from(fake), "servo_stream")
    finally:
        worker.close()
    assert rehearsal.outcome == "succeeded", rehearsal.reason
    assert real.outcome == "aborted" and "watchdog is off" in real.reason
    assert fake.commands()["motion_packages"] == 0
