"""``spatial-trace demo``: the whole stack in simulation, end to end, in one process (what ``make demo`` runs).

Starts camera_node (simulated RGB-D camera), trace_node (the simulation oracle, or a real model server
with ``--backend``), planner_node and controller_node (simulated UR arm) on one executor, runs a few
instructions the way an operator would, and writes to ``--out``: ``overlay_NN.png`` per instruction,
``paths_3d.png`` (planned vs executed TCP paths in the workspace), ``recording/`` (an MCAP bag of every
topic, for Foxglove or ``ros2 bag play``) and ``summary.md`` / ``summary.json``.
``--serve`` instead keeps the simulated stack running for ``spatial-trace ask``, RViz or Foxglove.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

HELP = "run the whole stack in simulation on a few instructions and write overlays, a 3D plot, a bag and a summary"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default demo_out)")
    parser.add_argument("--robot", choices=["ur5", "ur5e"], default="ur5e", help="simulated arm (default ur5e)")
    parser.add_argument("--seed", type=int, default=0, help="scene generator seed (default 0)")
    parser.add_argument(
        "--instruction", action="append", default=[], metavar="TEXT",
        help="an instruction to run (repeat for several); default: a few chosen from the scene plus one the "
        "safety filter must refuse")
    parser.add_argument(
        "--backend", choices=["oracle", "openai", "robotracer", "http"], default="oracle",
        help="trace model: the simulation oracle (default) or a model server (needs --backend-url)")
    parser.add_argument("--backend-url", default="", help="model server address, e.g. http://gpu-host:8000/v1")
    parser.add_argument("--backend-model", default="", help="model name for the openai backend")
    parser.add_argument("--api-key-env", default="", help="environment variable holding the server's token")
    parser.add_argument("--policy", default="servo_stream",
                        help="control policy: servo_stream (default), movel_path, speed_track, or a plugin's")
    parser.add_argument("--short", action="store_true", help="two instructions and the refusal (tests, CI)")
    parser.add_argument("--no-record", action="store_true", help="do not write the MCAP bag")
    parser.add_argument("--serve", action="store_true",
                        help="start the simulated stack and keep it running for `spatial-trace ask` until Ctrl-C")


def _config(args: argparse.Namespace) -> object:
    from pydantic import ValidationError

    from spatial_trace_ros.demo.config import DemoConfig
    from spatial_trace_ros.errors import ConfigError
    from spatial_trace_ros.ros.params import format_validation_error

    values = dict(
        robot=args.robot, seed=args.seed, instructions=tuple(args.instruction), backend=args.backend,
        backend_url=args.backend_url, backend_model=args.backend_model, api_key_env=args.api_key_env,
        policy=args.policy, out_dir=args.out, short=args.short, record=not args.no_record,
    )
    try:
        return DemoConfig(**values)
    except ValidationError as err:
        raise ConfigError(f"invalid demo options: {format_validation_error(err, values)}") from None


def run(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from spatial_trace_ros.sim.gl_backend import select_gl_backend

    select_gl_backend()  # offscreen rendering, chosen before MuJoCo loads
    from spatial_trace_ros.ros.demo_run import run_demo, serve

    def progress(text: str) -> None:
        print(text, flush=True)

    if args.serve:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            serve(cfg, progress, stop)
        return 0
    result = run_demo(cfg, progress)
    print()
    print(Path(result.files["summary_md"]).read_text())
    print("results:")
    for path in result.overlays:
        print(f"  overlay        {path}")
    print(f"  3D plot        {result.files['plot']}")
    if "bag" in result.files:
        print(f"  MCAP bag       {result.files['bag']}  ({sum(result.bag_counts.values())} messages; open the .mcap "
              "in Foxglove, or `ros2 bag play` the folder)")
    print(f"  summary        {result.files['summary_md']}  {result.files['summary_json']}")
    print(f"finished in {result.total_s:.0f} s (startup {result.startup_s:.0f} s)")
    if not result.all_as_expected:
        print("some instructions did not go as expected; see the summary", file=sys.stderr)
        return 1
    return 0
