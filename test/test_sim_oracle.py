"""The simulation ORACLE backend: its RoboTracer-format answers, read back by the real parser and
deprojected with the frame's intrinsics, give the ground-truth trace: from the object, lifted over
the table, into or beside the target, or slid around the object in the way; and it refuses what it
cannot answer with the reason."""

from __future__ import annotations

import asyncio
import itertools

import numpy as np
import pytest

from spatial_trace_ros.errors import ModelError
from spatial_trace_ros.geometry import CameraIntrinsics, RgbdFrame, Transform, deproject, project
from spatial_trace_ros.sim.camera import SimFrameSource
from spatial_trace_ros.sim.oracle import OracleBackend
from spatial_trace_ros.sim.tasks import camera_directions, detour_path, detour_side, passing_direction
from spatial_trace_ros.sim.world import World, WorldConfig
from spatial_trace_ros.trace.model import TraceQuery, make_trace_model
from spatial_trace_ros.trace.parser import parse_answer

SEED = 1
# In seed 1's scene the orange cylinder stands between the blue cube and its place behind the red bowl.
GO_AROUND = ("blue cube", "red bowl", "orange cylinder")
# While going around, the footprint circles of the moved object and the obstacle stay this far apart.
AROUND_MARGIN_M = 0.01
SIDES = {"to the left of": "left", "to the right of": "right", "in front of": "front", "behind": "behind"}


@pytest.fixture(scope="module")
def world() -> World:
    return World(WorldConfig(scene_seed=SEED))


@pytest.fixture(scope="module")
def frame(world: World) -> RgbdFrame:
    with SimFrameSource(world=world, stamp_clock="sim") as source:
        return source.read(timeout_s=10.0)


@pytest.fixture(scope="module")
def oracle() -> OracleBackend:
    return make_trace_model("oracle", scene_seed=SEED)


def _names(world: World) -> tuple[str, str, str]:
    movable = [o.name for o in world.scene.objects if not o.is_receptacle]
    receptacle = next(o.name for o in world.scene.objects if o.is_receptacle)
    return movable[0], movable[1], receptacle


def _ask(oracle: OracleBackend, frame: RgbdFrame, instruction: str, n: int = 1) -> list:
    return asyncio.run(oracle.answer(TraceQuery(frame, instruction, n_samples=n)))


def _trace_in_base(text: str, frame: RgbdFrame, world: World) -> np.ndarray:
    """What the stack downstream does with the answer: parse, deproject with the model's depth, and
    move into the base frame with the camera's extrinsics."""
    parsed = parse_answer(text, "robotracer", frame.intrinsics.width, frame.intrinsics.height)
    assert parsed.has_depth
    return Transform(world.camera_pose()).apply(deproject(parsed.uv, parsed.depth_m, frame.intrinsics))


def test_into_a_receptacle_starts_at_the_object_lifts_and_ends_inside(oracle, frame, world) -> None:
    obj_name, _, bowl_name = _names(world)
    obj, bowl = world.scene.item(obj_name), world.scene.item(bowl_name)
    (answer,) = _ask(oracle, frame, f"Move the {obj_name} into the {bowl_name}.")
    assert answer.convention == "robotracer" and answer.metadata["oracle"] is True
    assert answer.text.startswith("[(") and answer.text.endswith(")]")
    points = _trace_in_base(answer.text, frame, world)
    assert len(points) == 10
    # Round trip through the 0-1000 text: sub-pixel and millimetre quantisation only.
    np.testing.assert_allclose(points, answer.metadata["points_base_m"], atol=0.003)
    np.testing.assert_allclose(points[0], obj.top_centre, atol=0.003)
    tallest = max(o.top_z_m for o in world.scene.objects)
    assert points[:, 2].max() > tallest + 0.04  # carried over everything on the table
    end = points[-1]
    inner_radius = bowl.half_extent_xy_m - bowl.wall_m
    assert np.linalg.norm(end[:2] - bowl.centre[:2]) < inner_radius - obj.footprint_radius_m
    assert end[2] == pytest.approx(bowl.floor_z_m + obj.size_m[2], abs=0.003)


def test_the_answers_start_depth_agrees_with_the_rendered_depth(oracle, frame, world) -> None:
    obj_name, _, bowl_name = _names(world)
    (answer,) = _ask(oracle, frame, f"put the {obj_name} in the {bowl_name}")
    parsed = parse_answer(answer.text, "robotracer", 640, 480)
    u, v = np.rint(parsed.uv[0]).astype(int)
    assert frame.depth_m[v, u] == pytest.approx(parsed.depth_m[0], abs=0.005)


@pytest.mark.parametrize("relation", ["to the left of", "to the right of", "in front of", "behind"])
def test_beside_places_the_object_on_the_named_side_as_the_camera_sees_it(oracle, frame, world, relation) -> None:
    obj_name, ref_name, _ = _names(world)
    obj, ref = world.scene.item(obj_name), world.scene.item(ref_name)
    (answer,) = _ask(oracle, frame, f"move the {obj_name} {relation} the {ref_name}")
    end = _trace_in_base(answer.text, frame, world)[-1]
    assert end[2] == pytest.approx(obj.size_m[2], abs=0.003)  # back on the table
    side = SIDES[relation]
    offset = end[:2] - ref.centre[:2]
    direction = camera_directions(world.camera_pose())[side][:2]
    assert offset @ direction > ref.footprint_radius_m + obj.footprint_radius_m
    # Left/right are image directions: the end point appears on that side of the reference.
    camera_T_base = Transform(world.camera_pose()).inverse()
    u_end, u_ref = (project(camera_T_base.apply(p), frame.intrinsics)[0, 0] for p in (end, ref.top_centre))
    if side in ("left", "right"):
        assert (u_end < u_ref) == (side == "left")


def test_pick_up_and_stack_and_shift(oracle, frame, world) -> None:
    obj_name, other_name, _ = _names(world)
    obj, other = world.scene.item(obj_name), world.scene.item(other_name)
    lifted = _trace_in_base(_ask(oracle, frame, f"pick up the {obj_name}")[0].text, frame, world)
    np.testing.assert_allclose(lifted[-1], obj.top_centre + np.array([0, 0, 0.15]), atol=0.003)
    np.testing.assert_allclose(lifted[:, :2], np.repeat(obj.top_centre[None, :2], len(lifted), 0), atol=0.003)
    stack = f"put the {obj_name} on top of the {other_name}"
    stacked = _trace_in_base(_ask(oracle, frame, stack)[0].text, frame, world)
    np.testing.assert_allclose(stacked[-1], [*other.centre[:2], other.top_z_m + obj.size_m[2]], atol=0.003)
    shifted = _trace_in_base(_ask(oracle, frame, f"move the {obj_name} 10 cm to the right")[0].text, frame, world)
    right = camera_directions(world.camera_pose())["right"]
    np.testing.assert_allclose(shifted[-1, :2], obj.centre[:2] + 0.1 * right[:2], atol=0.003)


def _dense(points_xy: np.ndarray, per_segment: int = 50) -> np.ndarray:
    return np.concatenate([np.linspace(a, b, per_segment) for a, b in itertools.pairwise(points_xy)])


@pytest.mark.parametrize("passing", list(SIDES))
def test_go_around_starts_at_the_object_keeps_clear_of_the_obstacle_and_ends_beside_the_target(
        oracle, frame, world, passing) -> None:
    obj, ref, via = (world.scene.item(name) for name in GO_AROUND)
    # The wording of ``spatial-trace synth``'s go_around category.
    instruction = f"slide the {obj.name} behind the {ref.name}, passing {passing} the {via.name}"
    (answer,) = _ask(oracle, frame, instruction)
    assert answer.metadata["template"] == "go_around" and answer.metadata["via"] == via.name
    points = _trace_in_base(answer.text, frame, world)
    np.testing.assert_allclose(points[0], obj.top_centre, atol=0.003)
    np.testing.assert_allclose(points[:, 2], obj.top_z_m, atol=0.003)  # slid on the table, never lifted
    dirs = camera_directions(world.camera_pose())
    target = ref.centre[:2] + dirs["behind"][:2] * (ref.footprint_radius_m + obj.footprint_radius_m + 0.03)
    np.testing.assert_allclose(points[-1, :2], target, atol=0.003)
    # The straight slide would hit the obstacle ...
    start, end = points[0, :2], points[-1, :2]
    t = np.clip((via.centre[:2] - start) @ (end - start) / np.sum((end - start) ** 2), 0.0, 1.0)
    touching = via.footprint_radius_m + obj.footprint_radius_m
    assert np.linalg.norm(start + t * (end - start) - via.centre[:2]) < touching
    # ... the answer, checked densely between its points, keeps the two footprints apart ...
    dense = _dense(points[:, :2])
    gaps = np.linalg.norm(dense - via.centre[:2], axis=1) - touching
    assert gaps.min() > AROUND_MARGIN_M
    # ... and passes the obstacle (where the trace is level with it) on the named side, as the camera sees it.
    travel = (end - start) / np.linalg.norm(end - start)
    level = dense[np.argmin(np.abs((dense - via.centre[:2]) @ travel))]
    assert (level - via.centre[:2]) @ dirs[SIDES[passing]][:2] > 0.02
    if SIDES[passing] in ("left", "right"):
        camera_T_base = Transform(world.camera_pose()).inverse()
        u_level, u_via = (project(camera_T_base.apply(np.array([[*p, obj.top_z_m]])), frame.intrinsics)[0, 0]
                          for p in (level, via.centre[:2]))
        assert (u_level < u_via) == (SIDES[passing] == "left")


def test_go_around_refuses_an_obstacle_not_in_the_way_and_an_unclear_side(oracle, frame, world) -> None:
    obj, ref, _ = GO_AROUND
    with pytest.raises(ModelError, match=r"cannot slide the blue cube around the purple tray: .* not between"):
        _ask(oracle, frame, f"slide the {obj} behind the {ref}, passing to the left of the purple tray")
    with pytest.raises(ModelError, match="names the red bowl twice"):
        _ask(oracle, frame, f"slide the {obj} behind the {ref}, passing to the left of the {ref}")
    # Moving straight away from the camera, "passing behind" does not say which way round.
    base_T_camera = world.camera_pose()
    behind = camera_directions(base_T_camera)["behind"][:2]
    start = np.array([0.6, 0.0])
    with pytest.raises(ModelError, match="does not say which way"):
        detour_side(start, start + 0.3 * behind, "behind", base_T_camera)


def test_the_named_passing_side_reads_back_as_the_side_it_names(world) -> None:
    """What the generator writes for a detour on one side is read back by the oracle as that side."""
    base_T_camera = world.camera_pose()
    rng = np.random.default_rng(0)
    for angle in rng.uniform(-np.pi, np.pi, 200):
        start = rng.uniform([0.3, -0.3], [0.6, 0.3])
        goal = start + 0.3 * np.array([np.cos(angle), np.sin(angle)])
        for side in (1.0, -1.0):
            assert detour_side(start, goal, passing_direction(start, goal, side, base_T_camera), base_T_camera) == side


def test_detour_needs_the_obstacle_between_start_and_goal() -> None:
    path = detour_path(np.array([0.0, 0.0]), np.array([1.0, 0.0]), np.array([0.5, 0.0]), 0.1, 1.0)
    assert np.all(path[1:-1, 1] >= -1e-12) and np.isclose(path[:, 1].max(), 0.1)  # left of the direction of travel
    right = detour_path(np.array([0.0, 0.0]), np.array([1.0, 0.0]), np.array([0.5, 0.0]), 0.1, -1.0)
    assert np.isclose(right[:, 1].min(), -0.1)
    with pytest.raises(ModelError, match="not between"):
        detour_path(np.array([0.0, 0.0]), np.array([1.0, 0.0]), np.array([0.05, 0.0]), 0.1, 1.0)


def test_unknown_instructions_and_objects_name_what_the_oracle_knows(oracle, frame, world) -> None:
    with pytest.raises(ModelError) as err:
        _ask(oracle, frame, "make me a sandwich")
    text = str(err.value)
    assert "oracle" in text and "into the blue bowl" in text and "to the left of" in text and "passing behind" in text
    assert all(name in text for name in world.scene.names)
    with pytest.raises(ModelError, match=r"no 'golden cube' in the scene; objects: .*"):
        _ask(oracle, frame, "move the golden cube into the red bowl")
    obj_name, other_name, _ = _names(world)
    with pytest.raises(ModelError, match="not a receptacle"):
        _ask(oracle, frame, f"move the {obj_name} into the {other_name}")


def test_a_trace_leaving_the_image_is_refused(oracle, frame, world) -> None:
    obj_name, _, _ = _names(world)
    with pytest.raises(ModelError, match="outside the camera's view"):
        _ask(oracle, frame, f"lift the {obj_name} by 1.5 m")


def test_frames_of_another_camera_are_refused(oracle, frame) -> None:
    other = CameraIntrinsics(640, 480, 900.0, 900.0, 320.0, 240.0)
    foreign = RgbdFrame(frame.color, frame.depth, other)
    with pytest.raises(ModelError, match="only for the simulated camera"):
        _ask(oracle, foreign, "pick up the blue cube")
    # The same camera at half resolution is still the simulated camera.
    half = frame.intrinsics.scaled(320, 240)
    small = RgbdFrame(frame.color[::2, ::2].copy(), frame.depth[::2, ::2].copy(), half)
    assert _ask(oracle, small, "pick up the blue cube")[0].text


def test_perturbation_is_seeded_and_of_the_asked_size(frame, world) -> None:
    obj_name, _, bowl_name = _names(world)
    instruction = f"move the {obj_name} into the {bowl_name}"

    def answers(seed: int) -> list:
        backend = OracleBackend(scene_seed=SEED, perturbation_m=0.01, perturbation_seed=seed, n_points=40)
        return _ask(backend, frame, instruction, n=3)

    first, again, other = answers(5), answers(5), answers(6)
    assert [a.text for a in first] == [a.text for a in again]
    assert first[0].text != other[0].text
    assert len({a.text for a in first}) == 3  # each sample is drawn anew
    truth = OracleBackend(scene_seed=SEED, n_points=40).ground_truth(instruction).points_m
    errors = np.concatenate([_trace_in_base(a.text, frame, world) - truth for a in first])
    assert 0.007 < np.sqrt(np.mean(errors**2)) < 0.013
