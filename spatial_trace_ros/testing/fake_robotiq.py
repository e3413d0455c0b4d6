"""A fake Robotiq 2F gripper, for testing the gripper clients through their real protocols.

Run it in its own process. ``--urcap HOST:PORT`` serves the URCap's ASCII protocol on TCP (the real
one listens on 63352 of the UR controller); ``--rtu LINK_FILE`` opens a pseudo-terminal, writes the
path of its client end to LINK_FILE and answers Modbus RTU there (see ``fake_robotiq_rtu``).

The simulated gripper activates in ``--activation-s``, moves its fingers at the commanded speed,
stops on an object of ``--object-width-m`` when closing from wider (OBJ 2), reports ``--fault CODE``
once activated (and refuses to move), and with ``--silent`` accepts connections but never answers.
SIGUSR1 takes the object away (it slipped out): fingers stopped on it close on.
Its finger position is an integer count 0 (open, full stroke) .. 255 (closed), as the real one.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from spatial_trace_ros.testing.processes import ProcessGroup, free_port, wait_for

STROKES_M = {"2f85": 0.085, "2f140": 0.140}
SPEEDS_MPS = {"2f85": (0.020, 0.150), "2f140": (0.030, 0.250)}


class SimulatedRobotiq:
    """Registers and finger motion; advanced lazily to the current time on every access."""

    def __init__(self, model: str, object_width_m: float | None, fault: int, activation_s: float) -> None:
        self.stroke_m = STROKES_M[model]
        self.speeds_mps = SPEEDS_MPS[model]
        self.object_count = None if object_width_m is None else 255.0 * (1.0 - object_width_m / self.stroke_m)
        self.fault_after_activation = fault
        self.activation_s = activation_s
        self.req = {"ACT": 0, "GTO": 0, "ATR": 0, "ADR": 0, "POS": 0, "SPE": 255, "FOR": 255}
        self.sta = 0
        self.obj = 0
        self.flt = 0
        self.pre = 0
        self.position = 0.0
        self.activating_since: float | None = None
        self.commands = 0
        self._last_s = time.monotonic()
        self.lock = threading.Lock()

    def set(self, name: str, value: int) -> bool:
        if name not in self.req or not 0 <= value <= 255:
            return False
        self.advance()
        old = self.req[name]
        self.req[name] = value
        self.commands += 1
        if name == "ACT" and value == 0:  # reset: clears faults and the activation
            self.sta, self.flt, self.obj, self.activating_since = 0, 0, 0, None
        elif name == "ACT" and value == 1 and old == 0:
            self.sta, self.activating_since = 1, time.monotonic()
        if name in ("POS", "GTO") and self.req["GTO"]:
            if self.sta != 3:
                self.flt = 0x07 if not self.req["ACT"] else 0x05
            elif not self.fault_after_activation:
                self.pre = self.req["POS"]
                self.obj = 0
        return True

    def remove_object(self) -> None:
        """The object slips out: fingers stopped on it close on (OBJ 2 -> moving -> 3)."""
        with self.lock:
            self.advance()
            self.object_count = None
            if self.obj == 2:
                self.obj = 0

    def get(self, name: str) -> int | None:
        self.advance()
        # GET POS answers the finger position, not the request (as the URCap does)
        values = {**self.req, "STA": self.sta, "OBJ": self.obj, "FLT": self.flt, "PRE": self.pre,
                  "POS": round(self.position)}
        return values.get(name)

    def advance(self) -> None:
        now = time.monotonic()
        dt, self._last_s = now - self._last_s, now
        if self.activating_since is not None and now - self.activating_since >= self.activation_s:
            self.activating_since = None
            self.sta, self.position, self.pre, self.obj = 3, 0.0, 0, 3
            self.flt = self.fault_after_activation
        if self.sta != 3 or not self.req["GTO"] or self.flt or self.obj != 0:
            return
        low, high = self.speeds_mps
        counts_per_s = (low + (high - low) * self.req["SPE"] / 255.0) / self.stroke_m * 255.0
        target = float(self.pre)
        step = counts_per_s * dt
        closing = target > self.position
        blocked = self.object_count is not None and closing and self.position <= self.object_count < target
        if blocked and self.position + step >= self.object_count:
            self.position, self.obj = self.object_count, 2
            return
        if abs(target - self.position) <= step:
            self.position, self.obj = target, 3
        else:
            self.position += step if closing else -step


def serve_urcap(sim: SimulatedRobotiq, host: str, port: int, silent: bool, stop: threading.Event) -> None:
    server = socket.create_server((host, port), reuse_port=False)
    server.settimeout(0.2)
    print(f"fake Robotiq URCap on {host}:{port}", flush=True)
    while not stop.is_set():
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        threading.Thread(target=_urcap_client, args=(sim, conn, silent, stop), daemon=True).start()
    server.close()


def _urcap_client(sim: SimulatedRobotiq, conn: socket.socket, silent: bool, stop: threading.Event) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = b""
    with conn:
        while not stop.is_set():
            data = conn.recv(1024)
            if not data:
                return
            buffer += data
            while b"\n" in buffer:
                line, _, buffer = buffer.partition(b"\n")
                if silent:
                    continue
                conn.sendall(urcap_answer(sim, line.decode("ascii", errors="replace").split()).encode() + b"\n")


def urcap_answer(sim: SimulatedRobotiq, words: list[str]) -> str:
    with sim.lock:
        if len(words) >= 3 and words[0] == "SET" and len(words) % 2 == 1:
            pairs = list(zip(words[1::2], words[2::2], strict=True))
            ok = all(v.isdigit() for _, v in pairs)
            ok = ok and all(sim.set(name, int(value)) for name, value in pairs)
            return "ack" if ok else "?"
        if len(words) == 2 and words[0] == "GET":
            value = sim.get(words[1])
            return "?" if value is None else f"{words[1]} {value}"
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fake_robotiq", description=__doc__.splitlines()[0])
    link = parser.add_mutually_exclusive_group(required=True)
    link.add_argument("--urcap", metavar="HOST:PORT", help="serve the URCap ASCII protocol on TCP")
    link.add_argument("--rtu", metavar="LINK_FILE", help="serve Modbus RTU on a pty; its path goes to LINK_FILE")
    parser.add_argument("--model", default="2f85", choices=sorted(STROKES_M))
    parser.add_argument("--object-width-m", type=float, default=None, help="an object between the fingers")
    parser.add_argument("--fault", type=lambda v: int(v, 0), default=0, help="fault code reported once activated")
    parser.add_argument("--activation-s", type=float, default=0.2)
    parser.add_argument("--slave-id", type=int, default=9, help="Modbus slave id (Robotiq default 9)")
    parser.add_argument("--silent", action="store_true", help="accept connections, never answer")
    args = parser.parse_args(argv)
    sim = SimulatedRobotiq(args.model, args.object_width_m, args.fault, args.activation_s)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGUSR1:
            threading.Thread(target=sim.remove_object).start()  # not under the lock a request may hold
        else:
            stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, on_signal)
    if args.urcap:
        host, _, port = args.urcap.rpartition(":")
        serve_urcap(sim, host, int(port), args.silent, stop)
    else:
        from spatial_trace_ros.testing.fake_robotiq_rtu import serve_rtu

        serve_rtu(sim, args.rtu, args.slave_id, args.silent, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def start_fake_robotiq(group: ProcessGroup, *args: str, urcap_host: str = "127.0.0.1",
                       rtu_link: Path | None = None, port: int | None = None, timeout_s: float = 20.0) -> str:
    """Start a fake in ``group``; returns ``host:port`` of its URCap socket (``port``: a free one when
    None), or the pty path with ``rtu_link`` (a file the fake writes that path to)."""
    if rtu_link is None:
        port = port or free_port(urcap_host)
        process = group.start_python("fake_robotiq", "spatial_trace_ros.testing.fake_robotiq",
                                     ["--urcap", f"{urcap_host}:{port}", *args])

        def ready() -> bool:
            if not process.alive():
                raise RuntimeError(f"fake Robotiq exited:\n{process.tail()}")
            try:
                socket.create_connection((urcap_host, port), timeout=0.5).close()
            except OSError:
                return False
            return True

        wait_for(ready, timeout_s, f"fake Robotiq URCap on {urcap_host}:{port}", on_timeout=process.tail)
        return f"{urcap_host}:{port}"
    process = group.start_python("fake_robotiq_rtu", "spatial_trace_ros.testing.fake_robotiq",
                                 ["--rtu", str(rtu_link), *args])

    def linked() -> str:
        if not process.alive():
            raise RuntimeError(f"fake Robotiq exited:\n{process.tail()}")
        return rtu_link.read_text().strip() if rtu_link.exists() else ""

    return str(wait_for(linked, timeout_s, "fake Robotiq's pty", on_timeout=process.tail))
