"""The simulated arm behind the RobotDriver contract: it follows every command kind, stops, and
reports injected faults the way a real controller does."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from spatial_trace_ros.errors import ConfigError, RobotError
from spatial_trace_ros.robots.driver import MovePathCommand, driver_factory
from spatial_trace_ros.robots.model import make_robot_model
from spatial_trace_ros.sim.robot import SimRobotDriver
from spatial_trace_ros.sim.world import World, WorldConfig


def _driver(robot: str = "ur5e", **options: object) -> SimRobotDriver:
    model = make_robot_model(robot)
    driver = SimRobotDriver(model, world=World(WorldConfig(robot=robot)), real_time=False, **options)
    driver.connect()
    return driver


def _run(driver: SimRobotDriver, periods: int) -> None:
    for _ in range(periods):
        driver.wait_period(driver.start_period())


@pytest.mark.parametrize("robot", ["ur5e", "ur5"])
def test_follows_joint_setpoints(robot: str) -> None:
    driver = _driver(robot)
    q0 = driver.read_state().q
    errors = []
    n = int(2.0 / driver.period_s)
    for k in range(n):
        target = q0 + 0.3 * np.sin(np.pi * k * driver.period_s) * np.array([1, 1, -1, 1, 1, 1])
        driver.servo_joints(target)
        driver.wait_period(driver.start_period())
        errors.append(np.abs(driver.read_state().q - target).max())
    # Within a few periods of lag at ~0.9 rad/s, and settled at the end.
    assert max(errors) < 0.01
    _run(driver, int(0.5 / driver.period_s))
    np.testing.assert_allclose(driver.read_state().q, target, atol=1e-4)
    assert driver.stats.extra["saturated_commands"] == 0


def test_joint_speed_is_limited_like_the_real_arm() -> None:
    driver = _driver()
    q0 = driver.read_state().q
    driver.servo_joints(q0 + np.array([1.0, 0, 0, 0, 0, 0]))  # 1 rad in one 2 ms period
    _run(driver, 1)
    assert driver.stats.extra["saturated_commands"] == 1
    assert abs(driver.read_state().q[0] - q0[0]) < np.pi * driver.period_s * 1.5


def test_servo_pose_reaches_the_pose_through_the_models_ik() -> None:
    driver = _driver()
    start = driver.read_state().tcp
    for k in range(1, 251):  # 10 cm along y in 0.5 s
        pose = start.copy()
        pose[1, 3] += 0.1 * k / 250
        driver.servo_pose(pose, lookahead_s=0.1, gain=300)
        driver.wait_period(driver.start_period())
    _run(driver, 50)
    state = driver.read_state()
    np.testing.assert_allclose(state.tcp[:3, 3], start[:3, 3] + [0, 0.1, 0], atol=1e-3)
    np.testing.assert_allclose(state.tcp[:3, :3], start[:3, :3], atol=1e-3)


def test_speed_tcp_moves_along_the_twist_and_stop_brings_it_to_rest() -> None:
    driver = _driver()
    start = driver.read_state().tcp[:3, 3]
    for _ in range(500):  # 1 s at 0.1 m/s along -z, 0.5 m/s^2 ramp
        driver.speed_tcp(np.array([0, 0, -0.1, 0, 0, 0]), 0.5)
        driver.wait_period(driver.start_period())
    moved = driver.read_state().tcp[:3, 3] - start
    assert moved[2] == pytest.approx(-0.09, abs=0.005)  # 0.1 m less the 0.01 m lost ramping up
    assert np.abs(moved[:2]).max() < 1e-3
    driver.stop()
    _run(driver, 100)
    state = driver.read_state()
    assert np.abs(state.qd).max() < 0.01
    at_rest = state.tcp[:3, 3].copy()
    _run(driver, 100)
    np.testing.assert_allclose(driver.read_state().tcp[:3, 3], at_rest, atol=1e-4)


def test_move_path_passes_the_waypoints_and_reports_moving() -> None:
    driver = _driver()
    start = driver.read_state().tcp
    waypoints = np.repeat(start[None], 3, axis=0)
    waypoints[0, :3, 3] += [0.08, 0.0, -0.1]
    waypoints[1, :3, 3] += [0.08, 0.15, -0.1]
    waypoints[2, :3, 3] += [0.0, 0.15, 0.0]
    driver.move_path(MovePathCommand(waypoints, speed_mps=0.25, accel_mps2=1.0, blend_m=0.0))
    assert driver.read_state().moving
    closest = np.full(3, np.inf)
    for _ in range(5000):
        driver.wait_period(driver.start_period())
        state = driver.read_state()
        closest = np.minimum(closest, np.linalg.norm(waypoints[:, :3, 3] - state.tcp[:3, 3], axis=1))
        if not state.moving:
            break
    assert not driver.read_state().moving
    _run(driver, 50)
    assert closest.max() < 0.003
    np.testing.assert_allclose(driver.read_state().tcp[:3, 3], waypoints[-1, :3, 3], atol=1e-3)


def test_injected_protective_stop_halts_and_is_reported() -> None:
    driver = _driver()
    for _ in range(100):
        driver.speed_tcp(np.array([0.1, 0, 0, 0, 0, 0]), 1.0)
        driver.wait_period(driver.start_period())
    driver.inject_fault("protective_stop")
    state = driver.read_state()
    assert state.protective_stop and not state.ok
    assert "protective stop" in state.fault_reason()
    _run(driver, 200)
    held = driver.read_state().tcp[:3, 3]
    driver.speed_tcp(np.array([0.1, 0, 0, 0, 0, 0]), 1.0)  # ignored, like a stopped controller does
    _run(driver, 200)
    np.testing.assert_allclose(driver.read_state().tcp[:3, 3], held, atol=1e-5)
    assert driver.stats.extra["ignored_commands"] == 1
    driver.clear_faults()
    assert driver.read_state().ok
    driver.speed_tcp(np.array([0.1, 0, 0, 0, 0, 0]), 1.0)
    _run(driver, 200)
    assert driver.read_state().tcp[0, 3] > held[0] + 0.01


def test_protective_stop_after_a_set_time_of_motion() -> None:
    driver = _driver(protective_stop_after_s=0.2)
    q0 = driver.read_state().q
    for k in range(200):
        assert driver.read_state().protective_stop == (k * driver.period_s > 0.2 + 1e-9)
        driver.servo_joints(q0 + 0.001 * k)
        driver.wait_period(driver.start_period())


@pytest.mark.parametrize(("kind", "flag"), [("emergency_stop", "emergency_stop"), ("disconnect", "connected")])
def test_other_injected_faults_are_reported(kind: str, flag: str) -> None:
    driver = _driver()
    driver.inject_fault(kind)
    state = driver.read_state()
    assert not state.ok
    assert getattr(state, flag) is (flag != "connected")
    with pytest.raises(ConfigError, match="unknown fault"):
        driver.inject_fault("meteor")


def test_bad_setpoints_are_refused_before_anything_moves() -> None:
    driver = _driver()
    q0 = driver.read_state().q
    with pytest.raises(RobotError, match="NaN"):
        driver.servo_joints(np.full(6, np.nan))
    with pytest.raises(RobotError, match="shape"):
        driver.servo_joints(np.zeros(5))
    far = np.eye(4)
    far[:3, 3] = [3.0, 0.0, 0.5]
    with pytest.raises(RobotError, match="out of the ur5e's reach"):
        driver.servo_pose(far, 0.1, 300)
    _run(driver, 20)
    np.testing.assert_allclose(driver.read_state().q, q0, atol=1e-9)


def test_states_are_stamped_with_the_chosen_clock() -> None:
    sim = _driver(stamp_clock="sim")
    _run(sim, 25)
    assert sim.read_state().stamp_s == pytest.approx(0.05)
    before = time.time()
    wall = _driver()
    assert before <= wall.read_state().stamp_s <= time.time()


def test_real_time_mode_runs_physics_on_its_own() -> None:
    model = make_robot_model("ur5e")
    world = World(WorldConfig())
    driver = SimRobotDriver(model, world=world, real_time=True)
    driver.connect()
    try:
        waited = threading.Event()
        while world.time_s < 0.05 and not waited.wait(0.01):
            pass
        assert world.time_s >= 0.05
    finally:
        driver.disconnect()
        driver.disconnect()
    assert not world.real_time


def test_registered_and_validated() -> None:
    assert driver_factory("sim") is SimRobotDriver
    model = make_robot_model("ur5e")
    with pytest.raises(ConfigError, match="does not match the robot model"):
        SimRobotDriver(model, robot="ur5")
    with pytest.raises(ConfigError, match="whole number of physics steps"):
        SimRobotDriver(model, world=World(WorldConfig()), period_s=0.003)
    with pytest.raises(ConfigError, match="simulates a ur5e, not a ur5"):
        SimRobotDriver(make_robot_model("ur5"), world=World(WorldConfig()))
    with pytest.raises(ConfigError, match="unknown sim driver option"):
        SimRobotDriver(model, gripper=True)
