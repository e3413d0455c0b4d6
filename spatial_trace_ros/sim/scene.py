"""The simulated cell's ground truth: table, coloured objects, receptacles, camera and lights.

``generate_scene(seed)`` places objects with a seeded random generator, so the same seed always gives
the same scene, in every process: the camera, the robot and the oracle each rebuild it from the seed
and agree to the bit. Everything is in the robot's ``base`` frame (the UR controller frame the
kinematics use); the table top is the plane z = 0 on which the robot stands.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from spatial_trace_ros.errors import ConfigError, format_choices
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics
from spatial_trace_ros.geometry.transforms import Transform

ObjectKind = Literal["cube", "cylinder", "bowl", "tray"]
CameraMount = Literal["eye_to_hand", "eye_in_hand"]
MOVABLE_KINDS: tuple[str, ...] = ("cube", "cylinder")
RECEPTACLE_KINDS: tuple[str, ...] = ("bowl", "tray")

# Hue-distinct colours, so each object is named unambiguously by "<colour> <kind>" and is easy to
# find again in a rendered image.
PALETTE: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.08, 0.08, 1.0),
    "green": (0.10, 0.65, 0.15, 1.0),
    "blue": (0.10, 0.25, 0.90, 1.0),
    "yellow": (0.95, 0.85, 0.05, 1.0),
    "orange": (1.00, 0.45, 0.00, 1.0),
    "purple": (0.55, 0.15, 0.75, 1.0),
    "cyan": (0.05, 0.80, 0.85, 1.0),
    "pink": (1.00, 0.40, 0.70, 1.0),
}
TABLE_RGBA = (0.55, 0.55, 0.52, 1.0)

# Where objects may be placed (base frame, metres): in front of the robot, inside both arms' reach
# and the default camera's view.
PLACEMENT_X_M = (0.28, 0.66)
PLACEMENT_Y_M = (-0.30, 0.30)
PLACEMENT_GAP_M = 0.03

# A RealSense D435 color stream at 640x480 has fy ~ 615 px, i.e. a vertical field of view ~ 42.6 deg.
D435_FOVY_DEG = 42.6
OPTICAL_FRAME = "camera_color_optical_frame"


def _vec3(v: object) -> np.ndarray:
    return np.asarray(v, dtype=float).reshape(3)


class ObjectSpec(BaseModel):
    """One item on the table. ``position_m`` is the centre of its bounding box (base frame);
    ``size_m`` the full bounding-box extents before the yaw about z."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(description="'<colour> <kind>', unique in the scene")
    kind: ObjectKind
    colour: str
    rgba: tuple[float, float, float, float]
    size_m: tuple[float, float, float]
    position_m: tuple[float, float, float]
    yaw_rad: float = 0.0
    wall_m: float = Field(0.0, description="receptacles: wall and floor thickness [m]")

    @property
    def is_receptacle(self) -> bool:
        return self.kind in RECEPTACLE_KINDS

    @property
    def centre(self) -> np.ndarray:
        return _vec3(self.position_m)

    @property
    def top_z_m(self) -> float:
        return self.position_m[2] + self.size_m[2] / 2

    @property
    def bottom_z_m(self) -> float:
        return self.position_m[2] - self.size_m[2] / 2

    @property
    def top_centre(self) -> np.ndarray:
        """Top face centre: where an object-centric trace starts (visible from above, graspable)."""
        return np.array([self.position_m[0], self.position_m[1], self.top_z_m])

    @property
    def floor_z_m(self) -> float:
        """Receptacles: height of the inner floor; other objects: their top."""
        return self.bottom_z_m + self.wall_m if self.is_receptacle else self.top_z_m

    @property
    def footprint_radius_m(self) -> float:
        """Radius of the circle that covers the object's footprint on the table, whatever its yaw."""
        if self.kind in ("cylinder", "bowl"):
            return self.size_m[0] / 2
        return math.hypot(self.size_m[0], self.size_m[1]) / 2

    @property
    def half_extent_xy_m(self) -> float:
        """Half the footprint along its shorter side: how far its edge is from its centre at least."""
        return min(self.size_m[0], self.size_m[1]) / 2


class CameraSpec(BaseModel):
    """The RGB-D camera: pinhole from ``fovy_deg`` at ``width`` x ``height``, depth aligned to color.

    The pose is ``parent_T_camera`` of the *optical* frame (x right, y down, z forward): the parent is
    ``base`` when eye-to-hand and ``tool0`` (the UR flange) when eye-in-hand.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    mount: CameraMount = "eye_to_hand"
    width: int = Field(640, ge=16, le=1920)
    height: int = Field(480, ge=16, le=1080)
    fovy_deg: float = Field(D435_FOVY_DEG, gt=10.0, lt=120.0)
    parent_frame: str = "base"
    translation_m: tuple[float, float, float]
    quaternion_xyzw: tuple[float, float, float, float]

    @property
    def parent_T_camera(self) -> Transform:
        return Transform.from_quaternion_xyzw(
            self.translation_m, self.quaternion_xyzw, self.parent_frame, OPTICAL_FRAME
        )



class LightSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    direction: tuple[float, float, float]
    diffuse: float = Field(0.6, ge=0.0, le=1.0)


class TableSpec(BaseModel):
    """The table top: a box whose upper face is z = 0, spanning ``x_m`` and ``y_m`` (base frame)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    x_m: tuple[float, float] = (-0.35, 0.95)
    y_m: tuple[float, float] = (-0.65, 0.65)
    thickness_m: float = 0.04
    height_m: float = 0.75
    rgba: tuple[float, float, float, float] = TABLE_RGBA


class SceneSpec(BaseModel):
    """Everything the oracle and the tests know for certain about the simulated cell."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    seed: int
    table: TableSpec = TableSpec()
    objects: tuple[ObjectSpec, ...]
    camera: CameraSpec
    lights: tuple[LightSpec, ...]

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.objects]

    def item(self, name: str) -> ObjectSpec:
        for obj in self.objects:
            if obj.name == name:
                return obj
        raise ConfigError(format_choices("scene object", name, self.names))

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str, source: str = "scene") -> SceneSpec:
        try:
            return cls.model_validate_json(text)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in err.errors())
            raise ConfigError(f"{source} is not a valid scene: {problems}") from None


def load_scene(path: str | Path) -> SceneSpec:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"scene file {path} not found; write one with `spatial-trace sim-scene --out DIR`")
    return SceneSpec.from_json(path.read_text(), source=str(path))


def look_at(eye: np.ndarray, target: np.ndarray, up: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    """Rotation of an optical frame (x right, y down, z forward) at ``eye`` looking at ``target``."""
    z = _vec3(target) - _vec3(eye)
    z /= np.linalg.norm(z)
    x = np.cross(z, _vec3(up))
    if np.linalg.norm(x) < 1e-9:
        raise ConfigError("camera looks straight along the up vector; give it some pitch")
    x /= np.linalg.norm(x)
    return np.column_stack([x, np.cross(z, x), z])


def default_camera(
    mount: CameraMount = "eye_to_hand",
    width: int = 640,
    height: int = 480,
    rng: np.random.Generator | None = None,
    jitter_m: float = 0.0,
    jitter_rad: float = 0.0,
) -> CameraSpec:
    """Eye-to-hand: in front of the table, 0.55 m up, looking back at the robot over the objects.
    Eye-in-hand: on the flange's side, looking along the tool axis and tilted 14 deg towards it.
    ``jitter_*`` perturb the pose (uniform, seeded by ``rng``) for varied synthetic data."""
    if mount == "eye_to_hand":
        parent = "base"
        eye = np.array([1.20, 0.0, 0.75])
        R = look_at(eye, np.array([0.36, 0.0, 0.05]))
    else:
        parent = "tool0"
        eye = np.array([0.0, -0.075, 0.02])
        tilt = math.atan2(0.075, 0.30)
        c, s = math.cos(tilt), math.sin(tilt)
        R = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])  # rotate about tool x towards the axis
    if rng is not None and (jitter_m > 0 or jitter_rad > 0):
        eye = eye + rng.uniform(-jitter_m, jitter_m, 3)
        R = R @ Transform.from_rotvec([0, 0, 0], rng.uniform(-jitter_rad, jitter_rad, 3)).rotation
    tf = Transform.from_rotation_translation(R, eye, parent, OPTICAL_FRAME)
    return CameraSpec(
        mount=mount,
        width=width,
        height=height,
        parent_frame=parent,
        translation_m=tuple(float(v) for v in eye),
        quaternion_xyzw=tuple(float(v) for v in tf.quaternion_xyzw),
    )


def _sample_object(rng: np.random.Generator, kind: str) -> tuple[tuple[float, float, float], float]:
    """Size (bounding box, metres) and wall thickness of a new object of ``kind``. Objects are at least
    5 cm tall, so a flange-mounted TCP on an object's top keeps the wrist above the table."""
    if kind == "cube":
        e = float(rng.uniform(0.050, 0.060))
        return (e, e, e), 0.0
    if kind == "cylinder":
        d = float(rng.uniform(0.045, 0.055))
        return (d, d, float(rng.uniform(0.060, 0.085))), 0.0
    if kind == "bowl":
        d = float(rng.uniform(0.14, 0.18))
        return (d, d, float(rng.uniform(0.050, 0.065))), 0.006
    return (float(rng.uniform(0.18, 0.22)), float(rng.uniform(0.13, 0.16)), float(rng.uniform(0.025, 0.035))), 0.006


def generate_scene(
    seed: int = 0,
    n_objects: int = 4,
    n_receptacles: int = 2,
    camera_mount: CameraMount = "eye_to_hand",
    width: int = 640,
    height: int = 480,
    camera_jitter_m: float = 0.0,
    camera_jitter_rad: float = 0.0,
    vary_lighting: bool = False,
) -> SceneSpec:
    """A table with ``n_objects`` cubes/cylinders and ``n_receptacles`` bowls/trays in distinct colours,
    none overlapping (``PLACEMENT_GAP_M`` apart at least), all inside the reachable, visible region."""
    if n_objects < 1 or n_receptacles < 0 or n_objects + n_receptacles > len(PALETTE):
        raise ConfigError(
            f"a scene holds 1 to {len(PALETTE)} items with at least one object; got n_objects={n_objects}, "
            f"n_receptacles={n_receptacles}"
        )
    rng = np.random.default_rng(seed)
    colours = [str(c) for c in rng.permutation(list(PALETTE))]
    kinds = [str(k) for k in rng.choice(RECEPTACLE_KINDS, n_receptacles)] + [
        str(k) for k in rng.choice(MOVABLE_KINDS, n_objects)
    ]
    placed: list[ObjectSpec] = []
    for kind, colour in zip(kinds, colours):  # receptacles first: the big ones are hardest to fit
        size, wall = _sample_object(rng, kind)
        for _ in range(2000):
            x, y = rng.uniform(*PLACEMENT_X_M), rng.uniform(*PLACEMENT_Y_M)
            candidate = ObjectSpec(
                name=f"{colour} {kind}",
                kind=kind,
                colour=colour,
                rgba=PALETTE[colour],
                size_m=size,
                position_m=(float(x), float(y), size[2] / 2),
                yaw_rad=float(rng.uniform(-math.pi, math.pi)) if kind in ("cube", "tray") else 0.0,
                wall_m=wall,
            )
            if all(
                math.dist(candidate.position_m[:2], o.position_m[:2])
                >= candidate.footprint_radius_m + o.footprint_radius_m + PLACEMENT_GAP_M
                for o in placed
            ):
                placed.append(candidate)
                break
        else:
            raise ConfigError(
                f"could not place the {colour} {kind} without overlap (seed {seed}); use fewer objects"
            )
    lights = (LightSpec(direction=(0.3, 0.2, -1.0), diffuse=0.6), LightSpec(direction=(-0.5, -0.3, -0.8), diffuse=0.3))
    if vary_lighting:
        lights = tuple(
            LightSpec(
                direction=(float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-0.6, 0.6)), -1.0),
                diffuse=float(rng.uniform(0.3, 0.7)),
            )
            for _ in range(2)
        )
    camera = default_camera(camera_mount, width, height, rng, camera_jitter_m, camera_jitter_rad)
    return SceneSpec(seed=seed, objects=tuple(placed), camera=camera, lights=lights)


def sim_intrinsics(camera: CameraSpec) -> CameraIntrinsics:
    """Pinhole intrinsics of MuJoCo's camera: square pixels from ``fovy``, principal point at the
    image centre (pixel centres at integer coordinates, as OpenCV)."""
    fy = (camera.height / 2) / math.tan(math.radians(camera.fovy_deg) / 2)
    return CameraIntrinsics(camera.width, camera.height, fy, fy, (camera.width - 1) / 2, (camera.height - 1) / 2)


def calibration_dict(scene: SceneSpec) -> dict:
    """The camera's pose in the format of ``config/calibration.example.yaml``, so the planner uses the
    simulated camera's true extrinsics."""
    cam = scene.camera
    return {
        "mode": cam.mount,
        "parent_frame": cam.parent_frame,
        "camera_frame": OPTICAL_FRAME,
        "translation_m": [round(v, 9) for v in cam.translation_m],
        "rotation": {"quaternion_xyzw": [round(v, 9) for v in cam.quaternion_xyzw]},
    }


def write_calibration(scene: SceneSpec, path: str | Path) -> Path:
    """Write the simulated camera's extrinsics as a calibration YAML the planner loads."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# Extrinsics of the SIMULATED camera (scene seed {scene.seed}, {scene.camera.mount}), written by\n"
        "# spatial_trace_ros.sim.scene.write_calibration. Metres and a unit quaternion (x, y, z, w).\n"
    )
    path.write_text(header + yaml.safe_dump(calibration_dict(scene), sort_keys=False))
    return path
