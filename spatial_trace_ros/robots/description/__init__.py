"""The robot description (URDF) built from the same kinematic facts the planner uses.

``build_description("ur5e", tool)`` gives the links and joints of a robot model registered in
``robots/model.py``, with the tool on its flange (default: the bare flange) and a ``tcp`` frame;
``robot_urdf`` gives the URDF text that ``robot_state_node`` publishes on ``/robot_description``.
"""

from __future__ import annotations

import numpy as np

from spatial_trace_ros.robots.description.g1 import g1_description
from spatial_trace_ros.robots.description.tool import BARE_FLANGE, ToolGeometry
from spatial_trace_ros.robots.description.ur import ur_description
from spatial_trace_ros.robots.description.urdf import TOOL_COLOUR, Joint, Link, RobotDescription
from spatial_trace_ros.robots.model import RobotModel, make_robot_model

TCP_FRAME = "tcp"

__all__ = ["TCP_FRAME", "ToolGeometry", "build_description", "robot_urdf"]


def build_description(robot: str | RobotModel, tool: ToolGeometry | None = None) -> RobotDescription:
    """The description of ``robot`` (a model name or a model) with ``tool`` on its tool frame."""
    model = robot if isinstance(robot, RobotModel) else make_robot_model(robot)
    tool = tool or BARE_FLANGE
    description = g1_description(model.name) if model.name.startswith("g1_") else ur_description(model)
    flange = model.tool_frame
    description.links.append(Link(f"{tool.name}_link", visuals=list(tool.shapes), collisions=list(tool.shapes),
                                  colour=TOOL_COLOUR))
    description.joints.append(Joint(f"{flange}-{tool.name}_fixed_joint", flange, f"{tool.name}_link", np.eye(4)))
    description.links.append(Link(TCP_FRAME))
    description.joints.append(Joint(f"{flange}-{TCP_FRAME}_fixed_joint", flange, TCP_FRAME,
                                    np.asarray(tool.flange_T_tcp, float)))
    return description


def robot_urdf(robot: str | RobotModel, tool: ToolGeometry | None = None) -> str:
    return build_description(robot, tool).to_urdf()

