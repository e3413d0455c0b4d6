"""``spatial-trace``: the operator's and developer's command-line tool.

Each subcommand lives in ``spatial_trace_ros/commands/<name>.py`` with ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. Heavy imports happen inside ``run`` so that
``spatial-trace --help`` stays instant. Add a command by adding one line to ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from spatial_trace_ros.errors import SpatialTraceError

COMMANDS: dict[str, str] = {
    "version": "spatial_trace_ros.commands.version",
    "sim-scene": "spatial_trace_ros.commands.sim_scene",
    "serve": "spatial_trace_ros.commands.serve",
    "record": "spatial_trace_ros.commands.record",
    "eval-answers": "spatial_trace_ros.commands.eval_answers",
    "synth": "spatial_trace_ros.commands.synth",
    "eval": "spatial_trace_ros.commands.eval",
    "export-finetune": "spatial_trace_ros.commands.export_finetune",
    "parse": "spatial_trace_ros.commands.parse",
    "demo": "spatial_trace_ros.commands.demo",
    "ask": "spatial_trace_ros.commands.ask",
    "extrinsics": "spatial_trace_ros.commands.extrinsics",
    "doctor": "spatial_trace_ros.commands.doctor",
    "description": "spatial_trace_ros.commands.description",
    "calibrate": "spatial_trace_ros.commands.calibrate",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spatial-trace",
        description="Trace-predicting VLMs on real robots: from what you say to where it moves.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except SpatialTraceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
