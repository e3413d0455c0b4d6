"""Gripper command round trips through the real clients against the fake grippers. Prints one JSON object.

1. ``robotiq_urcap``: the URCap's ASCII protocol on loopback TCP: one ``GET`` and one ``SET`` (the
   request/answer round trip), a full status read (7 GETs: what ``read_state`` costs), and a width
   command the fingers are already at (write + status polls until the gripper confirms).
2. ``robotiq_modbus``: Modbus RTU over a pseudo-terminal: one status read (function 4, 3 registers),
   one request write (function 16), the same no-motion width command, and the time the same frames
   take on a real 115200-baud line (``wire_ms_at_115200``, bytes x 10 bits / baud, both ways).
3. ``dex3``: the Dex3 hand over loopback Cyclone DDS: from a width command to the first HandState_
   that shows the fingers moving (the fake publishes at ``--dex3-rate-hz``), and a full 2 cm move
   until the hand reports it settled (includes the 0.1 s stillness window).

Figures are milliseconds: median and 95th percentile over ``--n`` repetitions.

    .venv/bin/python bench/bench_gripper.py [--n 200] [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from spatial_trace_ros.testing.fake_robotiq import start_fake_robotiq
from spatial_trace_ros.testing.processes import ProcessGroup
from spatial_trace_ros.tools.gripper import gripper_factory

SPEED_MPS, FORCE_N = 0.15, 100.0


def timed_ms(action: Callable[[], object], n: int) -> dict:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        action()
        samples.append((time.perf_counter() - t) * 1e3)
    samples.sort()
    return {"p50": round(statistics.median(samples), 3), "p95": round(samples[int(0.95 * (len(samples) - 1))], 3)}


def bench_urcap(group: ProcessGroup, n: int) -> dict:
    host, _, port = start_fake_robotiq(group).rpartition(":")
    gripper = gripper_factory("robotiq_urcap")(None, host=host, port=int(port))
    gripper.connect()
    try:
        gripper.activate(10.0)
        width = gripper.read_state().width_m
        link = gripper.link
        return {
            "get_ms": timed_ms(lambda: link.get("POS"), n),
            "set_ms": timed_ms(lambda: link.write(SPE=128), n),
            "read_state_ms": timed_ms(gripper.read_state, n),
            "no_motion_command_ms": timed_ms(lambda: gripper.move_to_width(width, SPEED_MPS, FORCE_N, 5.0), n // 4),
        }
    finally:
        gripper.disconnect()


def bench_modbus(group: ProcessGroup, n: int, workdir: Path) -> dict:
    port = start_fake_robotiq(group, rtu_link=workdir / "pty")
    gripper = gripper_factory("robotiq_modbus")(None, port=port)
    gripper.connect()
    try:
        gripper.activate(10.0)
        width = gripper.read_state().width_m
        link = gripper.link
        # function 4: 8-byte request, 11-byte answer; function 16 (3 registers): 15-byte request, 8-byte answer
        wire = {"read": (8 + 11) * 10 / 115200 * 1e3, "write": (15 + 8) * 10 / 115200 * 1e3}
        return {
            "read_ms": timed_ms(link.read, n),
            "write_ms": timed_ms(lambda: link.write(SPE=128), n),
            "no_motion_command_ms": timed_ms(lambda: gripper.move_to_width(width, SPEED_MPS, FORCE_N, 5.0), n // 4),
            "wire_ms_at_115200": {k: round(v, 3) for k, v in wire.items()},
        }
    finally:
        gripper.disconnect()


def bench_dex3(group: ProcessGroup, workdir: Path, repeats: int, rate_hz: float) -> dict:
    from spatial_trace_ros.testing.fake_dex3 import start_fake_dex3

    domain = random.SystemRandom().randint(100, 229)
    start_fake_dex3(group, workdir / "dex3.json", domain, "--rate-hz", str(rate_hz))
    hand = gripper_factory("dex3")(None, side="left", domain_id=domain, network_interface="lo")
    hand.connect()
    first_motion, full_move = [], []
    try:
        for i in range(repeats):
            start_width = hand.read_state().width_m
            target = 0.08 if i % 2 == 0 else 0.10
            t = time.perf_counter()
            mover = threading.Thread(target=hand.move_to_width, args=(target, 0.2, 5.0, 10.0))
            mover.start()
            while abs(hand.read_state().width_m - start_width) < 1e-4:
                time.sleep(0.0005)
            first_motion.append((time.perf_counter() - t) * 1e3)
            mover.join()
            full_move.append((time.perf_counter() - t) * 1e3)
    finally:
        hand.disconnect()

    def summary(samples: list[float]) -> dict:
        samples = sorted(samples)
        return {"p50": round(statistics.median(samples), 2), "p95": round(samples[int(0.95 * (len(samples) - 1))], 2)}

    return {"state_rate_hz": rate_hz, "command_to_first_motion_ms": summary(first_motion),
            "move_2cm_until_settled_ms": summary(full_move)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="repetitions per round-trip figure")
    parser.add_argument("--dex3-repeats", type=int, default=10)
    parser.add_argument("--dex3-rate-hz", type=float, default=500.0, help="HandState_ rate of the fake hand")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a few seconds)")
    args = parser.parse_args()
    n, repeats = (40, 4) if args.quick else (args.n, args.dex3_repeats)
    with tempfile.TemporaryDirectory(prefix="bench_gripper_") as tmp, ProcessGroup(Path(tmp) / "procs") as group:
        result = {"n": n, "robotiq_urcap": bench_urcap(group, n), "robotiq_modbus": bench_modbus(group, n, Path(tmp))}
        try:
            result["dex3"] = bench_dex3(group, Path(tmp), repeats, args.dex3_rate_hz)
        except ImportError as err:
            result["dex3"] = {"skipped": f"cyclonedds missing ({err})"}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
