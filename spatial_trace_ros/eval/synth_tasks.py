"""Instruction templates of growing difficulty for synthetic data, with their ground truth.

Each category draws objects from a simulated scene (``sim.scene.SceneSpec``), writes an instruction,
and computes the object-centric ground-truth trace with a small program over the scene's metadata:

| category | difficulty (``step``) | example |
|---|---|---|
| ``pick_up`` | 1 | "pick up the red cube" (the reach level: one object, no reference) |
| ``shift`` | 2 | "move the red cube 15 cm to the left" |
| ``move_to`` | 2 | "put the red cube into the blue bowl" |
| ``stack`` | 3 | "put the red cube on top of the green cylinder" |
| ``place_relative`` | 3 | "move the red cube to the left of the green cylinder" (left/right/in front of/behind) |
| ``go_around`` | 4 | "slide the red cube to the right of the blue bowl, passing behind the green cube" |

Every category is a template the simulation's oracle understands, and every trace comes from the
same program (``sim.tasks.plan_task``), so a dataset and the oracle can never disagree about what an
instruction means. What is chosen here is the task itself: which objects, which relation, and for
``go_around`` a third object that blocks the straight slide and the side to pass it on (the
collision-free side, the shorter one when both are free). Left/right/front/behind are as the camera
sees them (``sim.tasks.camera_directions``).

A candidate is kept only when its trace passes the scene checks here: on the table, and not
colliding (the moved object, carried along the trace, never penetrates another object); the image
checks (inside the image, depth valid, visible) need the rendered frame and live in ``eval.synth``.
Everything is in the robot's ``base`` frame, metres.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from spatial_trace_ros.errors import ConfigError, ModelError, format_choices
from spatial_trace_ros.eval.success import VoxelScene, collision_fraction
from spatial_trace_ros.geometry.path import path_length
from spatial_trace_ros.sim.scene import ObjectSpec, SceneSpec
from spatial_trace_ros.sim.tasks import (
    RELATION_PHRASES,
    beside_goal_xy,
    camera_directions,
    go_around_instruction,
    go_around_radius_m,
    passing_direction,
    plan_task,
)

# Collision check: the moved object's core (its volume shrunk by CONTACT_MARGIN_M on every side) must
# never enter a voxel the other objects occupy. Occupied voxels reach at most one voxel beyond an
# object's surface, so resting contact (stacked, side by side, inside a bowl) passes and a real
# penetration deeper than the margin fails.
COLLISION_VOXEL_M = 0.01
CONTACT_MARGIN_M = 0.012
SAMPLE_SPACING_M = 0.004
TABLE_TOLERANCE_M = 0.002
GO_AROUND_TRIES = 6
BOX_SLACK_M = 0.02

RELATIONS: dict[str, str] = RELATION_PHRASES


@dataclass(frozen=True)
class BaseBox:
    """An upright box in the base frame: centre, full extents, yaw about z (the destination region)."""

    center_m: tuple[float, float, float]
    extent_m: tuple[float, float, float]
    yaw_rad: float = 0.0

    def rotation(self) -> np.ndarray:
        c, s = math.cos(self.yaw_rad), math.sin(self.yaw_rad)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    def contains(self, point: np.ndarray, tol_m: float = 1e-6) -> bool:
        local = (np.asarray(point, float) - np.asarray(self.center_m)) @ self.rotation()
        return bool(np.all(np.abs(local) <= np.asarray(self.extent_m) / 2 + tol_m))


@dataclass(frozen=True, eq=False)
class SynthTask:
    """One instruction with its ground truth: trace (N, 3) and destination box in the base frame."""

    category: str
    difficulty: int
    instruction: str
    target: ObjectSpec
    destination_text: str
    points_m: np.ndarray
    destination: BaseBox
    reference: ObjectSpec | None = None
    via: ObjectSpec | None = None


class TaskRejectedError(Exception):
    """A candidate failed a check. ``check`` names the check (counted in the dataset's manifest), the
    message says what exactly failed."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check


# -- object volumes -----------------------------------------------------------------------------------

def _grid(lo: Sequence[float], hi: Sequence[float], spacing_m: float) -> np.ndarray:
    axes = [np.linspace(a, b, max(2, math.ceil((b - a) / spacing_m) + 1)) for a, b in zip(lo, hi)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def _to_base(local: np.ndarray, obj: ObjectSpec) -> np.ndarray:
    c, s = math.cos(obj.yaw_rad), math.sin(obj.yaw_rad)
    R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return local @ R.T + obj.centre


def solid_points(obj: ObjectSpec, inset_m: float = 0.0, spacing_m: float = SAMPLE_SPACING_M) -> np.ndarray:
    """Points filling ``obj`` (cubes, cylinders) or its walls and floor (bowls, trays), shrunk by
    ``inset_m`` on every side; base frame."""
    hx, hy, hz = (v / 2 - inset_m for v in obj.size_m)
    if min(hx, hy, hz) <= 0:
        raise ConfigError(f"the {obj.name} is too small for an inset of {inset_m} m")
    pts = _grid((-hx, -hy, -hz), (hx, hy, hz), spacing_m)
    if obj.kind in ("cylinder", "bowl"):
        r = np.hypot(pts[:, 0], pts[:, 1])
        pts = pts[r <= hx + 1e-9]
    if obj.is_receptacle:
        wall = max(obj.wall_m, spacing_m)
        if obj.kind == "bowl":
            shell = np.hypot(pts[:, 0], pts[:, 1]) >= hx - wall
        else:
            shell = (np.abs(pts[:, 0]) >= hx - wall) | (np.abs(pts[:, 1]) >= hy - wall)
        pts = pts[shell | (pts[:, 2] <= -hz + wall)]
    return _to_base(pts, obj)


class SceneVolumes:
    """The scene's objects as point sets, computed once per scene for the collision checks."""

    def __init__(self, scene: SceneSpec) -> None:
        self.scene = scene
        self._solid: dict[str, np.ndarray] = {}
        self._core: dict[str, np.ndarray] = {}
        self._voxels: dict[str, VoxelScene] = {}

    def solid(self, obj: ObjectSpec) -> np.ndarray:
        if obj.name not in self._solid:
            self._solid[obj.name] = solid_points(obj)
        return self._solid[obj.name]

    def core(self, obj: ObjectSpec) -> np.ndarray:
        if obj.name not in self._core:
            self._core[obj.name] = solid_points(obj, inset_m=CONTACT_MARGIN_M)
        return self._core[obj.name]

    def obstacles(self, target: ObjectSpec) -> VoxelScene:
        """Voxels of every object but ``target``."""
        if target.name not in self._voxels:
            others = [self.solid(o) for o in self.scene.objects if o.name != target.name]
            self._voxels[target.name] = VoxelScene(np.vstack(others) if others else np.empty((0, 3)),
                                                   COLLISION_VOXEL_M)
        return self._voxels[target.name]


def trace_collides(volumes: SceneVolumes, target: ObjectSpec, points_m: np.ndarray) -> tuple[str, str] | None:
    """Why carrying ``target`` along the trace (its top-face centre's path) is not possible, as
    (check, reason) with check ``table`` or ``collision``; None when it is."""
    scene = volumes.scene
    lowest = float(np.min(points_m[:, 2])) - target.size_m[2]
    if lowest < -TABLE_TOLERANCE_M:
        return "table", f"the trace sinks the {target.name} {-lowest * 100:.1f} cm into the table"
    t = scene.table
    r = target.footprint_radius_m
    xy = points_m[:, :2]
    if np.any((xy[:, 0] < t.x_m[0] + r) | (xy[:, 0] > t.x_m[1] - r) | (xy[:, 1] < t.y_m[0] + r)
              | (xy[:, 1] > t.y_m[1] - r)):
        return "table", f"the trace carries the {target.name} off the table"
    core = volumes.core(target)
    # The trace follows the top-face centre; the core is carried by the same offsets.
    if collision_fraction(points_m, core, volumes.obstacles(target)) > 0.0:
        for other in scene.objects:
            if other.name != target.name and collision_fraction(
                    points_m, core, VoxelScene(volumes.solid(other), COLLISION_VOXEL_M)) > 0.0:
                return "collision", f"the {target.name} would hit the {other.name}"
    return None


# -- destination boxes --------------------------------------------------------------------------------

def _box_at_goal(target: ObjectSpec, goal: np.ndarray) -> BaseBox:
    """The object's own bounding box with its top-face centre at ``goal`` (a little taller)."""
    sx, sy, sz = target.size_m
    centre = np.asarray(goal, float) + np.array([0.0, 0.0, (BOX_SLACK_M - sz) / 2])
    return BaseBox(tuple(float(v) for v in centre), (sx, sy, sz + BOX_SLACK_M), target.yaw_rad)


def _box_inside(receptacle: ObjectSpec, target: ObjectSpec, goal: np.ndarray) -> BaseBox:
    """The receptacle's inner volume, from its floor up to the top of the object resting in it."""
    inner_x = receptacle.size_m[0] - 2 * receptacle.wall_m
    inner_y = receptacle.size_m[1] - 2 * receptacle.wall_m
    z0, z1 = receptacle.floor_z_m, float(goal[2]) + BOX_SLACK_M
    return BaseBox((receptacle.position_m[0], receptacle.position_m[1], (z0 + z1) / 2), (inner_x, inner_y, z1 - z0),
                   receptacle.yaw_rad)


def _box_on_top(support: ObjectSpec, goal: np.ndarray) -> BaseBox:
    """The column above the support's footprint, up to the top of the object stacked on it."""
    z0, z1 = support.top_z_m, float(goal[2]) + BOX_SLACK_M
    return BaseBox((support.position_m[0], support.position_m[1], (z0 + z1) / 2),
                   (support.size_m[0], support.size_m[1], z1 - z0), support.yaw_rad)


# -- the categories -----------------------------------------------------------------------------------

def _movable(scene: SceneSpec) -> list[ObjectSpec]:
    return [o for o in scene.objects if not o.is_receptacle]


def _pick(rng: np.random.Generator, items: Sequence[ObjectSpec], exclude: Sequence[ObjectSpec] = ()) -> ObjectSpec:
    names = {o.name for o in exclude}
    pool = [o for o in items if o.name not in names]
    if not pool:
        raise TaskRejectedError("no_candidate", "the scene has no suitable object")
    return pool[int(rng.integers(len(pool)))]


def _choice(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _planned(category: str, instruction: str, scene: SceneSpec, base_T_camera: np.ndarray, n_points: int,
             clearance_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Trace and goal from the simulation's task program (the oracle's own)."""
    try:
        truth = plan_task(instruction, scene, base_T_camera, n_points, clearance_m)
    except ModelError as err:
        raise TaskRejectedError("template", f"{category}: {err}") from None
    return truth.points_m, truth.goal_m


@dataclass(frozen=True, eq=False)
class TaskContext:
    """What the task programs need: the scene (and its volumes), the camera pose, trace settings."""

    scene: SceneSpec
    base_T_camera: np.ndarray  # noqa: N815 - the project's frame-naming convention
    n_points: int = 10
    clearance_m: float = 0.08
    volumes: SceneVolumes = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "volumes", SceneVolumes(self.scene))


def _pick_up(ctx: TaskContext, rng: np.random.Generator) -> SynthTask:
    obj = _pick(rng, _movable(ctx.scene))
    lift_cm = _choice(rng, ["", "10", "15", "20"])
    verb = _choice(rng, ["pick up", "lift", "raise"])
    instruction = f"{verb} the {obj.name}" + (f" by {lift_cm} cm" if lift_cm else "")
    points, goal = _planned("pick_up", instruction, ctx.scene, ctx.base_T_camera, ctx.n_points, ctx.clearance_m)
    text = f"up by {lift_cm} cm" if lift_cm else "up"
    return SynthTask("pick_up", 1, instruction, obj, text, points, _box_at_goal(obj, goal))


def _shift(ctx: TaskContext, rng: np.random.Generator) -> SynthTask:
    obj = _pick(rng, _movable(ctx.scene))
    direction = _choice(rng, ["to the left", "to the right", "forward", "backward"])
    distance_cm = _choice(rng, ["10", "15", "20"])
    verb = _choice(rng, ["move", "push", "slide", "shift"])
    instruction = f"{verb} the {obj.name} {distance_cm} cm {direction}"
    points, goal = _planned("shift", instruction, ctx.scene, ctx.base_T_camera, ctx.n_points, ctx.clearance_m)
    return SynthTask("shift", 2, instruction, obj, f"{distance_cm} cm {direction}", points, _box_at_goal(obj, goal))


def _move_to(ctx: TaskContext, rng: np.random.Generator) -> SynthTask:
    receptacles = [o for o in ctx.scene.objects if o.is_receptacle]
    if not receptacles:
        raise TaskRejectedError("no_candidate", "move_to: the scene has no bowl or tray")
    obj = _pick(rng, _movable(ctx.scene))
    ref = _pick(rng, receptacles)
    verb, prep = _choice(rng, ["put", "move", "place", "drop"]), _choice(rng, ["into", "in"])
    instruction = f"{verb} the {obj.name} {prep} the {ref.name}"
    points, goal = _planned("move_to", instruction, ctx.scene, ctx.base_T_camera, ctx.n_points, ctx.clearance_m)
    return SynthTask("move_to", 2, instruction, obj, f"{prep} the {ref.name}", points, _box_inside(ref, obj, goal),
                     reference=ref)


def _stack(ctx: TaskContext, rng: np.random.Generator) -> SynthTask:
    movable = _movable(ctx.scene)
    obj = _pick(rng, movable)
    ref = _pick(rng, movable, exclude=[obj])
    verb, prep = _choice(rng, ["put", "place", "stack"]), _choice(rng, ["on top of", "onto", "on"])
    instruction = f"{verb} the {obj.name} {prep} the {ref.name}"
    points, goal = _planned("stack", instruction, ctx.scene, ctx.base_T_camera, ctx.n_points, ctx.clearance_m)
    return SynthTask("stack", 3, instruction, obj, f"{prep} the {ref.name}", points, _box_on_top(ref, goal),
                     reference=ref)


def _place_relative(ctx: TaskContext, rng: np.random.Generator) -> SynthTask:
    obj = _pick(rng, _movable(ctx.scene))
    ref = _pick(rng, ctx.scene.objects, exclude=[obj])
    relation = RELATIONS[_choice(rng, list(RELATIONS))]
    verb = _choice(rng, ["move", "put", "place"])
    instruction = f"{verb} the {obj.name} {relation} the {ref.name}"
    points, goal = _planned("place_relative", instruction, ctx.scene, ctx.base_T_camera, ctx.n_points,
                            ctx.clearance_m)
    return SynthTask("place_relative", 3, instruction, obj, f"{relation} the {ref.name}", points,
                     _box_at_goal(obj, goal), reference=ref)


def _blockers(start_xy: np.ndarray, goal_xy: np.ndarray, obj: ObjectSpec, others: Sequence[ObjectSpec]) -> list:
    """Objects whose footprint crosses the straight path from start to goal, well between the two."""
    travel = goal_xy - start_xy
    length = float(np.linalg.norm(travel))
    out = []
    for other in others:
        radius = go_around_radius_m(obj, other)
        along = float((other.centre[:2] - start_xy) @ travel / length) if length > 1e-6 else 0.0
        gap = float(np.linalg.norm(start_xy + along * travel / max(length, 1e-6) - other.centre[:2]))
        if along - radius > 0 and along + radius < length and gap < other.footprint_radius_m + obj.footprint_radius_m:
            out.append(other)
    return out


def _go_around(ctx: TaskContext, rng: np.random.Generator) -> SynthTask:
    scene = ctx.scene
    dirs = camera_directions(ctx.base_T_camera)
    # Every (object, reference, side) whose straight path is blocked by a third object, in random order.
    options = []
    for obj in _movable(scene):
        for ref in scene.objects:
            if ref.name == obj.name:
                continue
            for key in RELATIONS:
                goal_xy = beside_goal_xy(obj, ref, dirs[key])
                others = [o for o in scene.objects if o.name not in (obj.name, ref.name)]
                for via in _blockers(obj.centre[:2], goal_xy, obj, others):
                    options.append((obj, ref, key, goal_xy, via))
    if not options:
        raise TaskRejectedError("no_candidate", "go_around: no object stands between another object and a goal")
    blocked = ""
    for index in rng.permutation(len(options))[:GO_AROUND_TRIES]:
        obj, ref, key, goal_xy, via = options[int(index)]
        # Both sides, each in the words that name it; the simulation's program turns the words into the trace.
        candidates = []
        for side in (1.0, -1.0):
            passing = passing_direction(obj.top_centre[:2], goal_xy, side, ctx.base_T_camera)
            instruction = go_around_instruction(obj.name, key, ref.name, passing, via.name)
            try:
                points, goal = _planned("go_around", instruction, scene, ctx.base_T_camera, ctx.n_points,
                                        ctx.clearance_m)
            except TaskRejectedError as err:
                blocked = str(err)
                continue
            problem = trace_collides(ctx.volumes, obj, points)
            if problem is None:
                candidates.append((path_length(points), instruction, points, goal))
            else:
                blocked = problem[1]
        if candidates:
            break
    else:
        raise TaskRejectedError("collision", f"go_around: every detour tried is blocked (last: {blocked})")
    _, instruction, points, goal = min(candidates, key=lambda c: c[0])
    relation = RELATIONS[key]
    return SynthTask("go_around", 4, instruction, obj, f"{relation} the {ref.name}", points, _box_at_goal(obj, goal),
                     reference=ref, via=via)


CATEGORIES: dict[str, tuple[int, Callable[[TaskContext, np.random.Generator], SynthTask]]] = {
    "pick_up": (1, _pick_up),
    "shift": (2, _shift),
    "move_to": (2, _move_to),
    "stack": (3, _stack),
    "place_relative": (3, _place_relative),
    "go_around": (4, _go_around),
}
ORACLE_CATEGORIES = tuple(CATEGORIES)  # the oracle understands every category


def check_categories(names: Sequence[str]) -> list[str]:
    """The category names, validated (unknown ones are answered with the known ones)."""
    out = []
    for name in names:
        if name not in CATEGORIES:
            raise ConfigError(format_choices("task category", name, list(CATEGORIES)))
        if name not in out:
            out.append(name)
    if not out:
        raise ConfigError(f"name at least one task category; available: {', '.join(CATEGORIES)}")
    return out


def propose_task(category: str, ctx: TaskContext, rng: np.random.Generator) -> SynthTask:
    """One candidate of ``category`` that passed the scene checks, or ``TaskRejectedError`` saying why."""
    task = CATEGORIES[category][1](ctx, rng)
    problem = trace_collides(ctx.volumes, task.target, task.points_m)
    if problem is not None:
        raise TaskRejectedError(problem[0], f"{category}: {problem[1]}")
    return task
