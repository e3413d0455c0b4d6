"""Templated instructions and the small program that computes each one's ground-truth 3D trace.

An object-centric trace is the path the object should take: it starts at the object's top-face
centre (visible to the camera and where a top-down grasp holds it), lifts clear of everything on the
table, transports, and places the object so that its top-face centre ends where it would rest. The
one exception is "go around": the object slides on the table and detours around a third object on
the named side. "Left", "right", "in front of" and "behind" are seen from the camera, as a person
looking at the image would say them. Everything is in the robot's ``base`` frame, in metres.

These programs are the single source of ground truth: the simulation's oracle answers with them and
the synthetic-data generator (``eval.synth_tasks``, downstream) writes its labels with them.
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
# Go around: the detour is a half circle around the obstacle whose radius keeps this gap between the
# two objects' footprint circles; a named passing side must lie at least PASSING_MIN_COSINE across the
# direction of travel ("passing behind" means nothing while moving straight away from the camera).
GO_AROUND_CLEARANCE_M = 0.025
DETOUR_ARC_POINTS = 13
DETOUR_SMOOTH_WINDOW = 7
PASSING_MIN_COSINE = 0.3

# Camera-relative relations: key (as in ``camera_directions``) -> the words an instruction uses.
RELATION_PHRASES: dict[str, str] = {
    "left": "to the left of",
    "right": "to the right of",
    "front": "in front of",
    "behind": "behind",
}
_RELATION_KEYS = {phrase: key for key, phrase in RELATION_PHRASES.items()}

_OBJ = r"(?:the )?(?P<obj>[a-z]+ [a-z]+)"
_REF = r"(?:the )?(?P<ref>[a-z]+ [a-z]+)"
_VIA = r"(?:the )?(?P<via>[a-z]+ [a-z]+)"
_REL = "|".join(RELATION_PHRASES.values())
_DIST = r"(?P<dist>\d+(?:\.\d+)?) ?(?P<unit>mm|cm|m)"


@dataclass(frozen=True)
class Template:
    name: str
    pattern: re.Pattern
    example: str


# Tried in order: "in front of" must not be read as "in", nor "on top of" as "on".
TEMPLATES: tuple[Template, ...] = (
    Template(
        "go_around",
        re.compile(rf"(?:slide|move|push) {_OBJ} (?P<rel>{_REL}) {_REF} (?:passing|going) (?P<passing>{_REL}) {_VIA}"),
        "slide the red cube to the right of the blue bowl, passing behind the green cube",
    ),
    Template(
        "place_beside",
        re.compile(rf"(?:move|put|place) {_OBJ} (?P<rel>{_REL}) {_REF}"),
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
    """The ground truth of one instruction: the template it matched, the objects it names (``via``:
    the object to go around), the object's goal (top-face centre at rest) and the trace (N x 3, base
    frame)."""

    instruction: str
    template: str
    obj: ObjectSpec
    reference: ObjectSpec | None
    goal_m: np.ndarray
    points_m: np.ndarray
    via: ObjectSpec | None = None


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


def beside_goal_xy(obj: ObjectSpec, ref: ObjectSpec, direction_xy: np.ndarray) -> np.ndarray:
    """Where ``obj``'s centre rests beside ``ref`` along the unit table direction ``direction_xy``: their
    footprint circles ``BESIDE_GAP_M`` apart."""
    offset = ref.footprint_radius_m + obj.footprint_radius_m + BESIDE_GAP_M
    return ref.centre[:2] + np.asarray(direction_xy, float)[:2] * offset


def go_around_radius_m(obj: ObjectSpec, via: ObjectSpec) -> float:
    """Radius of the detour of ``obj``'s centre around ``via``: their footprint circles stay
    ``GO_AROUND_CLEARANCE_M`` apart."""
    return via.footprint_radius_m + obj.footprint_radius_m + GO_AROUND_CLEARANCE_M


def _travel(start_xy: np.ndarray, goal_xy: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Unit direction of travel, its length, and the unit normal to its left (table plane)."""
    travel = np.asarray(goal_xy, float) - np.asarray(start_xy, float)
    length = float(np.linalg.norm(travel))
    if length < 1e-6:
        raise ModelError("the object is already where the instruction puts it; there is nothing to go around")
    d = travel / length
    return d, length, np.array([-d[1], d[0]])


def detour_path(start_xy: np.ndarray, goal_xy: np.ndarray, centre_xy: np.ndarray, radius_m: float,
                side: float) -> np.ndarray:
    """A 2D path from ``start_xy`` to ``goal_xy`` that leaves the straight line to pass around the circle
    (``centre_xy``, ``radius_m``) on one side (``side`` +1: to the left of the direction of travel, -1:
    to the right): start, a half circle entered and left along the direction of travel, goal. Raises
    ``ModelError`` when the circle is not between the two ends."""
    d, length, left = _travel(start_xy, goal_xy)
    along = float((np.asarray(centre_xy, float) - start_xy) @ d)
    if along - radius_m <= 0.0 or along + radius_m >= length:
        raise ModelError("the object to go around is not between the start and the goal; name one that stands in "
                         "the way")
    theta = np.linspace(0.0, np.pi, DETOUR_ARC_POINTS)
    arc = centre_xy + radius_m * (-np.cos(theta)[:, None] * d + np.sin(theta)[:, None] * (left * side))
    return np.vstack([start_xy, arc, goal_xy])


def passing_direction(start_xy: np.ndarray, goal_xy: np.ndarray, side: float, base_T_camera: np.ndarray) -> str:
    """The camera-relative key (``camera_directions``) that best names a detour on ``side`` (+1: left
    of the direction of travel, -1: right): the words after "passing" in a go-around instruction."""
    _, _, left = _travel(start_xy, goal_xy)
    detour = side * left
    dirs = camera_directions(base_T_camera)
    return max(dirs, key=lambda key: float(dirs[key][:2] @ detour))


def detour_side(start_xy: np.ndarray, goal_xy: np.ndarray, passing_key: str, base_T_camera: np.ndarray) -> float:
    """Which side of the direction of travel (+1 left, -1 right) "passing <passing_key>" names; the
    inverse of ``passing_direction``. ``ModelError`` when that direction runs along the travel."""
    _, _, left = _travel(start_xy, goal_xy)
    cosine = float(camera_directions(base_T_camera)[passing_key][:2] @ left)
    if abs(cosine) < PASSING_MIN_COSINE:
        raise ModelError(
            f"'passing {RELATION_PHRASES[passing_key]}' does not say which way to go around: the object moves "
            "almost along that direction; name a side across the direction of travel"
        )
    return 1.0 if cosine > 0 else -1.0


def go_around_instruction(obj_name: str, relation_key: str, ref_name: str, passing_key: str, via_name: str) -> str:
    """The go-around wording the ``go_around`` template reads (keys as in ``RELATION_PHRASES``)."""
    return (f"slide the {obj_name} {RELATION_PHRASES[relation_key]} the {ref_name}, "
            f"passing {RELATION_PHRASES[passing_key]} the {via_name}")


def _slide_around(obj: ObjectSpec, goal: np.ndarray, via: ObjectSpec, side: float, n_points: int) -> np.ndarray:
    """The object slides on the table from where it stands to ``goal``, around ``via`` on ``side``."""
    start = obj.top_centre
    try:
        flat = detour_path(start[:2], goal[:2], via.centre[:2], go_around_radius_m(obj, via), side)
    except ModelError as err:
        raise ModelError(f"cannot slide the {obj.name} around the {via.name}: {err}") from None
    dense = smooth(resample_by_count(flat, DENSE_POINTS), window=DETOUR_SMOOTH_WINDOW, polyorder=2)
    return np.column_stack([resample_by_count(dense, n_points), np.full(n_points, start[2])])


def _plan_go_around(instruction: str, groups: dict[str, str], obj: ObjectSpec, ref: ObjectSpec, scene: SceneSpec,
                    base_T_camera: np.ndarray, n_points: int) -> TaskTrace:
    """Slide ``obj`` beside ``ref`` (as ``place_beside`` places it, but on the table throughout),
    detouring around the named third object on the named side."""
    via = _resolve(groups["via"], scene)
    if via.name in (obj.name, ref.name):
        raise ModelError(f"the instruction names the {via.name} twice; go around a third object")
    start = obj.top_centre
    direction = camera_directions(base_T_camera)[_RELATION_KEYS[groups["rel"]]]
    goal = np.array([*beside_goal_xy(obj, ref, direction), start[2]])
    side = detour_side(start[:2], goal[:2], _RELATION_KEYS[groups["passing"]], base_T_camera)
    return TaskTrace(instruction, "go_around", obj, ref, goal, _slide_around(obj, goal, via, side, n_points), via)


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
    if name == "go_around":
        return _plan_go_around(instruction, groups, obj, ref, scene, base_T_camera, n_points)
    if name == "place_in" and not ref.is_receptacle:
        raise ModelError(f"the {ref.name} is not a receptacle; say 'on top of the {ref.name}' or name a bowl or tray")
    if name in ("place_in", "place_on"):
        goal = np.array([*ref.centre[:2], ref.floor_z_m + height])
    elif name == "place_beside":
        direction = camera_directions(base_T_camera)[_RELATION_KEYS[groups["rel"]]]
        goal = np.array([*beside_goal_xy(obj, ref, direction), height])
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
