"""``spatial-trace description ROBOT``: the robot's URDF, as robot_state_node publishes it.

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


def run(args: argparse.Namespace) -> int:
    from spatial_trace_ros.robots.description import robot_urdf

    text = robot_urdf(args.robot)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
        print(f"wrote {args.out} ({len(text)} characters)")
    return 0
