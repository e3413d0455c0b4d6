"""``spatial-trace ask "<instruction>"``: one instruction through a running stack, with the operator in the loop.

Publishes the instruction on ``/spatial_trace/instruction``, waits for the trace and the safety
verdict, prints the verdict with its reasons and the plan's duration and extent, asks for confirmation
(or takes ``--execute``), calls ``/controller_node/execute`` and reports the outcome. Works against
``ros2 launch spatial_trace_ros bringup.launch.xml`` and ``spatial-trace demo --serve`` alike (same
ROS_DOMAIN_ID). Exit code 0: executed and succeeded, or not executed on purpose; 1: refused or failed;
2: no stack, or a stage did not answer in time.
"""

from __future__ import annotations

import argparse
import sys

HELP = "send one instruction to a running stack, show the trace's safety verdict and plan, execute on confirmation"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("instruction", help='what the robot should do, e.g. "move the red cube into the blue bowl"')
    parser.add_argument("--execute", action="store_true", help="execute an accepted plan without asking")
    parser.add_argument("--timeout-s", type=float, default=30.0,
                        help="wait at most this long for each stage (trace, verdict, controller) (default 30)")
    parser.add_argument("--discovery-timeout-s", type=float, default=5.0,
                        help="wait at most this long to find the stack's nodes (default 5)")


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        print("no terminal to confirm on; pass --execute to execute without asking", flush=True)
        return False
    return input(question).strip().lower() in ("y", "yes")


def run(args: argparse.Namespace) -> int:
    from spatial_trace_ros.errors import ConfigError

    if not args.instruction.strip():
        raise ConfigError("the instruction is empty; say what the robot should do")
    if args.timeout_s <= 0 or args.discovery_timeout_s <= 0:
        raise ConfigError("--timeout-s and --discovery-timeout-s must be positive (seconds)")
    from spatial_trace_ros.ros.ask_flow import run_ask

    def say(text: str) -> None:
        print(text, flush=True)

    return run_ask(args.instruction, args.execute, _confirm, say, args.timeout_s, args.discovery_timeout_s)
