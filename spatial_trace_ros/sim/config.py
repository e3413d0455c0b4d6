"""What defines a simulated cell, and the validation of the options the sim camera, driver and oracle
take. Plain pydantic, no MuJoCo: the oracle and the scene tools use it without loading a renderer.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.sim.scene import CameraMount, SceneSpec, generate_scene, load_scene
from spatial_trace_ros.tools.description import ToolDescription, default_tool, load_tool


class WorldConfig(BaseModel):
    """What defines a simulated cell. Two parties asking for equal configs share one ``World``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    robot: Literal["ur5", "ur5e"] = Field("ur5e", description="simulated arm")
    scene_seed: int = Field(0, ge=0, description="seed of the random scene generator")
    scene_file: str = Field("", description="JSON SceneSpec to load instead of generating one")
    n_objects: int = Field(4, ge=1, le=8, description="cubes and cylinders on the table")
    n_receptacles: int = Field(2, ge=0, le=7, description="bowls and trays on the table")
    camera_mount: CameraMount = Field("eye_to_hand", description="fixed camera, or on the wrist")
    width: int = Field(640, ge=16, le=1920, description="image width [px]")
    height: int = Field(480, ge=16, le=1080, description="image height [px]")
    home_q_rad: tuple[float, ...] = Field((), description="initial joint positions [rad]; empty: the arm's home")
    tool_file: str = Field("", description="tool description YAML; empty: the robot's default (config/tool.*.yaml)")

    def build_tool(self) -> ToolDescription:
        tool = load_tool(self.tool_file) if self.tool_file else default_tool(self.robot)
        tool.check_robot(self.robot)
        return tool

    def build_scene(self) -> SceneSpec:
        if self.scene_file:
            return load_scene(self.scene_file)
        return generate_scene(
            self.scene_seed, self.n_objects, self.n_receptacles, self.camera_mount, self.width, self.height
        )


def _validated(model: type[BaseModel], values: dict[str, Any], what: str) -> Any:
    try:
        return model(**values)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}={e.get('input')!r}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"invalid {what} option: {problems}") from None


def world_config(**options: Any) -> WorldConfig:
    """A ``WorldConfig`` whose every bad value is reported as one ``ConfigError`` naming it."""
    return _validated(WorldConfig, options, "simulation")


def split_options(options: dict[str, Any], own: type[BaseModel], what: str) -> tuple[WorldConfig, BaseModel]:
    """Validate ``options`` as world settings plus the settings of ``own``; every problem is named."""
    world_keys = set(WorldConfig.model_fields)
    own_keys = set(own.model_fields)
    unknown = sorted(set(options) - world_keys - own_keys)
    if unknown:
        allowed = ", ".join(sorted(world_keys | own_keys))
        raise ConfigError(f"unknown {what} option(s) {', '.join(unknown)}; available: {allowed}")
    world = _validated(WorldConfig, {k: v for k, v in options.items() if k in world_keys}, what)
    mine = _validated(own, {k: v for k, v in options.items() if k in own_keys}, what)
    return world, mine
