"""``spatial-trace description ROBOT [--tool default|PATH]``: the robot's URDF, as robot_state_node
publishes it (with the same ``tool``).

For tools that want a file (MoveIt, robot_state_publisher, a MuJoCo or Pinocchio model): the text is
built from the planner's kinematics, so it always agrees with what the planner plans. The tool on the
flange is ``--tool`` or, with ``--params-file``, robot_state_node's ``tool`` parameter in that file, so
``robot_state_publisher:=true`` in the launch files gets the URDF robot_state_node would publish.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from spatial_trace_ros.errors import ConfigError

HELP = "print (or write) the URDF of a robot model, built from the planner's kinematics"
NODE_NAME = "robot_state_node"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("robot", choices=["ur5", "ur5e", "g1_left_arm", "g1_right_arm"], help="robot model")
    parser.add_argument("--out", type=Path, help="write the URDF to this file instead of printing it")
    tool = parser.add_mutually_exclusive_group()
    tool.add_argument("--tool", default="", help="tool on the flange: 'default' (config/tool.<robot>_*.yaml) "
                      "or a tool YAML; none = the bare flange")
    tool.add_argument("--params-file", type=Path, help=f"a ROS parameter file: the tool is {NODE_NAME}'s 'tool' "
                      "parameter there (as the launch files give it); none = the bare flange")


def params_file_tool(path: Path) -> str:
    """``tool`` of robot_state_node in a ROS parameter file, as rclpy would apply it ('' when absent)."""
    if not path.is_file():
        raise ConfigError(f"--params-file {path} not found; give the robot_params_file the launch uses")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"--params-file {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--params-file {path} must map node names to ros__parameters")
    tool = ""
    for key in ("/**", NODE_NAME, f"/{NODE_NAME}"):  # later sections win, as for the node
        section = (data.get(key) or {}).get("ros__parameters", {}) if isinstance(data.get(key), dict) else {}
        tool = section.get("tool", tool)
    if not isinstance(tool, str):
        raise ConfigError(f"--params-file {path}: {NODE_NAME}.tool = {tool!r} must be a string ('', 'default' "
                          "or a tool YAML path)")
    return tool


def run(args: argparse.Namespace) -> int:
    from spatial_trace_ros.robots.description import robot_urdf
    from spatial_trace_ros.robots.description.tool import tool_geometry
    from spatial_trace_ros.tools.description import resolve_tool

    setting = params_file_tool(args.params_file) if args.params_file else args.tool
    tool = resolve_tool(setting, args.robot)  # a ConfigError is one line on stderr and exit 2 (cli.main)
    text = robot_urdf(args.robot, tool_geometry(tool))
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
        print(f"wrote {args.out} ({len(text)} characters)")
    return 0
