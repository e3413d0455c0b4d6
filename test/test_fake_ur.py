"""The fake UR controller against the real ur_rtde client (RTDEControlInterface,
RTDEReceiveInterface, DashboardClient), each side in its own process: motions move the fake arm as
commanded, and injected faults reach the client the way a real controller reports them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spatial_trace_ros.testing.fake_ur.client import FakeUrClient, start_fake_ur

pytestmark = pytest.mark.integration
TEST_DIR = os.path.dirname(os.path.abspath(__file__))


def run_probe(fake: FakeUrClient, scenario: str, timeout_s: float = 40.0, crash_after: str = "") -> dict:
    """The probe process drives the fake with ur_rtde; a hung client fails the test by timeout.

    ``crash_after``: ur_rtde (1.6) sometimes segfaults while it reconnects under a command sent into a
    connection that just dropped; a crash after the client printed this text is returned as
    ``{"client_crashed_after": text}``, any other crash fails the test."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TEST_DIR, os.environ.get("PYTHONPATH", "")]))
    try:
        done = subprocess.run([sys.executable, "-m", "helpers.ur_rtde_probe", fake.host, scenario],
                              capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"ur_rtde probe {scenario!r} hung for {timeout_s} s:\n{err.stdout}\n{err.stderr}")
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    if crash_after and done.returncode == -signal.SIGSEGV and crash_after in done.stdout + done.stderr:
        return {"client_crashed_after": crash_after}
    pytest.fail(f"ur_rtde probe {scenario!r} failed (rc {done.returncode}):\n{done.stdout}\n{done.stderr}")


def test_real_client_commands_move_the_fake_arm(procs) -> None:
    fake = start_fake_ur(procs, "ur5")
    out = run_probe(fake, "motions")
    assert out["movel_ok"]
    np.testing.assert_allclose(out["after_movel"][:3], out["movel_target"][:3], atol=1e-3)
    # servoL target moving at 5 cm/s for 0.6 s; the first-order lag keeps the arm a little behind.
    assert out["servo_stop_ok"] and 0.015 < out["servo_dx"] < 0.031
    # speedL at 4 cm/s for 0.5 s (0.08 s ramp at 0.5 m/s^2), then a 2 m/s^2 stop.
    assert out["speed_stop_ok"] and 0.012 < out["speed_dy"] < 0.021
    # The async path reports its waypoints through the async progress register, then finishes.
    assert out["path_ok"] and {0, 1, 2}.issubset(out["path_progress"]) and out["path_progress"][0] < 0
    np.testing.assert_allclose(out["path_end"][:3], out["path_target"][:3], atol=1e-3)
    counts = fake.commands()["counts"]
    for name in ("MOVEL", "SERVOL", "SERVO_STOP", "SPEEDL", "SPEED_STOP", "MOVE_PATH"):
        assert counts.get(name, 0) > 0, f"{name} never reached the fake: {counts}"
    state = fake.state()
    assert state["program"] == "PLAYING" and not state["moving"] and state["safety"] == "NORMAL"


def test_the_driver_turns_freedrive_on_and_off(procs) -> None:
    fake = start_fake_ur(procs, "ur5")
    assert run_probe(fake, "freedrive") == {"ok_in_freedrive": True, "ok_after": True}
    counts = fake.commands()["counts"]
    assert counts.get("TEACH_MODE") == 1 and counts.get("END_TEACH_MODE") == 1, counts


def test_protective_stop_mid_motion_halts_and_reaches_the_client(procs) -> None:
    fake = start_fake_ur(procs, "ur5")
    fake.inject("protective_stop", after_motion_s=0.3)
    out = run_probe(fake, "servo_until_fault")
    assert out["protective"] and not out["emergency"]
    assert out["safety_status_bits"] & (1 << 2)
    assert out["servo_rejected"] and not out["program_running"]
    state = fake.state()
    assert state["safety"] == "PROTECTIVE_STOP" and state["program"] == "PAUSED" and not state["moving"]


def test_emergency_stop_mid_motion_stops_the_program(procs) -> None:
    fake = start_fake_ur(procs, "ur5")
    fake.inject("emergency_stop", after_motion_s=0.3)
    out = run_probe(fake, "servo_until_fault")
    assert out["emergency"] and out["safety_status_bits"] & (1 << 7)
    assert out["servo_rejected"] and not out["program_running"]
    state = fake.state()
    assert state["safety"] == "ROBOT_EMERGENCY_STOP" and state["program"] == "STOPPED" and not state["moving"]


def test_dropped_connection_is_seen_by_the_client(procs) -> None:
    fake = start_fake_ur(procs, "ur5")
    fake.inject("drop_connection", after_motion_s=0.3)
    out = run_probe(fake, "servo_until_fault", crash_after="Lost connection to robot")
    seen = "client_crashed_after" in out or (
        "disconnected_after_s" in out and not (out["control_connected"] and out["receive_connected"]))
    assert seen, out
    assert fake.state()["offline"]
    fake.clear()
    assert not fake.state()["offline"]


def test_watchdog_stops_the_program_when_kicks_stop(procs) -> None:
    fake = start_fake_ur(procs, "ur5")
    out = run_probe(fake, "watchdog")
    assert out["set_ok"] and out["running_while_kicked"]
    assert not out["running_after_silence"] and out["runtime_state"] == 1  # STOPPED
    state = fake.state()
    assert state["watchdog_tripped"] and "watchdog" in state["program_error"]


def test_dashboard_answers_what_ur_rtde_asks(procs) -> None:
    fake = start_fake_ur(procs, "ur5e")
    fake.inject("protective_stop")
    out = run_probe(fake, "dashboard")
    assert out["version"] == "5.11.1.108318" and out["remote"] and out["serial"].isdigit()
    assert out["safety_stopped"] == "Safetystatus: PROTECTIVE_STOP"
    assert "until 5s after" in out["early_unlock"]
    assert out["safety_after"] == "Safetystatus: NORMAL"
    assert fake.state()["safety"] == "NORMAL"


def test_input_registers_held_by_one_client_are_in_use_for_another(procs) -> None:
    fake = start_fake_ur(procs, "ur5")
    out = run_probe(fake, "second_controller")
    assert "already in use" in out["second_refused"] and out["first_running"]


@pytest.mark.parametrize("robot", ["ur5", "ur5e"])
def test_the_fake_has_its_own_kinematics_that_agree_with_the_product(robot: str) -> None:
    """The fake computes its TCP from its own DH table and code (not the product's RobotModel), so a
    run that follows the plan on the fake is not the product agreeing with itself."""
    from spatial_trace_ros.robots.model import make_robot_model
    from spatial_trace_ros.testing.fake_ur import arm, kinematics, server

    for module in (arm, kinematics, server):
        assert "robots.model" not in Path(module.__file__).read_text().replace("``RobotModel``", "")
    fake, product = kinematics.FakeArmKinematics(robot), make_robot_model(robot)
    rng = np.random.default_rng(7)
    for q in rng.uniform(-np.pi, np.pi, (50, 6)):
        np.testing.assert_allclose(fake.fk(q), product.fk(q), atol=1e-12)
        np.testing.assert_allclose(fake.jacobian(q), product.jacobian(q), atol=1e-12)
        near = q + rng.normal(0.0, 0.02, 6)
        solved = fake.ik(product.fk(near), q)
        if solved is not None:
            np.testing.assert_allclose(fake.fk(solved), product.fk(near), atol=1e-9)
