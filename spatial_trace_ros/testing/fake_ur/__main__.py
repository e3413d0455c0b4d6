"""``python -m spatial_trace_ros.testing.fake_ur --host 127.0.0.2 --robot ur5e --control-port 8123``"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

import numpy as np

from spatial_trace_ros.testing.fake_ur.server import FakeUrController

HOME_Q = (0.0, -1.5708, 1.5708, -1.5708, -1.5708, 0.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fake_ur", description=__doc__)
    parser.add_argument("--host", default="127.0.0.2", help="loopback address to listen on (one per fake)")
    parser.add_argument("--robot", default="ur5e", choices=["ur5", "ur5e"])
    parser.add_argument("--control-port", type=int, default=0, help="HTTP control port (0 = any free port)")
    parser.add_argument("--q0", type=float, nargs=6, default=HOME_Q, metavar="RAD", help="initial joints [rad]")
    parser.add_argument("--rate-hz", type=float, default=None, help="controller rate (default 125 CB3 / 500 e-Series)")
    args = parser.parse_args(argv)
    try:
        controller = FakeUrController(args.host, args.robot, np.array(args.q0), args.control_port, args.rate_hz)
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    def stop(signum: int, frame: FrameType | None) -> None:
        controller.shutdown()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(f"fake UR controller ({args.robot}, {controller.identity.rate_hz:g} Hz) on {args.host}, "
          f"control port {controller.control_port}", flush=True)
    controller.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
