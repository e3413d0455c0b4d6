"""The simulated RGB-D camera: objects appear in their colours where the scene says they are, depth is
metric z along the optical axis, and the intrinsics deproject pixels back onto the true geometry."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from spatial_trace_ros.camera.source import make_frame_source
from spatial_trace_ros.errors import CameraError, ConfigError
from spatial_trace_ros.geometry import RgbdFrame, Transform, deproject, project
from spatial_trace_ros.sim.camera import SimFrameSource
from spatial_trace_ros.sim.scene import PALETTE, generate_scene
from spatial_trace_ros.sim.world import World, WorldConfig


def _hue_deg(rgb: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(np.asarray(rgb, np.uint8).reshape(-1, 1, 3), cv2.COLOR_RGB2HSV_FULL).reshape(-1, 3)
    return hsv[:, 0].astype(float) * 360.0 / 256.0


def _nearest_palette_colour(rgb: np.ndarray) -> str:
    names = list(PALETTE)
    hues = _hue_deg(np.array([[round(255 * c) for c in PALETTE[n][:3]] for n in names]))
    d = np.abs((_hue_deg(rgb)[0] - hues + 180) % 360 - 180)
    return names[int(np.argmin(d))]


@pytest.fixture(scope="module")
def world() -> World:
    return World(WorldConfig(scene_seed=1))


@pytest.fixture(scope="module")
def frame(world: World) -> RgbdFrame:
    with SimFrameSource(world=world, stamp_clock="sim") as source:
        return source.read(timeout_s=10.0)


def test_frame_is_a_d435_like_rgbd_frame(frame: RgbdFrame) -> None:
    assert frame.color.shape == (480, 640, 3) and frame.color.dtype == np.uint8
    assert frame.depth.shape == (480, 640) and frame.depth.dtype == np.uint16
    assert frame.depth_scale_m == 0.001
    assert frame.frame_id == "camera_color_optical_frame"
    intr = frame.intrinsics
    assert (intr.cx, intr.cy) == (319.5, 239.5)
    assert intr.fx == intr.fy == pytest.approx(615, abs=5)  # a D435's color stream at 640x480
    assert np.mean(frame.depth > 0) > 0.95


def test_objects_show_their_colour_where_the_scene_projects_them(world: World, frame: RgbdFrame) -> None:
    camera_T_base = Transform(world.camera_pose()).inverse()
    for obj in world.scene.objects:
        uv = np.rint(project(camera_T_base.apply(obj.top_centre), frame.intrinsics)[0]).astype(int)
        patch = frame.color[uv[1] - 1 : uv[1] + 2, uv[0] - 1 : uv[0] + 2].reshape(-1, 3)
        pixel = np.median(patch, axis=0)
        saturation = (pixel.max() - pixel.min()) / max(pixel.max(), 1)
        assert saturation > 0.4, f"{obj.name} at {uv} looks grey: {pixel}"
        assert _nearest_palette_colour(pixel) == obj.colour, f"{obj.name} at {uv} is {pixel}"


def test_depth_at_an_objects_pixel_is_its_distance_along_the_optical_axis(world: World, frame: RgbdFrame) -> None:
    camera_T_base = Transform(world.camera_pose()).inverse()
    for obj in world.scene.objects:
        if obj.is_receptacle:
            continue
        p_cam = camera_T_base.apply(obj.top_centre)
        u, v = np.rint(project(p_cam, frame.intrinsics)[0]).astype(int)
        assert frame.depth_m[v, u] == pytest.approx(p_cam[2], abs=0.004), obj.name


def test_intrinsics_and_depth_deproject_the_table_onto_its_plane(world: World, frame: RgbdFrame) -> None:
    """Every table-coloured pixel, deprojected with the frame's intrinsics and depth and moved into
    the base frame with the camera pose, lands on the table top z = 0; every cube top pixel lands on
    its top face. Wrong fx, cx, cy, a vertical flip or ray-length depth would all fail this."""
    # The table is flat and lit by directional lights only, so it renders in one tone: the commonest
    # colour of the bottom rows, which are table everywhere but where objects stand.
    colours, counts = np.unique(frame.color[-40:].reshape(-1, 3), axis=0, return_counts=True)
    table = colours[np.argmax(counts)].astype(int)
    assert abs(int(table[0]) - int(table[2])) < 20  # a grey, as TABLE_RGBA
    v, u = np.nonzero(np.all(np.abs(frame.color.astype(int) - table) <= 2, axis=2) & (frame.depth > 0))
    assert len(u) > 50_000
    base_T_camera = Transform(world.camera_pose())
    pts = base_T_camera.apply(deproject(np.column_stack([u, v]), frame.depth_m[v, u], frame.intrinsics))
    on_table = (pts[:, 0] > -0.2) & (pts[:, 0] < 0.9) & (np.abs(pts[:, 1]) < 0.6)
    assert np.mean(np.abs(pts[on_table, 2]) < 0.003) > 0.99
    for obj in world.scene.objects:
        if obj.kind != "cube":
            continue
        rgb = np.array([round(255 * c) for c in obj.rgba[:3]])
        mask = np.all(np.abs(frame.color.astype(int) - rgb) < 60, axis=2) & (frame.depth > 0)
        v, u = np.nonzero(mask)
        pts = base_T_camera.apply(deproject(np.column_stack([u, v]), frame.depth_m[v, u], frame.intrinsics))
        top = np.abs(pts[:, 2] - obj.top_z_m) < 0.003
        assert top.sum() > 50, obj.name
        np.testing.assert_allclose(np.median(pts[top, :2], axis=0), obj.position_m[:2], atol=0.006)


def test_table_depth_is_the_plane_seen_through_each_pixel_centre() -> None:
    """Rays through pixel centres (u - cx) / fx, (v - cy) / fy meet the table plane z = 0 at exactly the
    rendered depth: no bias down to a tenth of a millimetre over the whole table. The camera is rolled
    so depth varies along both image axes; half a pixel off in cx or cy biases the mean by 0.3-0.6 mm."""
    base = generate_scene(1)
    roll = Transform.from_rpy([0, 0, 0], [0, 0, 0.5], "camera_color_optical_frame", "camera_color_optical_frame")
    rolled = base.camera.parent_T_camera @ roll
    camera = base.camera.model_copy(update={"quaternion_xyzw": tuple(rolled.quaternion_xyzw)})
    world = World(WorldConfig(), scene=base.model_copy(update={"camera": camera}))
    with SimFrameSource(world=world) as source:
        frame = source.read(timeout_s=10.0)
    colours, counts = np.unique(frame.color[-40:].reshape(-1, 3), axis=0, return_counts=True)
    table = colours[np.argmax(counts)].astype(int)
    v, u = np.nonzero(np.all(np.abs(frame.color.astype(int) - table) <= 2, axis=2) & (frame.depth > 0))
    assert len(u) > 30_000
    K = frame.intrinsics
    rays = np.column_stack([(u - K.cx) / K.fx, (v - K.cy) / K.fy, np.ones(len(u))])
    base_T_camera = world.camera_pose()
    z_per_unit_depth = (rays @ base_T_camera[:3, :3].T)[:, 2]
    expected_depth = -base_T_camera[2, 3] / z_per_unit_depth
    error = frame.depth_m[v, u] - expected_depth
    assert abs(np.mean(error)) < 1e-4
    assert np.percentile(np.abs(error), 99) < 7.5e-4  # millimetre rounding of the uint16 depth


def test_source_streams_fresh_frames_through_the_registry() -> None:
    source = make_frame_source("sim", scene_seed=1, width=320, height=240, fps=60.0)
    with pytest.raises(CameraError, match="not open"):
        source.read()
    source.open()
    try:
        stamps = [source.read(timeout_s=10.0).stamp_s for _ in range(3)]
        assert stamps[0] < stamps[1] < stamps[2]
        assert source.stats.frames == 3 and source.stats.state == "streaming"
        assert source.intrinsics.width == 320
    finally:
        source.close()
        source.close()
    assert source.stats.state == "closed"


def test_a_read_shorter_than_the_frame_period_times_out_clearly() -> None:
    with SimFrameSource(scene_seed=1, width=64, height=48, fps=0.5) as source:
        source.read(timeout_s=10.0)
        with pytest.raises(CameraError, match=r"no new frame within 0\.01 s"):
            source.read(timeout_s=0.01)


def test_depth_outside_the_range_reads_as_no_data() -> None:
    world = World(WorldConfig(scene_seed=1, width=160, height=120))
    with SimFrameSource(world=world, max_depth_m=1.0) as source:
        depth = source.read(timeout_s=10.0).depth_m
    valid = depth[np.isfinite(depth)]
    assert valid.size > 0 and valid.max() <= 1.0
    assert np.isnan(depth).mean() > 0.2  # the far table and the floor


def test_eye_in_hand_view_follows_the_arm() -> None:
    world = World(WorldConfig(scene_seed=1, camera_mount="eye_in_hand", width=160, height=120))
    with SimFrameSource(world=world, stamp_clock="sim") as source:
        before = source.read(timeout_s=10.0)
        pose_before = world.camera_pose()
        world.set_joint_positions(world.joint_positions() + np.array([0.4, 0.0, 0.0, 0.0, 0.0, 0.0]))
        after = source.read(timeout_s=10.0)
    assert np.linalg.norm(world.camera_pose()[:3, 3] - pose_before[:3, 3]) > 0.1
    assert np.mean(np.abs(before.color.astype(int) - after.color.astype(int))) > 5


def test_rendered_arm_follows_joint_states_unless_a_driver_here_moves_it() -> None:
    """What camera_node does with /joint_states when the arm is simulated in another process."""
    from spatial_trace_ros.robots.model import make_robot_model
    from spatial_trace_ros.sim.robot import SimRobotDriver
    from spatial_trace_ros.sim.ur_arm import JOINT_NAMES

    world = World(WorldConfig(scene_seed=1, width=160, height=120))
    target = world.joint_positions() + np.array([0.5, -0.2, 0.3, 0.0, 0.4, 0.0])
    with SimFrameSource(world=world, stamp_clock="sim") as source:
        before = source.read(timeout_s=10.0)
        assert not source.show_joint_positions({"shoulder_pan_joint": 1.0})  # incomplete: ignored
        assert source.show_joint_positions(dict(zip(JOINT_NAMES, target, strict=True)))
        after = source.read(timeout_s=10.0)
        np.testing.assert_allclose(world.joint_positions(), target, atol=1e-12)
        assert np.mean(np.abs(before.color.astype(int) - after.color.astype(int))) > 1
        driver = SimRobotDriver(make_robot_model("ur5e"), world=world, real_time=False)
        driver.connect()
        try:
            assert not source.show_joint_positions(dict(zip(JOINT_NAMES, np.zeros(6), strict=True)))
            np.testing.assert_allclose(world.joint_positions(), target, atol=1e-6)
        finally:
            driver.disconnect()


def test_bad_options_are_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"unknown sim camera option.*available"):
        SimFrameSource(exposure=3)
    with pytest.raises(ConfigError, match="fps"):
        SimFrameSource(fps=0)
    with pytest.raises(CameraError, match="min_depth_m"):
        SimFrameSource(min_depth_m=2.0, max_depth_m=1.0)
