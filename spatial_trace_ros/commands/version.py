"""``spatial-trace version``: the package version and the versions of the libraries it drives."""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json

HELP = "print the package version and the versions of the libraries it talks to"

_LIBRARIES = ("rclpy", "numpy", "opencv-python", "pyrealsense2", "ur-rtde", "torch", "onnxruntime",
              "onnxruntime-gpu", "mujoco", "cyclonedds")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    from spatial_trace_ros import __version__

    libs = {}
    for name in _LIBRARIES:
        try:
            libs[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    if args.json:
        print(json.dumps({"spatial_trace_ros": __version__, "libraries": libs}))
    else:
        print(f"spatial_trace_ros {__version__}")
        for name, version in libs.items():
            print(f"  {name} {version}")
    return 0
