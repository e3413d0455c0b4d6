"""The test side of a fake UR controller: start it in its own process and talk to its control port."""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence

import httpx
import numpy as np

from spatial_trace_ros.testing.processes import ManagedProcess, ProcessGroup, free_port, wait_for


def unique_loopback_host() -> str:
    """A random 127.x.y.z address: ur_rtde's ports are fixed, so every fake needs its own address, and
    parallel test runs on one machine must not pick the same one."""
    rng = random.SystemRandom()
    return f"127.{rng.randint(20, 250)}.{rng.randint(1, 250)}.{rng.randint(2, 250)}"


class FakeUrClient:
    """HTTP client of one running fake (``server.FakeUrController``)."""

    def __init__(self, host: str, control_port: int, process: ManagedProcess | None = None) -> None:
        self.host = host
        self.process = process
        self._http = httpx.Client(base_url=f"http://{host}:{control_port}", timeout=5.0)

    def _get(self, path: str) -> dict:
        response = self._http.get(path)
        response.raise_for_status()
        return response.json()

    def _post(self, path: str, body: dict | None = None) -> dict:
        response = self._http.post(path, json=body or {})
        if response.status_code >= 400:
            raise ValueError(f"fake UR controller refused {path}: {response.json().get('error')}")
        return response.json()

    def state(self) -> dict:
        return self._get("/state")

    def tcp_log(self, since: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(times [s, monotonic clock], TCP positions N x 3 [m, base frame]) logged every controller cycle."""
        log = self._get(f"/log?since={since}")
        return np.asarray(log["t"], float), np.asarray(log["tcp"], float).reshape(-1, 3)

    def commands(self) -> dict:
        """Counts of command codes received, motion package count and the command transitions."""
        return self._get("/commands")

    def inject(self, kind: str, after_motion_s: float = 0.0) -> dict:
        """``protective_stop``, ``emergency_stop``, ``drop_connection``, ``stuck_arm`` or ``displace``,
        now or once the arm has moved for ``after_motion_s``."""
        return self._post("/fault", {"kind": kind, "after_motion_s": after_motion_s})

    def set_tcp_offset(self, offset: list[float], locked: bool = False) -> dict:
        """The TCP offset the controller holds (as set on the pendant); ``locked``: set_tcp cannot change it."""
        return self._post("/tcp_offset", {"offset": list(offset), "locked": locked})

    def clear(self) -> dict:
        return self._post("/clear")

    def reset_log(self) -> dict:
        return self._post("/reset_log")

    def set_digital_inputs(self, bits: int) -> dict:
        """``actual_digital_input_bits`` from now on (tool inputs are bits 16-17)."""
        return self._post("/digital_inputs", {"bits": int(bits)})

    def set_joints(self, q: Sequence[float]) -> dict:
        return self._post("/joints", {"q": list(map(float, q))})

    def wait_until(self, predicate: object, timeout_s: float, what: str) -> dict:
        """Poll the state until ``predicate(state)`` holds; returns that state."""
        found: dict = {}

        def check() -> bool:
            found.update(self.state())
            return bool(predicate(found))  # type: ignore[operator]

        wait_for(check, timeout_s, what, interval_s=0.02, on_timeout=self._tail)
        return found

    def _tail(self) -> str:
        return self.process.tail() if self.process is not None else ""

    def close(self) -> None:
        self._http.close()


def start_fake_ur(
    group: ProcessGroup, robot: str = "ur5", q0: Sequence[float] | None = None, host: str | None = None,
    rate_hz: float | None = None, timeout_s: float = 20.0,
) -> FakeUrClient:
    """Start a fake controller process in ``group`` and wait until its control port answers."""
    host = host or unique_loopback_host()
    port = free_port(host)
    argv = [sys.executable, "-m", "spatial_trace_ros.testing.fake_ur", "--host", host, "--robot", robot,
            "--control-port", str(port)]
    if q0 is not None:
        argv += ["--q0", *map(str, q0)]
    if rate_hz is not None:
        argv += ["--rate-hz", str(rate_hz)]
    process = group.start(f"fake_ur_{host}", argv)
    client = FakeUrClient(host, port, process)

    def answers() -> bool:
        if not process.alive():
            raise RuntimeError(f"fake UR controller exited:\n{process.tail()}")
        try:
            client.state()
        except httpx.TransportError:
            return False
        return True

    wait_for(answers, timeout_s, f"fake UR controller on {host}", interval_s=0.05, on_timeout=process.tail)
    return client
