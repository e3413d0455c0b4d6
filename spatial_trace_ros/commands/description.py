"""``spatial-trace description ROBOT [--tool default|PATH]``: the robot's URDF, as robot_state_node
publishes it (with the same ``tool``).

For tools that want a file (MoveIt, robot_state_publisher, a MuJoCo or Pinocchio model): the text is
built from the planner's kinematics, so it always agrees with what the planner plans.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "print (or write) the URDF of a robot model, built from the planner's kinematics"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("robot", choices=["ur5", "ur5e", "g1_left_arm", "g1_right_arm"], help="robot model")
    parser.add_argument("--out", type=Path, help="write the URDF to this file instead of printing it")
    parser.add_argument("--tool", default="", help="the tool on the flange, as the nodes' tool parameter: 'default' "
                        "(the robot's config/tool.<robot>_*.yaml) or a YAML path; none when left out")


def run(args: argparse.Namespace) -> int:
    from spatial_trace_ros.robots.description import robot_urdf
    from spatial_trace_ros.robots.description.tool import tool_geometry
    from spatial_trace_ros.tools.description import resolve_tool

    text = robot_urdf(args.robot, tool_geometry(resolve_tool(args.tool, args.robot)))
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
        print(f"wrote {args.out} ({len(text)} characters)")
    return 0
