"""A fake Unitree G1 on loopback DDS, for testing the arm_sdk driver through real Cyclone DDS.

Run it in its own process (``python -m spatial_trace_ros.testing.fake_g1 --domain-id 150``). It

- subscribes to ``rt/arm_sdk`` and checks the CRC of every ``LowCmd_``: a bad one is counted and
  dropped, as the robot drops it;
- blends the commanded joint positions with its own controller's pose by the arm_sdk weight
  (``motor_cmd[29].q``, clamped to 0..1) for the waist and arm joints (slots 12-28);
- moves every joint towards that blend with first-order dynamics (time constant ``--tau-s``);
- publishes ``rt/lowstate`` (with its CRC) at ``--rate-hz`` (500 Hz, as the robot).

Test side: ``status.json`` (rewritten atomically every 20 ms and on exit) holds its counters and
state; ``commands.csv`` (if asked for) one row per accepted command: time, weight, the 17 arm_sdk
joint positions. SIGUSR1 makes it go silent (no more ``rt/lowstate``), SIGUSR2 talk again, and
SIGHUP shoves ``--shove-joint`` by ``--shove-rad`` and holds it there (a person pushing the arm:
a disturbance the driver must notice when it crosses a limit), and SIGURG freezes the state: the same
``rt/lowstate`` (tick and joints) keeps coming, as from a robot whose firmware hangs mid-stream.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import numpy as np
from cyclonedds.core import Listener
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic

from spatial_trace_ros.robots.g1 import idl
from spatial_trace_ros.robots.g1.crc import low_cmd_crc, low_state_crc
from spatial_trace_ros.robots.g1.motors import ARM_SDK_JOINTS, ARM_SDK_WEIGHT_SLOT, MOTOR_SLOT, NUM_MOTORS, slots
from spatial_trace_ros.testing.processes import ProcessGroup, wait_for

SDK_SLOTS = slots(ARM_SDK_JOINTS)
STATUS_PERIOD_S = 0.02
MODE_MACHINE_G1_29DOF = 5


class FakeG1:
    """The simulated robot: state, command handling and the publishing loop."""

    def __init__(self, domain_id: int, interface: str, q0: np.ndarray, rate_hz: float, tau_s: float,
                 status_path: Path, command_log: Path | None, shove: tuple[int, float] = (0, 0.0),
                 corrupt_every: int = 0) -> None:
        self.rate_hz = rate_hz
        self.corrupt_every = corrupt_every  # every n-th rt/lowstate goes out with a wrong crc (0: none)
        self.tau_s = tau_s
        self.status_path = status_path
        self.own_q = q0.copy()  # the robot's own controller holds this pose
        self.q = q0.copy()
        self.dq = np.zeros(NUM_MOTORS)
        self.commanded_q = q0.copy()
        self.weight = 0.0
        self.commands = 0
        self.bad_crc = 0
        self.published = 0
        self.max_weight_step = 0.0
        self.max_q_step_rad = 0.0
        self.last_command_mono_s: float | None = None
        self.shove = shove
        self.held: dict[int, float] = {}  # slot -> position someone holds it at
        self.silent = threading.Event()
        self.frozen = threading.Event()
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._log = open(command_log, "w", buffering=1) if command_log else None  # noqa: SIM115 - lives with us
        if self._log:
            self._log.write("t_s,weight," + ",".join(ARM_SDK_JOINTS) + "\n")
        self._t0 = time.monotonic()
        self.participant = idl.join_domain(domain_id, interface)
        self.writer = DataWriter(self.participant, Topic(self.participant, idl.LOWSTATE_TOPIC, idl.LowState_))
        self.reader = DataReader(
            self.participant, Topic(self.participant, idl.ARM_SDK_TOPIC, idl.LowCmd_),
            listener=Listener(on_data_available=self._on_commands),
        )
        self.state = idl.LowState_(mode_machine=MODE_MACHINE_G1_29DOF)

    # -- rt/arm_sdk --------------------------------------------------------------------------------
    def _on_commands(self, reader: DataReader) -> None:
        for msg in reader.take(16):
            if isinstance(msg, idl.LowCmd_):
                self._apply(msg)

    def _apply(self, msg: idl.LowCmd_) -> None:
        valid = low_cmd_crc(msg) == msg.crc
        with self._lock:
            if not valid:
                self.bad_crc += 1
                return
            weight = min(1.0, max(0.0, float(msg.motor_cmd[ARM_SDK_WEIGHT_SLOT].q)))
            q_new = np.array([msg.motor_cmd[s].q for s in SDK_SLOTS])
            if self.commands:
                self.max_weight_step = max(self.max_weight_step, abs(weight - self.weight))
                step = np.max(np.abs(q_new - self.commanded_q[SDK_SLOTS]))
                self.max_q_step_rad = max(self.max_q_step_rad, float(step))
            self.weight = weight
            self.commanded_q[SDK_SLOTS] = q_new
            self.commands += 1
            self.last_command_mono_s = time.monotonic()
        if self._log:
            row = ",".join(f"{v:.7g}" for v in q_new)
            self._log.write(f"{time.monotonic() - self._t0:.4f},{weight:.7g},{row}\n")

    # -- dynamics and rt/lowstate ------------------------------------------------------------------
    def step(self, dt_s: float) -> None:
        with self._lock:
            target = self.own_q.copy()
            target[SDK_SLOTS] = self.weight * self.commanded_q[SDK_SLOTS] + (1.0 - self.weight) * self.own_q[SDK_SLOTS]
            previous = self.q.copy()
            self.q += (target - self.q) * (1.0 - math.exp(-dt_s / self.tau_s))
            for slot, held_q in self.held.items():
                self.q[slot] = held_q
            self.dq = (self.q - previous) / dt_s

    def apply_shove(self) -> None:
        slot, delta_rad = self.shove
        with self._lock:
            self.held[slot] = self.q[slot] + delta_rad

    def publish(self) -> None:
        state = self.state
        if self.frozen.is_set():  # the last sample again, unchanged
            self.writer.write(state)
            self.published += 1
            return
        state.tick = (state.tick + round(1000.0 / self.rate_hz)) % 2**32
        with self._lock:
            for slot, m in enumerate(state.motor_state):
                m.q = float(self.q[slot])
                m.dq = float(self.dq[slot])
        state.crc = low_state_crc(state)
        if self.corrupt_every and (self.published + 1) % self.corrupt_every == 0:
            state.crc ^= 0x1  # as if a bit flipped on the way
        self.writer.write(state)
        self.published += 1

    def status(self) -> dict:
        with self._lock:
            age = None if self.last_command_mono_s is None else time.monotonic() - self.last_command_mono_s
            return {
                "commands": self.commands,
                "bad_crc": self.bad_crc,
                "published": self.published,
                "silent": self.silent.is_set(),
                "frozen": self.frozen.is_set(),
                "weight": self.weight,
                "q": self.q.tolist(),
                "commanded_q": self.commanded_q.tolist(),
                "max_weight_step": self.max_weight_step,
                "max_q_step_rad": self.max_q_step_rad,
                "last_command_age_s": age,
            }

    def write_status(self) -> None:
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.status()))
        os.replace(tmp, self.status_path)

    def run(self) -> None:
        """Dynamics and rt/lowstate at ``rate_hz`` until ``done`` is set."""
        period = 1.0 / self.rate_hz
        next_s = last_status = last_step = time.perf_counter()
        while not self.done.is_set():
            now = time.perf_counter()
            self.step(min(max(now - last_step, 1e-4), 0.05))  # real time, so a starved fake does not fall behind
            last_step = now
            if not self.silent.is_set():
                self.publish()
            now = time.perf_counter()
            if now - last_status >= STATUS_PERIOD_S:
                self.write_status()
                last_status = now
            next_s += period
            delay = next_s - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                next_s = time.perf_counter()
        self.write_status()
        if self._log:
            self._log.close()


def parse_pose(items: Sequence[str]) -> np.ndarray:
    """``name=rad`` pairs over a zero pose of all 35 slots."""
    q = np.zeros(NUM_MOTORS)
    for item in items:
        name, _, value = item.partition("=")
        if name not in MOTOR_SLOT:
            raise SystemExit(f"--q0: unknown joint {name!r}; arm_sdk joints: {', '.join(ARM_SDK_JOINTS)}")
        q[MOTOR_SLOT[name]] = float(value)
    return q


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fake_g1", description=__doc__.splitlines()[0])
    parser.add_argument("--domain-id", type=int, required=True, help="DDS domain (use one per test)")
    parser.add_argument("--interface", default="lo", help="network interface (default lo)")
    parser.add_argument("--rate-hz", type=float, default=500.0, help="rt/lowstate rate [Hz]")
    parser.add_argument("--tau-s", type=float, default=0.03, help="first-order tracking time constant [s]")
    parser.add_argument("--q0", nargs="*", default=[], metavar="JOINT=RAD", help="initial pose (others 0)")
    parser.add_argument("--status", type=Path, required=True, help="status JSON file to keep current")
    parser.add_argument("--command-log", type=Path, default=None, help="CSV of every accepted command")
    parser.add_argument("--shove-joint", default="left_elbow_joint", choices=ARM_SDK_JOINTS,
                        help="joint SIGHUP pushes")
    parser.add_argument("--shove-rad", type=float, default=0.5, help="how far SIGHUP pushes it [rad]")
    parser.add_argument("--corrupt-lowstate-every", type=int, default=0, metavar="N",
                        help="send every N-th rt/lowstate with a wrong crc (1: all; 0: none)")
    args = parser.parse_args(argv)
    robot = FakeG1(args.domain_id, args.interface, parse_pose(args.q0), args.rate_hz, args.tau_s, args.status,
                   args.command_log, (MOTOR_SLOT[args.shove_joint], args.shove_rad), args.corrupt_lowstate_every)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGUSR1:
            robot.silent.set()
        elif signum == signal.SIGUSR2:
            robot.silent.clear()
        elif signum == signal.SIGHUP:
            robot.apply_shove()
        elif signum == signal.SIGURG:
            robot.frozen.set()
        else:
            robot.done.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP, signal.SIGURG):
        signal.signal(sig, on_signal)
    print(f"fake G1 on DDS domain {args.domain_id} ({args.interface}), rt/lowstate at {args.rate_hz:g} Hz", flush=True)
    robot.run()
    return 0


class FakeG1Process:
    """The test side: start a fake G1 in its own process and read its status."""

    def __init__(self, procs: ProcessGroup, workdir: Path, domain_id: int, q0: dict[str, float] | None = None,
                 rate_hz: float = 500.0, tau_s: float = 0.03, log_commands: bool = True,
                 shove: tuple[str, float] = ("left_elbow_joint", 0.5), corrupt_lowstate_every: int = 0) -> None:
        self.status_path = workdir / f"fake_g1_{domain_id}_status.json"
        self.command_log = workdir / f"fake_g1_{domain_id}_commands.csv" if log_commands else None
        args = ["--domain-id", str(domain_id), "--rate-hz", str(rate_hz), "--tau-s", str(tau_s),
                "--status", str(self.status_path), "--shove-joint", shove[0], "--shove-rad", str(shove[1]),
                "--corrupt-lowstate-every", str(corrupt_lowstate_every)]
        if self.command_log:
            args += ["--command-log", str(self.command_log)]
        if q0:
            args += ["--q0", *(f"{k}={v}" for k, v in q0.items())]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = procs.start_python("fake_g1", "spatial_trace_ros.testing.fake_g1", args, env=env)
        wait_for(lambda: self.status().get("published", 0) > 0, 20.0, "the fake G1 to publish rt/lowstate",
                 on_timeout=self.process.tail)

    def status(self) -> dict:
        try:
            return json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {}

    def go_silent(self) -> None:
        self.process.popen.send_signal(signal.SIGUSR1)

    def speak_again(self) -> None:
        self.process.popen.send_signal(signal.SIGUSR2)

    def shove(self) -> None:
        self.process.popen.send_signal(signal.SIGHUP)

    def freeze(self) -> None:
        self.process.popen.send_signal(signal.SIGURG)

    def commands(self) -> np.ndarray:
        """Accepted commands so far: rows of (t_s, weight, 17 arm_sdk joint positions)."""
        if self.command_log is None:
            raise RuntimeError("this fake G1 was started without a command log")
        text = self.command_log.read_text()
        rows = [line for line in text.split("\n")[1:-1] if line]  # the last piece may be half written
        return np.array([[float(v) for v in row.split(",")] for row in rows]).reshape(len(rows), 2 + len(SDK_SLOTS))


if __name__ == "__main__":
    sys.exit(main())
