"""Synthetic evaluation data with programmatic ground truth, in the TraceSpatial-Bench layout.

Per scene: a seeded random tabletop from the simulation (objects, colours, poses, camera pose and
lighting vary), rendered offscreen with MuJoCo (color, metric depth, and a segmentation that gives
each object's mask). Per task: an instruction from the templates in ``eval.synth_tasks`` and its
ground-truth trace from a small program over the scene's metadata, kept only when it passes every
check: on the table and not colliding (``synth_tasks``), and here, against the rendered frame, every
trace point inside the image with valid depth behind it, the moved object visible with its top face
(where the trace starts) unoccluded, and the goal not hidden behind something.

Output folder::

    samples.jsonl                    one sample per line, TraceSpatial-Bench fields (+ a few extras)
    dataset.json                     how it was made: seed, settings, counts, rejected candidates
    scenes/0000/image.png            RGB
    scenes/0000/gt_depth.png         16-bit depth, millimetres (depth_scale_m 0.001), 0 = no data
    scenes/0000/mask_<object>.png    the moved object's pixels (255)
    scenes/0000/camera.json          intrinsics, depth scale, base_T_camera
    scenes/0000/scene.json           the scene's ground truth (sim.scene.SceneSpec), read by the oracle

Everything follows from the seed: the same seed gives the same files.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.eval.dataset import DATASET_FILE
from spatial_trace_ros.eval.synth_tasks import (
    CATEGORIES,
    SynthTask,
    TaskContext,
    TaskRejectedError,
    check_categories,
    propose_task,
)
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics, project
from spatial_trace_ros.sim.scene import OPTICAL_FRAME, SceneSpec, generate_scene, sim_intrinsics

MANIFEST_FILE = "dataset.json"
SCENES_DIR = "scenes"
DEPTH_SCALE_M = 0.001
IMAGE_MARGIN_PX = 2
START_DEPTH_TOLERANCE_M = 0.015
GOAL_DEPTH_TOLERANCE_M = 0.015
MIN_TRACE_DEPTH_M = 0.1
PROPOSALS_PER_CATEGORY = 4
SCENE_ATTEMPTS_PER_SCENE = 4
DECIMALS = 6


class SynthConfig(BaseModel):
    """How a synthetic dataset is made. Units are in the names."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    n_scenes: int = Field(ge=1, le=100_000, description="scenes to write")
    seed: int = Field(0, ge=0, description="master seed; the same seed gives the same dataset")
    width: int = Field(640, ge=64, le=1920, description="image width [px]")
    height: int = Field(480, ge=48, le=1080, description="image height [px]")
    tasks_per_scene: int = Field(3, ge=1, le=20, description="instructions per scene")
    categories: tuple[str, ...] = Field(tuple(CATEGORIES), description="task categories to draw from")
    robot: Literal["ur5", "ur5e"] = Field("ur5e", description="arm standing at the table")
    min_objects: int = Field(3, ge=2, le=6, description="fewest cubes and cylinders per scene")
    max_objects: int = Field(5, ge=2, le=6, description="most cubes and cylinders per scene")
    min_receptacles: int = Field(1, ge=0, le=2, description="fewest bowls and trays per scene")
    max_receptacles: int = Field(2, ge=0, le=2, description="most bowls and trays per scene")
    camera_jitter_m: float = Field(0.05, ge=0.0, le=0.2, description="camera position noise, uniform per axis [m]")
    camera_jitter_rad: float = Field(0.06, ge=0.0, le=0.3, description="camera rotation noise, uniform per axis [rad]")
    vary_lighting: bool = Field(True, description="random light directions and strengths per scene")
    n_points: int = Field(10, ge=2, le=100, description="points per ground-truth trace")
    clearance_m: float = Field(0.08, ge=0.0, le=0.5, description="transport height above the tallest object [m]")

    @model_validator(mode="after")
    def _ranges(self) -> SynthConfig:
        check_categories(self.categories)
        if self.min_objects > self.max_objects or self.min_receptacles > self.max_receptacles:
            raise ValueError("min_objects/min_receptacles must not exceed max_objects/max_receptacles")
        return self


def make_config(**values: object) -> SynthConfig:
    """``SynthConfig(**values)`` with every problem named in one ``ConfigError``."""
    try:
        return SynthConfig(**values)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"invalid synth settings: {problems}") from None


@dataclass(frozen=True, eq=False)
class RenderedScene:
    """What the camera saw: color, depth (uint16 mm), each object's mask, intrinsics and pose."""

    color: np.ndarray
    depth_mm: np.ndarray
    masks: dict[str, np.ndarray]
    intrinsics: CameraIntrinsics
    base_T_camera: np.ndarray  # noqa: N815 - the project's frame-naming convention


def render_scene(scene: SceneSpec, robot: str) -> RenderedScene:
    """Render ``scene`` offscreen: color, depth and segmentation from the scene's camera."""
    from spatial_trace_ros.sim.gl_backend import select_gl_backend

    select_gl_backend()  # MuJoCo reads MUJOCO_GL once, when it is first imported
    import mujoco

    from spatial_trace_ros.sim.camera import SimCameraOptions, depth_image_mm
    from spatial_trace_ros.sim.config import WorldConfig
    from spatial_trace_ros.sim.mjcf import body_name
    from spatial_trace_ros.sim.world import World

    cam = scene.camera
    world = World(WorldConfig(robot=robot, width=cam.width, height=cam.height), scene=scene)
    limits = SimCameraOptions()
    renderer = mujoco.Renderer(world.model, cam.height, cam.width)
    try:
        world.update_renderer(renderer)
        color = renderer.render().copy()
        renderer.enable_depth_rendering()
        depth_m = renderer.render().copy()
        renderer.disable_depth_rendering()
        renderer.enable_segmentation_rendering()
        segmentation = renderer.render().copy()
        renderer.disable_segmentation_rendering()
    finally:
        renderer.close()
    geom_body = np.asarray(world.model.geom_bodyid)
    ids, types = segmentation[..., 0], segmentation[..., 1]
    is_geom = (types == int(mujoco.mjtObj.mjOBJ_GEOM)) & (ids >= 0)
    body_of_pixel = np.where(is_geom, geom_body[np.clip(ids, 0, len(geom_body) - 1)], -1)
    masks = {}
    for obj in scene.objects:
        masks[obj.name] = body_of_pixel == world.model.body(body_name(obj.name)).id
    return RenderedScene(color, depth_image_mm(depth_m, limits.min_depth_m, limits.max_depth_m), masks,
                         sim_intrinsics(cam), cam.parent_T_camera.matrix)


def check_in_image(task: SynthTask, view: RenderedScene) -> np.ndarray:
    """The trace in the camera frame, after the image checks; ``TaskRejectedError`` names the failure."""
    camera_T_base = np.linalg.inv(view.base_T_camera)
    points = task.points_m @ camera_T_base[:3, :3].T + camera_T_base[:3, 3]
    if np.any(points[:, 2] < MIN_TRACE_DEPTH_M):
        raise TaskRejectedError("in_view", f"{task.category}: the trace passes behind the camera")
    intr = view.intrinsics
    uv = project(points, intr)
    px = np.rint(uv).astype(int)
    inside = (px[:, 0] >= IMAGE_MARGIN_PX) & (px[:, 0] < intr.width - IMAGE_MARGIN_PX) \
        & (px[:, 1] >= IMAGE_MARGIN_PX) & (px[:, 1] < intr.height - IMAGE_MARGIN_PX)
    if not np.all(inside):
        raise TaskRejectedError("in_view", f"{task.category}: {int(np.sum(~inside))} trace points leave the image")
    depth = view.depth_mm[px[:, 1], px[:, 0]].astype(float) * DEPTH_SCALE_M
    if np.any(depth == 0):
        raise TaskRejectedError("depth", f"{task.category}: no depth behind {int(np.sum(depth == 0))} trace points")
    mask = view.masks[task.target.name]
    if not mask[px[0, 1], px[0, 0]] or abs(depth[0] - points[0, 2]) > START_DEPTH_TOLERANCE_M:
        raise TaskRejectedError("occluded", f"{task.category}: the top of the {task.target.name} is hidden")
    if depth[-1] < points[-1, 2] - GOAL_DEPTH_TOLERANCE_M:
        raise TaskRejectedError("occluded", f"{task.category}: the goal is hidden behind something")
    return points


def _camera_box(task: SynthTask, base_T_camera: np.ndarray) -> dict[str, list]:
    """The destination box in the camera frame, in the benchmark's fields (rotation columns = box axes)."""
    camera_T_base = np.linalg.inv(base_T_camera)
    box = task.destination
    center = camera_T_base[:3, :3] @ np.asarray(box.center_m) + camera_T_base[:3, 3]
    rotation = camera_T_base[:3, :3] @ box.rotation()
    return {"bbox_center": _rounded(center), "bbox_extent": _rounded(box.extent_m),
            "bbox_rotation": _rounded(rotation)}


def _rounded(values: object) -> list:
    return np.round(np.asarray(values, dtype=float), DECIMALS).tolist()


def _mask_file(name: str) -> str:
    return "mask_" + name.replace(" ", "_") + ".png"


@dataclass
class SynthResult:
    """What was written, and what was rejected on the way (by check)."""

    out_dir: Path
    n_scenes: int
    n_samples: int
    per_category: dict[str, int]
    rejected: dict[str, int]
    elapsed_s: float
    finetune_files: list[Path] = field(default_factory=list)

    @property
    def scenes_per_s(self) -> float:
        return self.n_scenes / self.elapsed_s if self.elapsed_s > 0 else float("nan")


def _prepare_out_dir(out: Path, overwrite: bool) -> None:
    existing = [p for p in (out / DATASET_FILE, out / MANIFEST_FILE, out / SCENES_DIR) if p.exists()]
    if existing and not overwrite:
        raise ConfigError(f"{out} already holds a dataset ({existing[0].name}); choose another --out or pass "
                          "--overwrite to replace it")
    out.mkdir(parents=True, exist_ok=True)
    for path in existing:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    for path in out.glob("finetune_*.json"):
        path.unlink()


def _scene_tasks(scene: SceneSpec, view: RenderedScene, config: SynthConfig, rng: np.random.Generator,
                 first_category: int, rejected: Counter) -> list[tuple[SynthTask, np.ndarray]]:
    """Up to ``tasks_per_scene`` checked tasks, cycling through the categories for balance."""
    ctx = TaskContext(scene, view.base_T_camera, config.n_points, config.clearance_m)
    categories = list(config.categories)
    kept: list[tuple[SynthTask, np.ndarray]] = []
    seen: set[str] = set()
    for slot in range(config.tasks_per_scene):
        start = (first_category + slot) % len(categories)
        for category in categories[start:] + categories[:start]:
            task = None
            for _ in range(PROPOSALS_PER_CATEGORY):
                try:
                    candidate = propose_task(category, ctx, rng)
                    if candidate.instruction in seen:
                        raise TaskRejectedError("duplicate", f"{category}: instruction already used in this scene")
                    points_cam = check_in_image(candidate, view)
                except TaskRejectedError as err:
                    rejected[err.check] += 1
                    continue
                task = candidate
                break
            if task is not None:
                kept.append((task, points_cam))
                seen.add(task.instruction)
                break
    return kept


def _write_scene(folder: Path, scene: SceneSpec, view: RenderedScene, targets: set[str]) -> None:
    folder.mkdir(parents=True)
    Image.fromarray(view.color).save(folder / "image.png")
    if not cv2.imwrite(str(folder / "gt_depth.png"), view.depth_mm):
        raise ConfigError(f"could not write {folder / 'gt_depth.png'}; check the disk and permissions")
    for name in sorted(targets):
        Image.fromarray(view.masks[name].astype(np.uint8) * 255).save(folder / _mask_file(name))
    intr = view.intrinsics
    camera = {"intrinsics": {"fx": intr.fx, "fy": intr.fy, "cx": intr.cx, "cy": intr.cy, "width": intr.width,
                             "height": intr.height},
              "depth_scale_m": DEPTH_SCALE_M, "frame_id": OPTICAL_FRAME,
              "base_T_camera": _rounded(view.base_T_camera)}
    (folder / "camera.json").write_text(json.dumps(camera, indent=1) + "\n")
    (folder / "scene.json").write_text(scene.to_json() + "\n")


def _record(qid: int, folder: str, task: SynthTask, points_cam: np.ndarray, view: RenderedScene,
            scene: SceneSpec, robot: str) -> dict[str, object]:
    intr = view.intrinsics
    return {
        "question_id": qid,
        "image_path": f"{folder}/image.png",
        "gt_depth_path": f"{folder}/gt_depth.png",
        "mask_path": f"{folder}/{_mask_file(task.target.name)}",
        "gt_depth_intrinsics": _rounded(intr.K),
        "prompt": task.instruction,
        "target_object": f"the {task.target.name}",
        "destination|direction": task.destination_text,
        "trajectory": _rounded(points_cam),
        **_camera_box(task, view.base_T_camera),
        "step": task.difficulty,
        "category": task.category,
        "image_width": intr.width,
        "image_height": intr.height,
        "depth_scale_m": DEPTH_SCALE_M,
        "scene_path": f"{folder}/scene.json",
        "scene_seed": scene.seed,
        "robot": robot,
    }


def generate_dataset(
    config: SynthConfig,
    out_dir: str | Path,
    overwrite: bool = False,
    progress: bool = True,
    finetune_formats: Sequence[str] = (),
) -> SynthResult:
    """Write ``config.n_scenes`` scenes and their checked tasks to ``out_dir``; see the module docs."""
    from tqdm import tqdm

    from spatial_trace_ros.eval.finetune_export import LAYOUTS

    for fmt in finetune_formats:
        if fmt not in LAYOUTS:
            raise ConfigError(f"unknown fine-tuning format {fmt!r}; available: {', '.join(LAYOUTS)}")
    out = Path(out_dir)
    _prepare_out_dir(out, overwrite)
    started = time.perf_counter()
    rejected: Counter = Counter()
    per_category: Counter = Counter()
    records: list[dict[str, object]] = []
    n_kept = attempt = 0
    max_attempts = config.n_scenes * SCENE_ATTEMPTS_PER_SCENE
    with tqdm(total=config.n_scenes, unit="scene", desc="synth", disable=not progress, file=sys.stderr) as bar:
        while n_kept < config.n_scenes:
            if attempt >= max_attempts:
                raise ConfigError(
                    f"only {n_kept} of {config.n_scenes} scenes produced a task that passed every check after "
                    f"{attempt} tries (rejected: {dict(rejected)}); allow more categories or objects")
            rng = np.random.default_rng([config.seed, attempt])
            scene_seed = int(rng.integers(0, 2**31 - 1))
            attempt += 1
            try:
                scene = generate_scene(
                    scene_seed, int(rng.integers(config.min_objects, config.max_objects + 1)),
                    int(rng.integers(config.min_receptacles, config.max_receptacles + 1)), "eye_to_hand",
                    config.width, config.height, config.camera_jitter_m, config.camera_jitter_rad,
                    config.vary_lighting)
            except ConfigError:
                rejected["placement"] += 1
                continue
            view = render_scene(scene, config.robot)
            tasks = _scene_tasks(scene, view, config, rng, len(records), rejected)
            if not tasks:
                rejected["empty_scene"] += 1
                continue
            folder = f"{SCENES_DIR}/{n_kept:04d}"
            _write_scene(out / folder, scene, view, {t.target.name for t, _ in tasks})
            for task, points_cam in tasks:
                records.append(_record(len(records), folder, task, points_cam, view, scene, config.robot))
                per_category[task.category] += 1
            n_kept += 1
            bar.update(1)
    with (out / DATASET_FILE).open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    per_difficulty = Counter(str(r["step"]) for r in records)
    manifest = {
        "generator": "spatial-trace synth", "config": json.loads(config.model_dump_json()),
        "n_scenes": n_kept, "n_samples": len(records), "scene_attempts": attempt,
        "per_category": dict(sorted(per_category.items())), "per_difficulty": dict(sorted(per_difficulty.items())),
        "rejected_candidates": dict(sorted(rejected.items())), "samples_file": DATASET_FILE,
        "depth_scale_m": DEPTH_SCALE_M,
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n")
    result = SynthResult(out, n_kept, len(records), dict(per_category), dict(rejected),
                         time.perf_counter() - started)
    if finetune_formats:
        from spatial_trace_ros.eval.dataset import read_benchmark
        from spatial_trace_ros.eval.finetune_export import export_finetune

        samples = read_benchmark(out / DATASET_FILE)
        for fmt in finetune_formats:
            export = export_finetune(samples, out / f"finetune_{fmt}.json", layout=fmt, dataset_dir=out)  # type: ignore[arg-type]
            result.finetune_files.append(export.path)
    return result
