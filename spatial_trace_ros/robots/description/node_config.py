"""``robot_state_node``'s parameters (all read-only: the description is published once, latched)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

_RO = {"read_only": True}


class RobotStateNodeConfig(BaseModel):
    robot: Literal["ur5", "ur5e", "g1_left_arm", "g1_right_arm"] = Field(
        "ur5e", description="robot model whose description and link TF are published", json_schema_extra=_RO
    )
    calibration_file: str = Field(
        "", description="camera extrinsics YAML whose camera TF is published; empty = no camera TF",
        json_schema_extra=_RO,
    )
    tool: str = Field(
        "", description="tool on the flange, as the planner's and controller's tool parameter: empty = none (tcp = "
        "tool0), 'default' = the robot's config/tool.<robot>_*.yaml, or a YAML path", json_schema_extra=_RO,
    )
    publish_robot_tf: bool = Field(
        True, description="publish /robot_description and the links' TF; false where robot_state_publisher does both "
                          "(the camera TF is published either way)",
        json_schema_extra=_RO,
    )
