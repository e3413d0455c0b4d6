"""A fake Dex3-1 hand on loopback DDS, for testing the ``dex3`` gripper through real Cyclone DDS.

Run it in its own process (``python -m spatial_trace_ros.testing.fake_dex3 --domain-id 150 --side left``).
It takes ``HandCmd_`` from ``rt/dex3/<side>/cmd``, moves each of the 7 joints towards its target with
first-order dynamics (``--tau-s``) at most ``--max-speed-radps``, and publishes ``HandState_`` on
``rt/dex3/<side>/state`` at ``--rate-hz`` with ``tau_est`` = kp x position error. With
``--object-fraction F`` an object between the fingers stops every joint at the fraction F of the way
from the closed to the open pose (0 closed, 1 open); ``--error CODE`` reports a hand error word;
``--silent`` publishes nothing. ``--status`` names a JSON file kept current with the commands seen.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import numpy as np
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic

from spatial_trace_ros.robots.g1 import idl
from spatial_trace_ros.testing.processes import ProcessGroup, wait_for
from spatial_trace_ros.tools.dex3 import CLOSED_POSE, OPEN_POSE


class FakeDex3:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.q = OPEN_POSE[args.side].copy()
        self.dq = np.zeros(7)
        self.target = self.q.copy()
        self.kp = np.zeros(7)
        self.commands = 0
        self.modes: list[int] = []
        closed, opened = CLOSED_POSE[args.side], OPEN_POSE[args.side]
        # An object stops each joint on its way from open to closed at this position.
        self.block = None if args.object_fraction is None else closed + args.object_fraction * (opened - closed)
        self.opens_up = opened >= closed
        participant = idl.join_domain(args.domain_id, args.interface)
        command_topic, state_topic = idl.dex3_topics(args.side)
        self.writer = DataWriter(participant, Topic(participant, state_topic, idl.HandState_))
        self.reader = DataReader(participant, Topic(participant, command_topic, idl.HandCmd_))
        self.done = threading.Event()
        self.state = idl.HandState_(press_sensor_state=[idl.PressSensorState_() for _ in range(3)],
                                    power_v=24.0, error=[args.error, 0])

    def take_commands(self) -> None:
        for msg in self.reader.take(N=16):
            if isinstance(msg, idl.HandCmd_) and len(msg.motor_cmd) >= 7:
                self.target = np.array([c.q for c in msg.motor_cmd[:7]])
                self.kp = np.array([c.kp for c in msg.motor_cmd[:7]])
                self.modes = [c.mode for c in msg.motor_cmd[:7]]
                self.commands += 1

    def step(self, dt_s: float) -> None:
        target = self.target.copy()
        if self.block is not None:  # the object: no joint closes past it
            target = np.where(self.opens_up, np.maximum(target, self.block), np.minimum(target, self.block))
        move = (target - self.q) * (1.0 - np.exp(-dt_s / self.args.tau_s))
        limit = self.args.max_speed_radps * dt_s
        move = np.clip(move, -limit, limit)
        self.q += move
        self.dq = move / dt_s

    def publish(self) -> None:
        for i, m in enumerate(self.state.motor_state):
            m.q, m.dq = float(self.q[i]), float(self.dq[i])
            m.tau_est = float(self.kp[i] * (self.target[i] - self.q[i]))
        self.writer.write(self.state)

    def write_status(self) -> None:
        status = {"commands": self.commands, "modes": self.modes, "kp": self.kp.tolist(), "q": self.q.tolist(),
                  "target": self.target.tolist()}
        tmp = self.args.status.with_suffix(".tmp")
        tmp.write_text(json.dumps(status))
        os.replace(tmp, self.args.status)

    def run(self) -> None:
        period = 1.0 / self.args.rate_hz
        last = time.monotonic()
        while not self.done.is_set():
            now = time.monotonic()
            self.take_commands()
            self.step(min(max(now - last, 1e-4), 0.05))
            last = now
            if not self.args.silent:
                self.publish()
            self.write_status()
            self.done.wait(max(0.0, period - (time.monotonic() - now)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fake_dex3", description=__doc__.splitlines()[0])
    parser.add_argument("--domain-id", type=int, required=True, help="DDS domain (use one per test)")
    parser.add_argument("--interface", default="lo")
    parser.add_argument("--side", default="left", choices=["left", "right"])
    parser.add_argument("--rate-hz", type=float, default=100.0, help="HandState_ rate [Hz]")
    parser.add_argument("--tau-s", type=float, default=0.03, help="first-order time constant [s]")
    parser.add_argument("--max-speed-radps", type=float, default=6.0)
    parser.add_argument("--object-fraction", type=float, default=None, help="object stops fingers here (0..1)")
    parser.add_argument("--error", type=lambda v: int(v, 0), default=0, help="hand error word to report")
    parser.add_argument("--silent", action="store_true", help="publish no HandState_")
    parser.add_argument("--status", type=Path, required=True, help="status JSON file to keep current")
    hand = FakeDex3(parser.parse_args(argv))

    def on_signal(signum: int, frame: FrameType | None) -> None:
        hand.done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"fake Dex3 {hand.args.side} hand on DDS domain {hand.args.domain_id}", flush=True)
    hand.run()
    return 0


def start_fake_dex3(procs: ProcessGroup, status: Path, domain_id: int, *args: str) -> Path:
    """Start a fake hand in ``procs`` and wait until it runs; returns its status file."""
    process = procs.start_python("fake_dex3", "spatial_trace_ros.testing.fake_dex3",
                                 ["--domain-id", str(domain_id), "--status", str(status), *args])
    wait_for(status.exists, 20.0, "the fake Dex3 hand to start", on_timeout=process.tail)
    return status


if __name__ == "__main__":
    sys.exit(main())
