"""``planner_node``'s parameters: the planner's own (``PlannerConfig``) plus what the node wires up.

Building the pieces from a config (robot model, calibration, safety limits) lives here too, so a
parameter change can be tried completely before it is accepted: a file that does not load is refused
with its reason and the old planner keeps running.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.geometry.calibration import load_calibration
from spatial_trace_ros.planning.planner import Planner, PlannerConfig
from spatial_trace_ros.planning.safety import SafetyConfig, SafetyFilter, load_safety_config
from spatial_trace_ros.planning.task import TaskPlanner
from spatial_trace_ros.robots.model import RobotModel, make_robot_model
from spatial_trace_ros.tools.description import resolve_tool

_RO = {"read_only": True}
ROBOT_DOF = {"ur5": 6, "ur5e": 6, "g1_left_arm": 7, "g1_right_arm": 7}
# IK seed before any joint state arrives, when initial_joints_rad is left empty.
DEFAULT_SEED_RAD = {
    "ur5": [0.0, -np.pi / 2, np.pi / 2, -np.pi / 2, -np.pi / 2, 0.0],
    "ur5e": [0.0, -np.pi / 2, np.pi / 2, -np.pi / 2, -np.pi / 2, 0.0],
    "g1_left_arm": [0.0] * 7,
    "g1_right_arm": [0.0] * 7,
}


class PlannerNodeConfig(PlannerConfig):
    robot: Literal["ur5", "ur5e", "g1_left_arm", "g1_right_arm"] = Field(
        "ur5e", description="robot model the plan is for", json_schema_extra=_RO
    )
    calibration_file: str = Field(
        "", description="camera extrinsics YAML (see config/calibration.example.yaml); required"
    )
    safety_file: str = Field(
        "", description="safety limits YAML (config/safety.yaml); empty = the built-in defaults, identical to it"
    )
    max_trace_age_s: float = Field(
        5.0, gt=0.0, le=600.0, description="refuse traces made longer ago than this [s] (never looser than "
        "safety_file's freshness.max_trace_age_s)"
    )
    trace_status_timeout_s: float = Field(
        2.0, gt=0.0, le=60.0, description="wait this long for the trace_status of a trace (validity, agreement; "
        "matched by the exact frame stamp) before refusing it [s]"
    )
    initial_joints_rad: list[float] = Field(
        default_factory=list, description="IK seed [rad] until joint states arrive; empty = the robot's home pose"
    )
    joint_state_timeout_s: float = Field(
        1.0, gt=0.0, le=60.0, description="a joint state older than this [s] is not the current pose"
    )
    tool: str = Field(
        "", description="tool description: empty = none (the flange follows the trace), 'default' = the robot's "
        "config/tool.<robot>_*.yaml, or a YAML path; with a tool, traces become tasks with gripper actions",
        json_schema_extra=_RO)
    tcp_pose_tolerance_s: float = Field(
        0.05, gt=0.0, le=5.0, description="eye-in-hand: use a TCP pose at most this far [s] from the frame's stamp"
    )

    @model_validator(mode="after")
    def _seed_matches_robot(self) -> PlannerNodeConfig:
        dof = ROBOT_DOF[self.robot]
        if self.initial_joints_rad and len(self.initial_joints_rad) != dof:
            n = len(self.initial_joints_rad)
            raise ValueError(f"initial_joints_rad needs {dof} values for {self.robot}, got {n}")
        return self

    def planner_config(self) -> PlannerConfig:
        return PlannerConfig.model_validate(self.model_dump(include=set(PlannerConfig.model_fields)))

    def seed_joints(self) -> np.ndarray:
        return np.asarray(self.initial_joints_rad or DEFAULT_SEED_RAD[self.robot], float)


def build_planner(cfg: PlannerNodeConfig, model: RobotModel | None = None) -> Planner:
    """Load the calibration and safety files and build the planner; ConfigError says what is wrong."""
    if not cfg.calibration_file:
        raise ConfigError(
            "parameter calibration_file is empty; point it at your camera extrinsics YAML "
            "(start from config/calibration.example.yaml)"
        )
    model = model or make_robot_model(cfg.robot)
    calibration = load_calibration(cfg.calibration_file)
    safety = load_safety_config(cfg.safety_file) if cfg.safety_file else SafetyConfig()
    seed = cfg.seed_joints()
    if not model.within_limits(seed):
        raise ConfigError(f"initial_joints_rad {seed.tolist()} is outside the joint limits of {model.name}")
    planner = Planner(model, calibration, cfg.planner_config(), SafetyFilter(safety, model))
    tool = resolve_tool(cfg.tool, cfg.robot)
    if tool is not None:
        planner.task_planner = TaskPlanner(planner, tool)
    return planner
