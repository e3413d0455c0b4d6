"""controller_node end to end: a fake UR, the node in its own process (real rclpy, real ur_rtde in its
real-time worker), driven like an operator would: plan topic, approval, ~/execute, e-stop, ``ros2 param set``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray

from helpers.controller_operator import Operator
from helpers.plans import offset_plan
from helpers.worker_runs import relaxed_safety_file
from spatial_trace_ros.robots.model import make_robot_model
from spatial_trace_ros.testing.fake_ur.client import FakeUrClient, start_fake_ur
from spatial_trace_ros.testing.processes import ManagedProcess

pytestmark = pytest.mark.integration
MODEL = make_robot_model("ur5")


def start_node(procs, ros_env, tmp_path: Path, fake: FakeUrClient, **params) -> ManagedProcess:
    values = {"robot": "ur5", "robot_ip": fake.host, "driver_options_json": json.dumps({"watchdog_min_hz": 5.0}),
              "safety_file": relaxed_safety_file(tmp_path), **params}
    params_file = tmp_path / "controller.yaml"
    params_file.write_text(yaml.safe_dump({"controller_node": {"ros__parameters": values}}))
    return procs.start_python("controller_node", "spatial_trace_ros.nodes.controller_node",
                              ["--ros-args", "--params-file", str(params_file)], env=ros_env)


def _plan(fake: FakeUrClient, duration_s: float = 3.0):
    return offset_plan(MODEL, np.array(fake.state()["q"]), [(0.08, 0.0, 0.0)], duration_s, trapezoid=True)


def test_execute_swap_refusals_and_estop_mid_path(procs, ros_env, harness, tmp_path: Path) -> None:
    fake = start_fake_ur(procs, "ur5")
    op = Operator(harness)
    start_node(procs, ros_env, tmp_path, fake)
    op.wait_connected()

    unknown = op.set_param("control_policy", "teleport")
    assert not unknown.successful
    assert "unknown control_policy 'teleport'; available: movel_path, servo_stream, speed_track" in unknown.reason

    plan = _plan(fake)
    op.send_plan(plan)
    op.wait_status(lambda s: s["state"] == "waiting_for_execute", "the plan to be held")
    assert fake.commands()["motion_packages"] == 0  # nothing moves before ~/execute
    started = op.approve_and_execute(plan)
    assert started.success, started.message
    op.wait_status(lambda s: s["state"] == "executing" and s["progress"] > 0.25, "a quarter of the plan")

    swap = op.set_param("control_policy", "movel_path")
    assert not swap.successful and "while plan" in swap.reason and "servo_stream" in swap.reason

    op.estop(True)
    final = op.wait_status(lambda s: s["state"] == "stopped", "the e-stop to stop the run")
    assert "e-stop" in final["reason"]
    state = fake.wait_until(lambda s: not s["moving"], 5.0, "the arm to stop")
    assert np.linalg.norm(np.array(state["tcp_pose"][:3]) - plan.positions[-1]) > 0.02
    assert "SERVO_STOP" in fake.commands()["counts"]

    refused = op.call("execute")
    assert not refused.success and "e-stop is engaged" in refused.message
    op.estop(False)  # no longer a release: only ~/reset_estop with a note is
    no_note = op.call("reset_estop")
    assert not no_note.success and "estop_reset_note" in no_note.message
    assert not op.call("execute").success
    assert op.set_param("estop_reset_note", "test operator: arm checked after the stop").successful
    released = op.call("reset_estop")
    assert released.success and "test operator" in released.message, released.message
    op.wait_status(lambda s: "released" in s["reason"], "the e-stop release")
    swap = op.set_param("control_policy", "movel_path")
    assert swap.successful, swap.reason
    op.wait_status(lambda s: s["policy"] == "movel_path", "the new policy in the status")

    assert op.joint_states and list(op.joint_states[-1].name) == list(MODEL.joint_names)
    np.testing.assert_allclose(op.joint_states[-1].position, fake.state()["q"], atol=1e-3)
    names = {s.name for msg in op.diagnostics for s in msg.status}
    assert "spatial_trace/controller" in names


def test_protective_stop_mid_path_aborts_and_is_reported(procs, ros_env, harness, tmp_path: Path) -> None:
    fake = start_fake_ur(procs, "ur5")
    op = Operator(harness)
    start_node(procs, ros_env, tmp_path, fake, control_policy="movel_path")
    op.wait_connected()
    fake.inject("protective_stop", after_motion_s=0.5)
    plan = _plan(fake)
    op.send_plan(plan)
    assert op.approve_and_execute(plan).success
    final = op.wait_status(lambda s: s["state"] == "aborted", "the run to abort")
    assert "protective stop" in final["reason"]
    assert fake.state()["safety"] == "PROTECTIVE_STOP"

    def controller_error(msg: DiagnosticArray) -> bool:
        return any(s.name == "spatial_trace/controller" and s.level == s.ERROR for s in msg.status)

    harness.wait(lambda: any(controller_error(m) for m in op.diagnostics), 5.0, "an ERROR diagnostic")


def test_dropped_connection_is_detected_and_reported(procs, ros_env, harness, tmp_path: Path) -> None:
    fake = start_fake_ur(procs, "ur5")
    op = Operator(harness)
    start_node(procs, ros_env, tmp_path, fake, control_policy="speed_track")
    op.wait_connected()
    fake.inject("drop_connection", after_motion_s=0.5)
    plan = _plan(fake)
    op.send_plan(plan)
    assert op.approve_and_execute(plan).success
    final = op.wait_status(lambda s: s["state"] == "aborted", "the run to abort")
    # The RTDE stream stops before the socket is seen closed: either one may be noticed first.
    assert "lost connection" in final["reason"] or "stopped advancing" in final["reason"], final["reason"]

    def not_connected(msg: DiagnosticArray) -> bool:
        return any(s.name == "spatial_trace/controller" and s.level == s.ERROR and "not connected" in s.message
                   for s in msg.status)

    harness.wait(lambda: any(not_connected(m) for m in op.diagnostics), 5.0, "a 'not connected' diagnostic")
    fake.wait_until(lambda s: s["watchdog_tripped"] and not s["moving"], 5.0, "the watchdog to stop the arm")


def test_dry_run_with_auto_execute_never_sends_motion(procs, ros_env, harness, tmp_path: Path) -> None:
    fake = start_fake_ur(procs, "ur5")
    op = Operator(harness)
    start_node(procs, ros_env, tmp_path, fake, dry_run=True, auto_execute=True)
    op.wait_connected()
    q_before = fake.state()["q"]
    op.send_plan(_plan(fake, duration_s=1.0))
    final = op.wait_status(lambda s: s["state"] == "succeeded", "the dry run to finish")
    assert final["reason"].startswith("dry run, nothing sent to the robot")
    assert fake.commands()["motion_packages"] == 0
    np.testing.assert_allclose(fake.state()["q"], q_before, atol=1e-12)


def _diagnostic(op: Operator, predicate) -> bool:
    return any(s.name == "spatial_trace/controller" and predicate(s) for m in op.diagnostics for s in m.status)


def test_estop_latch_survives_a_restart(procs, ros_env, harness, tmp_path: Path) -> None:
    """A restarted controller comes back with the e-stop engaged, says so, and executes nothing."""
    fake = start_fake_ur(procs, "ur5")
    op = Operator(harness)
    node = start_node(procs, ros_env, tmp_path, fake)
    op.wait_connected()
    op.estop(True)
    op.wait_status(lambda s: "e-stop engaged" in s["reason"], "the e-stop to latch")
    node.stop()
    op.statuses.clear()
    start_node(procs, ros_env, tmp_path, fake)
    # Only the new node has published since the clear: it names the e-stop engaged before its start.
    op.wait_status(lambda s: "e-stop engaged by /spatial_trace/estop" in s["reason"],
                   "the restarted node to report the latch")
    op.send_plan(_plan(fake))
    refused = op.call("execute")
    assert not refused.success and "e-stop is engaged" in refused.message
    assert fake.commands()["motion_packages"] == 0
    harness.wait(lambda: _diagnostic(op, lambda s: s.level == s.ERROR and "e-stop engaged" in s.message), 5.0,
                 "an ERROR diagnostic naming the e-stop")


def test_protective_stop_shows_in_diagnostics_and_recovers_without_a_restart(
        procs, ros_env, harness, tmp_path: Path) -> None:
    fake = start_fake_ur(procs, "ur5")
    op = Operator(harness)
    start_node(procs, ros_env, tmp_path, fake)
    op.wait_connected()
    fake.inject("protective_stop")  # while idle: no run's outcome to show it
    harness.wait(lambda: _diagnostic(op, lambda s: s.level == s.ERROR and "protective stop" in s.message), 10.0,
                 "an ERROR diagnostic naming the protective stop")
    uploads = fake.state()["script_uploads"]
    recovered = op.call("recover")
    assert recovered.success and "protective stop unlocked" in recovered.message, recovered.message
    state = fake.state()
    assert state["safety"] == "NORMAL" and state["program"] == "PLAYING" and state["script_uploads"] == uploads + 1
    op.diagnostics.clear()
    harness.wait(lambda: _diagnostic(op, lambda s: s.level == s.OK), 10.0, "diagnostics back to OK")
    plan = _plan(fake, duration_s=1.0)
    op.send_plan(plan)
    op.wait_status(lambda s: s["state"] == "waiting_for_execute", "the plan to be held")
    executed = op.approve_and_execute(plan)
    assert executed.success, executed.message
    op.wait_status(lambda s: s["state"] == "succeeded", "the run after the recovery")
