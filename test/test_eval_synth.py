"""Synthetic data: the task programs, the checks, the rendered dataset against its own ground truth,
determinism, the fine-tuning export, and the ``synth`` / ``export-finetune`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from spatial_trace_ros.cli import main
from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.eval.dataset import read_benchmark
from spatial_trace_ros.eval.synth import generate_dataset, make_config
from spatial_trace_ros.eval.synth_tasks import (
    CATEGORIES,
    ORACLE_CATEGORIES,
    SceneVolumes,
    TaskContext,
    TaskRejectedError,
    propose_task,
    trace_collides,
)
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics, project
from spatial_trace_ros.sim.scene import ObjectSpec, SceneSpec, default_camera, generate_scene, load_scene
from spatial_trace_ros.sim.tasks import camera_directions, plan_task
from spatial_trace_ros.trace.parser import parse_answer

SIZE = {"width": 320, "height": 240}


def _context(seed: int) -> TaskContext:
    scene = generate_scene(seed, 5, 2, "eye_to_hand", 320, 240, 0.04, 0.05, True)
    return TaskContext(scene, scene.camera.parent_T_camera.matrix)


def _tasks(category: str, seeds: range) -> list:
    out = []
    for seed in seeds:
        ctx = _context(seed)
        rng = np.random.default_rng(seed)
        for _ in range(6):
            try:
                out.append((ctx, propose_task(category, ctx, rng)))
                break
            except TaskRejectedError:
                continue
    return out


@pytest.mark.parametrize("category", list(CATEGORIES))
def test_every_category_yields_checked_tasks(category: str) -> None:
    found = _tasks(category, range(6))
    assert len(found) >= 4, f"{category}: too few scenes gave a task"
    for ctx, task in found:
        assert task.category == category and task.difficulty == CATEGORIES[category][0]
        assert task.target.name in task.instruction
        np.testing.assert_allclose(task.points_m[0], task.target.top_centre, atol=1e-9)
        assert task.destination.contains(task.points_m[-1]), task.instruction
        assert trace_collides(ctx.volumes, task.target, task.points_m) is None
        if category in ORACLE_CATEGORIES:
            # The same instruction means the same trace to the simulation's oracle.
            truth = plan_task(task.instruction, ctx.scene, ctx.base_T_camera, ctx.n_points, ctx.clearance_m)
            np.testing.assert_allclose(truth.points_m, task.points_m)


def test_difficulty_grows_with_the_number_of_objects_involved() -> None:
    steps = {name: step for name, (step, _) in CATEGORIES.items()}
    assert steps["pick_up"] < steps["move_to"] <= steps["stack"] < steps["go_around"]
    assert steps["place_relative"] == 3 and steps["shift"] == 2


def test_go_around_detours_around_the_object_in_the_way() -> None:
    for ctx, task in _tasks("go_around", range(8)):
        obj, ref, via = task.target, task.reference, task.via
        assert via is not None and ref is not None and via.name in task.instruction
        pts = task.points_m
        np.testing.assert_allclose(pts[:, 2], obj.top_z_m)  # slid on the table, never lifted
        # The straight line would have hit it ...
        start, end = pts[0, :2], pts[-1, :2]
        t = np.clip((via.centre[:2] - start) @ (end - start) / np.sum((end - start) ** 2), 0, 1)
        reach = via.footprint_radius_m + obj.footprint_radius_m
        assert np.linalg.norm(start + t * (end - start) - via.centre[:2]) < reach
        # ... the trace keeps clear of it (densely checked between the points) ...
        dense = np.concatenate([np.linspace(a, b, 20) for a, b in zip(pts[:-1, :2], pts[1:, :2])])
        assert np.min(np.linalg.norm(dense - via.centre[:2], axis=1)) > via.footprint_radius_m + obj.half_extent_xy_m
        # ... and ends on the named side of the reference, as the camera sees it.
        dirs = camera_directions(ctx.base_T_camera)
        phrases = {"left": "to the left of", "right": "to the right of", "front": "in front of", "behind": "behind"}
        side = next(k for k, phrase in phrases.items() if f" {phrase} the {ref.name}," in task.instruction)
        offset = np.append(end - ref.centre[:2], 0.0)
        assert max(dirs, key=lambda k: float(dirs[k] @ offset)) == side


def _cube(name: str, x: float, y: float, size: float = 0.05) -> ObjectSpec:
    colour = name.split()[0]
    return ObjectSpec(name=name, kind="cube", colour=colour, rgba=(1, 0, 0, 1), size_m=(size, size, size),
                      position_m=(x, y, size / 2))


def test_collision_check_refuses_penetration_and_allows_contact() -> None:
    a, b = _cube("red cube", 0.4, -0.1), _cube("green cube", 0.4, 0.1)
    scene = SceneSpec(seed=0, objects=(a, b), camera=default_camera(), lights=())
    volumes = SceneVolumes(scene)
    top = a.top_centre
    slide_through = np.array([top, [0.4, 0.1, top[2]], [0.4, 0.2, top[2]]])
    assert trace_collides(volumes, a, slide_through) == ("collision", "the red cube would hit the green cube")
    stack = np.array([top, [0.4, -0.1, 0.2], [0.4, 0.1, 0.2], [0.4, 0.1, b.top_z_m + 0.05]])
    assert trace_collides(volumes, a, stack) is None  # resting on top is contact, not collision
    beside = np.array([top, [0.4, -0.1, 0.2], [0.4, 0.1 - 0.05, 0.2], [0.4, 0.1 - 0.05, top[2]]])
    assert trace_collides(volumes, a, beside) is None  # side by side, faces touching
    sunk = np.array([top, top - [0, 0, 0.02]])
    check, reason = trace_collides(volumes, a, sunk)
    assert check == "table" and "2.0 cm into the table" in reason
    off = np.array([top, [2.0, -0.1, top[2]]])
    assert trace_collides(volumes, a, off)[0] == "table"


# -- the rendered dataset ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("synth") / "data"
    config = make_config(n_scenes=3, seed=5, **SIZE)
    return out, generate_dataset(config, out, progress=False, finetune_formats=["llava"])


def test_dataset_files_and_manifest(dataset: tuple[Path, object]) -> None:
    out, result = dataset
    samples = read_benchmark(out / "samples.jsonl")
    assert result.n_scenes == 3 and len(samples) == result.n_samples == 9
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["n_samples"] == 9 and sum(manifest["per_category"].values()) == 9
    assert manifest["config"]["seed"] == 5
    assert sorted({s.category for s in samples}) == sorted(manifest["per_category"])
    assert len({s.category for s in samples}) == 6  # the categories are cycled for balance
    for s in samples:
        assert s.image_size == (320, 240) and s.difficulty == CATEGORIES[s.category][0]
        with Image.open(out / s.image_path) as im:
            assert im.size == (320, 240) and im.mode == "RGB"
        depth = cv2.imread(str(out / s.depth_path), cv2.IMREAD_UNCHANGED)
        assert depth.dtype == np.uint16 and depth.shape == (240, 320)


def test_ground_truth_agrees_with_the_rendered_frame(dataset: tuple[Path, object]) -> None:
    """Independent of the generator's own checks: the trace starts on the visible top face of the
    object the mask shows, at the depth the depth image measures, and ends inside its box."""
    out, _ = dataset
    for s in read_benchmark(out / "samples.jsonl"):
        intr = CameraIntrinsics.from_matrix(s.K, *s.image_size)
        uv = project(s.trajectory_m, intr)
        assert np.all((uv >= 0) & (uv < [320, 240]))
        u, v = np.rint(uv[0]).astype(int)
        depth = cv2.imread(str(out / s.depth_path), cv2.IMREAD_UNCHANGED)
        assert abs(depth[v, u] * 0.001 - s.trajectory_m[0, 2]) < 0.01, s.prompt
        mask = np.asarray(Image.open(out / s.mask_path)) > 0
        assert mask[v, u] and mask.sum() > 30
        assert s.destination.distance_m(s.trajectory_m[-1:])[0] == 0.0
        # Back to the robot's base frame: the first point is the top of the named object.
        camera = json.loads((out / Path(s.image_path).parent / "camera.json").read_text())
        base_T_camera = np.array(camera["base_T_camera"])
        start_base = base_T_camera[:3, :3] @ s.trajectory_m[0] + base_T_camera[:3, 3]
        scene = load_scene(out / s.extra["scene_path"])
        np.testing.assert_allclose(start_base, scene.item(s.target_object.removeprefix("the ")).top_centre, atol=1e-5)


def test_same_seed_same_files_other_seed_other_data(dataset: tuple[Path, object], tmp_path: Path) -> None:
    out, _ = dataset
    again = tmp_path / "again"
    generate_dataset(make_config(n_scenes=3, seed=5, **SIZE), again, progress=False)
    assert (again / "samples.jsonl").read_bytes() == (out / "samples.jsonl").read_bytes()
    assert (again / "dataset.json").read_bytes() == (out / "dataset.json").read_bytes()
    for name in ("image.png", "gt_depth.png", "scene.json"):
        assert (again / "scenes/0002" / name).read_bytes() == (out / "scenes/0002" / name).read_bytes()
    other = tmp_path / "other"
    generate_dataset(make_config(n_scenes=1, seed=6, **SIZE), other, progress=False)
    first = json.loads((other / "samples.jsonl").read_text().splitlines()[0])
    assert first["scene_seed"] != json.loads((out / "samples.jsonl").read_text().splitlines()[0])["scene_seed"]


def test_finetune_answers_parse_back_to_the_ground_truth(dataset: tuple[Path, object]) -> None:
    out, _ = dataset
    conversations = json.loads((out / "finetune_llava.json").read_text())
    samples = {str(s.question_id): s for s in read_benchmark(out / "samples.jsonl")}
    assert len(conversations) == len(samples)
    for conv in conversations:
        s = samples[conv["id"]]
        assert conv["image"] == s.image_path and conv["depth"] == s.depth_path
        assert f'"{s.prompt}"' in conv["conversations"][0]["value"]
        parsed = parse_answer(conv["conversations"][1]["value"], "robotracer", 320, 240)
        truth = project(s.trajectory_m, CameraIntrinsics.from_matrix(s.K, 320, 240))
        assert np.max(np.abs(parsed.uv - truth)) < 0.33  # half a step of the 0-1000 scale at 320 px
        np.testing.assert_allclose(parsed.depth_m, s.trajectory_m[:, 2], atol=5e-4)


def test_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="n_scenes"):
        make_config(n_scenes=0)
    with pytest.raises(ConfigError, match="unknown task category 'juggle'; available: "):
        make_config(n_scenes=1, categories=("juggle",))
    with pytest.raises(ConfigError, match="min_objects"):
        make_config(n_scenes=1, min_objects=5, max_objects=3)


# -- commands ----------------------------------------------------------------------------------------

def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_synth_and_export_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data"
    code, stdout, _ = _run(capsys, "synth", "--scenes", "1", "--out", str(out), "--seed", "2", "--image-size",
                           "320x240", "--tasks-per-scene", "2", "--categories", "pick_up,stack",
                           "--finetune-format", "sharegpt", "--no-progress", "--json")
    assert code == 0
    summary = json.loads(stdout)
    assert summary["n_scenes"] == 1 and summary["n_samples"] == 2
    assert set(summary["per_category"]) == {"pick_up", "stack"}
    shared = json.loads((out / "finetune_sharegpt.json").read_text())
    assert len(shared) == 2 and shared[0]["images"][0].startswith("scenes/0000/")

    code, _, err = _run(capsys, "synth", "--scenes", "1", "--out", str(out), "--image-size", "320x240")
    assert code == 2 and "already holds a dataset" in err and "--overwrite" in err

    code, stdout, _ = _run(capsys, "export-finetune", str(out), "--format", "llava", "--2d", "--max-points", "4")
    assert code == 0 and "wrote 2 conversations" in stdout
    answer = json.loads((out / "finetune_llava.json").read_text())[0]["conversations"][1]["value"]
    assert answer.count("(") == 4 and not parse_answer(answer, "robotracer", 320, 240).has_depth


def test_synth_command_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, expected in (
        (["--scenes", "0"], "n_scenes"),
        (["--scenes", "1", "--categories", "pick_up,fly"], "unknown task category 'fly'"),
        (["--scenes", "1", "--image-size", "big"], "not WIDTHxHEIGHT"),
    ):
        code, _, err = _run(capsys, "synth", "--out", str(tmp_path / "x"), *argv)
        assert code == 2 and expected in err, err
    code, _, err = _run(capsys, "export-finetune", str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in err
