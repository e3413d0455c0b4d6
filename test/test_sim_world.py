"""The MJCF cell: the arm's MuJoCo frames agree with the kinematics, the camera sits where the scene
(and so the calibration file) says, and the world's options are validated."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.geometry import Transform, load_calibration
from spatial_trace_ros.robots.model import make_robot_model
from spatial_trace_ros.sim.config import split_options
from spatial_trace_ros.sim.scene import write_calibration
from spatial_trace_ros.sim.ur_arm import HOME_Q_RAD
from spatial_trace_ros.sim.world import World, WorldConfig, shared_world


@pytest.fixture(scope="module", params=["ur5e", "ur5"])
def world(request: pytest.FixtureRequest) -> World:
    return World(WorldConfig(robot=request.param))


def test_tool_site_matches_kinematics_fk_for_random_joints(world: World) -> None:
    model = make_robot_model(world.robot)
    rng = np.random.default_rng(11)
    for q in rng.uniform(model.lower_rad, model.upper_rad, size=(200, 6)):
        world.set_joint_positions(q)
        np.testing.assert_allclose(world.tool_pose(), model.fk(q), atol=1e-6)
        np.testing.assert_allclose(world.tool_jacobian(), model.jacobian(q), atol=1e-6)
        np.testing.assert_allclose(world.joint_positions(), q, atol=1e-12)


def test_zero_pose_is_the_published_ur5e_pose() -> None:
    world = World(WorldConfig(robot="ur5e"))
    world.set_joint_positions(np.zeros(6))
    # UR5e at all-zero joints: x = a2 + a3, y = -(d4 + d6), z = d1 - d5, tool z along -y.
    expected = np.array([[1, 0, 0, -0.8172], [0, 0, -1, -0.2329], [0, 1, 0, 0.0628], [0, 0, 0, 1]])
    np.testing.assert_allclose(world.tool_pose(), expected, atol=1e-9)


def test_home_pose_points_the_tool_down_above_the_table(world: World) -> None:
    world.set_joint_positions(np.array(HOME_Q_RAD[world.robot]))
    pose = world.tool_pose()
    assert pose[2, 3] > 0.3
    np.testing.assert_allclose(pose[:3, 2], [0, 0, -1], atol=1e-6)


def test_eye_to_hand_camera_is_where_the_calibration_says(tmp_path) -> None:
    world = World(WorldConfig(scene_seed=4))
    cal = load_calibration(write_calibration(world.scene, tmp_path / "cal.yaml"))
    np.testing.assert_allclose(world.camera_pose(), cal.base_T_camera().matrix, atol=1e-6)


def test_eye_in_hand_camera_rides_on_the_flange(tmp_path) -> None:
    world = World(WorldConfig(scene_seed=4, camera_mount="eye_in_hand"))
    cal = load_calibration(write_calibration(world.scene, tmp_path / "cal.yaml"))
    model = make_robot_model("ur5e")
    for q in np.random.default_rng(2).uniform(-2, 2, size=(10, 6)):
        world.set_joint_positions(q)
        base_T_tool = Transform(model.fk(q), "base", "tool0")
        np.testing.assert_allclose(world.camera_pose(), cal.base_T_camera(base_T_tool).matrix, atol=1e-6)


def test_stepping_holds_a_commanded_pose_and_advances_time() -> None:
    world = World(WorldConfig())
    q0 = world.joint_positions()
    target = q0 + np.array([0.1, -0.1, 0.1, 0.2, -0.2, 0.3])
    world.command(target, np.zeros(6))
    world.step(1.5)
    assert world.time_s == pytest.approx(1.5)
    np.testing.assert_allclose(world.joint_positions(), target, atol=1e-3)
    np.testing.assert_allclose(world.joint_velocities(), 0.0, atol=1e-2)


def test_real_time_thread_advances_physics_until_released() -> None:
    world = World(WorldConfig())
    world.acquire_real_time()
    world.acquire_real_time()
    try:
        advanced = threading.Event()
        for _ in range(2000):
            if world.time_s > 0.05:
                advanced.set()
                break
            advanced.wait(0.005)
        assert advanced.is_set(), "physics did not advance in real time"
        world.release_real_time()
        assert world.real_time  # one holder left
    finally:
        world.release_real_time()
    assert not world.real_time
    stopped_at = world.time_s
    threading.Event().wait(0.05)
    assert world.time_s == stopped_at


def test_one_driver_at_a_time() -> None:
    world = World(WorldConfig())
    first, second = object(), object()
    world.set_step_callback(lambda t, dt: None, first)
    with pytest.raises(ConfigError, match="already has a driver"):
        world.set_step_callback(lambda t, dt: None, second)
    world.set_step_callback(None, second)  # a stranger cannot remove the first driver's controller
    with pytest.raises(ConfigError):
        world.set_step_callback(lambda t, dt: None, second)
    world.set_step_callback(None, first)
    world.set_step_callback(lambda t, dt: None, second)


def test_shared_world_is_one_per_config() -> None:
    a = shared_world(WorldConfig(scene_seed=21))
    assert shared_world(WorldConfig(scene_seed=21)) is a
    assert shared_world(WorldConfig(scene_seed=22)) is not a


def test_options_are_checked_and_unknown_ones_named() -> None:
    from pydantic import BaseModel

    class Own(BaseModel):
        fps: float = 15.0

    with pytest.raises(ConfigError, match=r"unknown sim camera option\(s\) colour.*available: .*fps.*scene_seed"):
        split_options({"colour": "red"}, Own, "sim camera")
    with pytest.raises(ConfigError, match="robot='ur10'"):
        split_options({"robot": "ur10"}, Own, "sim camera")
    with pytest.raises(ConfigError, match="home_q_rad needs 6"):
        World(WorldConfig(home_q_rad=(0.0, 1.0)))
