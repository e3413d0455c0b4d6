"""The tool description: one validated file per robot and tool that every stage reads.

The planner (where the TCP must be), the controller's plan check and run-time guard (what may touch
the table or a keep-out zone), the RViz markers and the simulation (which gripper to build) all read
the same ``ToolDescription``, so they cannot disagree about the tool. Everything is in the flange
frame (``tool0``: z out of the flange), in metres.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from scipy.spatial.transform import Rotation

from spatial_trace_ros.errors import ConfigError

Vec3 = tuple[float, float, float]


def _config_dir() -> Path:
    """config/ of a source checkout, else the one colcon / pip installed under share/."""
    source = Path(__file__).resolve().parents[2] / "config"
    return source if source.is_dir() else Path(sys.prefix) / "share" / "spatial_trace_ros" / "config"


CONFIG_DIR = _config_dir()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TcpOffset(_Strict):
    """``flange_T_tcp``: where the tool's working point sits on the flange (between the fingertips)."""

    translation_m: Vec3 = Field((0.0, 0.0, 0.0), description="[m] TCP position in the flange frame")
    rpy_rad: Vec3 = Field((0.0, 0.0, 0.0), description="[rad] TCP orientation (roll, pitch, yaw about flange axes)")

    @property
    def matrix(self) -> np.ndarray:
        out = np.eye(4)
        out[:3, :3] = Rotation.from_euler("xyz", self.rpy_rad).as_matrix()
        out[:3, 3] = self.translation_m
        return out

    def as_ur_pose(self) -> list[float]:
        """[x, y, z, rx, ry, rz] as ur_rtde's ``setTcp`` / ``getTCPOffset`` use it."""
        return [*map(float, self.translation_m), *map(float, Rotation.from_euler("xyz", self.rpy_rad).as_rotvec())]


class CapsuleShape(_Strict):
    shape: Literal["capsule"] = "capsule"
    name: str
    start_m: Vec3 = Field(description="[m] one end of the axis, flange frame")
    end_m: Vec3 = Field(description="[m] other end of the axis, flange frame")
    radius_m: float = Field(gt=0.0, le=0.5)


class BoxShape(_Strict):
    shape: Literal["box"] = "box"
    name: str
    center_m: Vec3 = Field(description="[m] box centre, flange frame (axes along the flange's)")
    half_extents_m: Vec3 = Field(description="[m] half sizes along the flange x, y, z")

    @model_validator(mode="after")
    def _positive(self) -> BoxShape:
        if min(self.half_extents_m) <= 0:
            raise ValueError(f"half_extents_m must all be positive, got {list(self.half_extents_m)}")
        return self


CollisionShape = Annotated[CapsuleShape | BoxShape, Field(discriminator="shape")]


class GripperLimits(_Strict):
    """Which gripper implementation drives the fingers, and what it can do."""

    kind: str = Field(description="registered gripper kind (tools.gripper.GRIPPERS), e.g. sim, robotiq_urcap")
    min_width_m: float = Field(0.0, ge=0.0, le=0.5, description="[m] narrowest finger opening")
    max_width_m: float = Field(0.085, gt=0.0, le=0.5, description="[m] widest finger opening")
    speed_mps: float = Field(0.1, gt=0.0, le=1.0, description="[m/s] finger speed the tasks use")
    max_speed_mps: float = Field(0.15, gt=0.0, le=1.0, description="[m/s] fastest finger speed")
    force_n: float = Field(60.0, gt=0.0, le=500.0, description="[N] grip force the tasks use")
    max_force_n: float = Field(235.0, gt=0.0, le=1000.0, description="[N] strongest grip")
    timeout_s: float = Field(5.0, gt=0.0, le=60.0, description="[s] longest a finger motion may take")
    finger_length_m: float = Field(0.045, gt=0.0, le=0.3, description="[m] finger length below the palm")
    finger_thickness_m: float = Field(0.012, gt=0.0, le=0.1, description="[m] finger pad thickness")

    @model_validator(mode="after")
    def _ordered(self) -> GripperLimits:
        if self.min_width_m >= self.max_width_m:
            raise ValueError(f"min_width_m {self.min_width_m} must be below max_width_m {self.max_width_m}")
        if self.speed_mps > self.max_speed_mps:
            raise ValueError(f"speed_mps {self.speed_mps} exceeds max_speed_mps {self.max_speed_mps}; lower it")
        if self.force_n > self.max_force_n:
            raise ValueError(f"force_n {self.force_n} exceeds max_force_n {self.max_force_n}; lower it")
        return self


class HeldObject(_Strict):
    """The envelope checked around a held object: its size from the grasp when known, else the default."""

    default_size_m: Vec3 = Field((0.06, 0.06, 0.08), description="[m] box of an object of unknown size")
    grasp_depth_m: float = Field(
        0.025, ge=0.0, le=0.2, description="[m] the TCP closes this far below the object's top (the trace point)")
    margin_m: float = Field(0.005, ge=0.0, le=0.1, description="[m] grown around the object in every check")
    width_tolerance_m: float = Field(
        0.012, gt=0.0, le=0.1, description="[m] a grasp is good when the fingers stop this close to the object's width")
    min_grasp_width_m: float = Field(
        0.01, ge=0.0, le=0.5, description="[m] fingers closing below this width hold nothing: the grasp failed")


class ToolDescription(_Strict):
    """One robot's tool. See ``config/tool.*.yaml`` and docs/tools.md."""

    name: str
    robots: tuple[str, ...] = Field(description="robot models this tool is mounted on")
    tcp: TcpOffset = TcpOffset()
    collision: tuple[CollisionShape, ...] = Field((), description="tool geometry checked for collisions")
    gripper: GripperLimits
    held_object: HeldObject = HeldObject()

    @property
    def flange_T_tcp(self) -> np.ndarray:
        return self.tcp.matrix

    @property
    def tcp_T_flange(self) -> np.ndarray:
        return np.linalg.inv(self.tcp.matrix)

    def flange_poses(self, base_T_tcp: np.ndarray) -> np.ndarray:
        """Flange poses (N, 4, 4) that put the TCP at ``base_T_tcp`` (N, 4, 4)."""
        return np.asarray(base_T_tcp, float) @ self.tcp_T_flange

    def tcp_poses(self, base_T_flange: np.ndarray) -> np.ndarray:
        return np.asarray(base_T_flange, float) @ self.flange_T_tcp

    def check_robot(self, robot: str) -> None:
        if robot not in self.robots:
            raise ConfigError(f"tool {self.name!r} is described for {', '.join(self.robots)}, not {robot!r}; "
                              f"use a tool file written for {robot} (config/tool.{robot}_*.yaml)")


def tool_from_dict(data: object, source: str = "tool description") -> ToolDescription:
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a mapping of fields (name, robots, tcp, collision, gripper, held_object)")
    try:
        return ToolDescription.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(top)'}={e.get('input')!r}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"{source} is invalid: {problems}; fix the field(s) named") from None


def load_tool(path: str | Path) -> ToolDescription:
    path = Path(path)
    if not path.is_file():
        known = ", ".join(sorted(p.name for p in CONFIG_DIR.glob("tool.*.yaml")))
        raise ConfigError(f"tool description {path} not found; the package ships: {known}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    return tool_from_dict(data, str(path))


# robot -> the tool file used when none is named
DEFAULT_TOOLS: dict[str, str] = {
    "ur5": "tool.ur5_2f85.yaml",
    "ur5e": "tool.ur5e_2f85.yaml",
    "g1_left_arm": "tool.g1_dex3.yaml",
    "g1_right_arm": "tool.g1_dex3.yaml",
}


def default_tool(robot: str) -> ToolDescription:
    """The shipped tool of ``robot`` (config/tool.<robot>_*.yaml)."""
    if robot not in DEFAULT_TOOLS:
        raise ConfigError(f"no default tool for robot {robot!r}; robots with one: {', '.join(sorted(DEFAULT_TOOLS))}")
    tool = load_tool(CONFIG_DIR / DEFAULT_TOOLS[robot])
    tool.check_robot(robot)
    return tool


def resolve_tool(setting: str, robot: str) -> ToolDescription | None:
    """A node's ``tool`` parameter: '' = no tool, 'default' = the robot's shipped one, else a YAML path."""
    if not setting:
        return None
    tool = default_tool(robot) if setting == "default" else load_tool(setting)
    tool.check_robot(robot)
    return tool
