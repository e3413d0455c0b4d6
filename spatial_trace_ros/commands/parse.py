"""``spatial-trace parse``: read a model's answer on stdin, print its final trace as pixel JSON.

Handy to check a model's output format before pointing the stack at it:
``echo "[(500, 500, 1.2), (600, 400, 1.1)]" | spatial-trace parse --convention robotracer --width 640 --height 480``
prints ``{"points": [[320.0, 240.0, 1.2], [384.0, 192.0, 1.1]]}``. A bad answer exits with status 2 and
the parser's reason on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

HELP = "parse a trace model's answer (stdin) into pixel points [u, v, depth or null] as JSON"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--convention", required=True,
                        help="answer format: robotracer (0-1000, optional d), roborefer (0-1), robobrain (pixels), "
                             "gemini ([{\"point\": [y, x]}], 0-1000), molmoact (0-255)")
    parser.add_argument("--width", type=int, required=True, help="width of the image the model saw [px]")
    parser.add_argument("--height", type=int, required=True, help="height of the image the model saw [px]")


def run(args: argparse.Namespace) -> int:
    from spatial_trace_ros.trace.parser import parse_answer

    parsed = parse_answer(sys.stdin.read(), args.convention, args.width, args.height)
    points = [
        [float(u), float(v), None if math.isnan(d) else float(d)]
        for (u, v), d in zip(parsed.uv, parsed.depth_m, strict=True)
    ]
    print(json.dumps({"points": points}))
    return 0
