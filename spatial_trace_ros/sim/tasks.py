"""Templated instructions and the small program that computes each one's ground-truth 3D trace.

An object-centric trace is the path the object should take: it starts at the object's top-face
centre (visible to the camera and where a top-down grasp holds it), lifts clear of everything on the
table, transports, and places the object so that its top-face centre ends where it would rest.
"Left", "right", "in front of" and "behind" are seen from the camera, as a person looking at the
image would say them. Everything is in the robot's ``base`` frame, in metres.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from spatial_trace_ros.errors import ModelError
from spatial_trace_ros.geometry.path import resample_by_count, smooth
from spatial_trace_ros.sim.scene import ObjectSpec, SceneSpec

BESIDE_GAP_M = 0.03
DEFAULT_LIFT_M = 0.15
DENSE_POINTS = 61

_OBJ = r"(?:the )?(?P<obj>[a-z]+ [a-z]+)"
_REF = r"(?:the )?(?P<ref>[a-z]+ [a-z]+)"
_DIST = r"(?P<dist>\d+(?:\.\d+)?) ?(?P<unit>mm|cm|m)"


@dataclass(frozen=True)
class Template:
    name: str
    pattern: re.Pattern
    example: str


# Tried in order: "in front of" must not be read as "in", nor "on top of" as "on".
TEMPLATES: tuple[Template, ...] = (
    Template(
        "place_beside",
        re.compile(rf"(?:move|put|place) {_OBJ} (?P<rel>to the left of|to the right of|in front of|behind) {_REF}"),
        "move the red cube to the left of the green cylinder",
    ),
    Template(
        "place_in",
        re.compile(rf"(?:move|put|place|drop) {_OBJ} (?:into|in|inside) {_REF}"),
        "move the red cube into the blue bowl",
    ),
    Template(
        "place_on",
        re.compile(rf"(?:move|put|place|stack) {_OBJ} (?:on top of|onto|on) {_REF}"),
        "put the red cube on top of the green cube",
    ),
    Template(
        "shift",
        re.compile(
            rf"(?:move|push|slide|shift) {_OBJ} {_DIST} (?:to the )?(?P<dir>left|right|forward|backward|back|up)"
        ),
        "move the red cube 10 cm to the left",
    ),
    Template(
        "pick_up",
        re.compile(rf"(?:pick up|lift|raise) {_OBJ}(?: (?:by )?{_DIST})?"),
        "pick up the yellow cube",
    ),
)
_UNITS_M = {"mm": 0.001, "cm": 0.01, "m": 1.0}


@dataclass(frozen=True, eq=False)
class TaskTrace:
    """The ground truth of one instruction: the template it matched, the objects it names, the
    object's goal (top-face centre at rest) and the trace (N x 3, base frame)."""

    instruction: str
    template: str
    obj: ObjectSpec
    reference: ObjectSpec | None
    goal_m: np.ndarray
    points_m: np.ndarray


def supported_instructions() -> str:
    return "; ".join(f"'{t.example}'" for t in TEMPLATES)


def normalise(instruction: str) -> str:
    text = re.sub(r"[^a-z0-9. ]+", " ", instruction.lower())
    text = re.sub(r"\s+", " ", text).strip().rstrip(".").strip()
    return re.sub(r"^please ", "", text)


def camera_directions(base_T_camera: np.ndarray) -> dict[str, np.ndarray]:
    """Unit table-plane directions as the camera sees them: image right/left, and 'behind' (image up,
    away from the camera) / 'in front of' (towards it)."""
    R = np.asarray(base_T_camera, float)[:3, :3]

    def flat(v: np.ndarray) -> np.ndarray:
        v = np.array([v[0], v[1], 0.0])
        n = np.linalg.norm(v)
        if n < 1e-6:
            raise ModelError("the camera is rolled so that left/right or front/behind are not defined on the table")
        return v / n

    right, behind = flat(R[:, 0]), flat(-R[:, 1])
    return {"right": right, "left": -right, "behind": behind, "front": -behind}


def _resolve(phrase: str, scene: SceneSpec) -> ObjectSpec:
    phrase = phrase.replace("block", "cube")
    for obj in scene.objects:
        if obj.name == phrase:
            return obj
    raise ModelError(f"there is no {phrase!r} in the scene; objects: {', '.join(scene.names)}")


def _lift_transport_place(start: np.ndarray, goal: np.ndarray, clear_z_m: float, n_points: int) -> np.ndarray:
    """Up from ``start`` to ``clear_z_m``, across, and down to ``goal``, with rounded corners."""
    corners = np.array([start, [*start[:2], clear_z_m], [*goal[:2], clear_z_m], goal])
    dense = smooth(resample_by_count(corners, DENSE_POINTS), window=11, polyorder=2)
    dense[:, 2] = np.maximum(dense[:, 2], np.minimum(start[2], goal[2]))  # smoothing never dips below the ends
    return resample_by_count(dense, n_points)


def plan_task(
    instruction: str,
    scene: SceneSpec,
    base_T_camera: np.ndarray,
    n_points: int = 10,
    clearance_m: float = 0.08,
) -> TaskTrace:
    """Match ``instruction`` to a template and run its program over the scene's ground truth.
    Raises ``ModelError`` naming the supported templates and the scene's objects when it cannot."""
    text = normalise(instruction)
    for template in TEMPLATES:
        match = template.pattern.fullmatch(text)
        if match is not None:
            break
    else:
        raise ModelError(
            f"the simulation oracle does not understand {instruction!r}; it answers instructions like "
            f"{supported_instructions()} (objects in this scene: {', '.join(scene.names)})"
        )
    groups = match.groupdict()
    obj = _resolve(groups["obj"], scene)
    if obj.is_receptacle:
        raise ModelError(f"the {obj.name} is a receptacle; the oracle moves cubes and cylinders only")
    ref = _resolve(groups["ref"], scene) if groups.get("ref") else None
    if ref is not None and ref.name == obj.name:
        raise ModelError(f"the instruction names the {obj.name} twice; name two different objects")
    height = obj.size_m[2]
    start = obj.top_centre
    name = template.name
    if name == "place_in" and not ref.is_receptacle:
        raise ModelError(f"the {ref.name} is not a receptacle; say 'on top of the {ref.name}' or name a bowl or tray")
    if name in ("place_in", "place_on"):
        goal = np.array([*ref.centre[:2], ref.floor_z_m + height])
    elif name == "place_beside":
        rel = groups["rel"]
        key = "left" if "left" in rel else "right" if "right" in rel else "front" if "front" in rel else "behind"
        offset = ref.footprint_radius_m + obj.footprint_radius_m + BESIDE_GAP_M
        goal = np.array([*(ref.centre[:2] + camera_directions(base_T_camera)[key][:2] * offset), height])
    elif name == "shift":
        distance = float(groups["dist"]) * _UNITS_M[groups["unit"]]
        key = {"forward": "behind", "backward": "front", "back": "front"}.get(groups["dir"], groups["dir"])
        if key == "up":
            goal = start + np.array([0.0, 0.0, distance])
        else:
            goal = np.array([*(obj.centre[:2] + camera_directions(base_T_camera)[key][:2] * distance), height])
    else:  # pick_up
        lift = float(groups["dist"]) * _UNITS_M[groups["unit"]] if groups.get("dist") else DEFAULT_LIFT_M
        goal = start + np.array([0.0, 0.0, lift])
    if name == "pick_up" or (name == "shift" and groups["dir"] == "up"):
        points = resample_by_count(np.array([start, goal]), n_points)
    else:
        tallest = max(o.top_z_m for o in scene.objects)
        clear_z = max(start[2], goal[2], tallest) + clearance_m
        points = _lift_transport_place(start, goal, clear_z, n_points)
    return TaskTrace(instruction, name, obj, ref, goal, points)
