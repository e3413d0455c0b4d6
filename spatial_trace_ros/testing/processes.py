"""Start helper processes for tests and benchmarks, and always stop them.

Every process runs in its own session (process group) with output captured to a log file, so a
test can kill it and everything it spawned, and show its last lines when something fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def ros_test_env(domain_id: int | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for ROS processes in a test run: localhost discovery, the run's own domain."""
    env = dict(os.environ)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_LOCALHOST_ONLY"] = "1"  # Humble/Jazzy honour this one; Kilted ignores it
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class ManagedProcess:
    def __init__(self, name: str, popen: subprocess.Popen, log_path: Path) -> None:
        self.name = name
        self.popen = popen
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout_s: float = 5.0) -> int | None:
        """SIGINT (clean shutdown), then SIGTERM, then SIGKILL to the whole process group."""
        for sig, wait_s in ((signal.SIGINT, timeout_s), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
            if self.popen.poll() is not None:
                break
            self.signal_group(sig)
            try:
                self.popen.wait(wait_s)
            except subprocess.TimeoutExpired:
                continue
        self.signal_group(signal.SIGKILL)  # children left behind by a clean exit
        return self.popen.poll()


class ProcessGroup:
    """Context manager owning every process a test starts; all are stopped on exit, pass or fail."""

    def __init__(self, log_dir: str | Path | None = None) -> None:
        self._log_dir = Path(log_dir or tempfile.mkdtemp(prefix="spatial_trace_procs_"))
        self._log_dir.mkdir(parents=True, exist_ok=True)
        self.processes: list[ManagedProcess] = []

    def start(
        self, name: str, argv: Sequence[str], env: dict[str, str] | None = None, cwd: str | None = None
    ) -> ManagedProcess:
        log_path = self._log_dir / f"{name}-{len(self.processes)}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - owned by the child for its lifetime
        popen = subprocess.Popen(
            list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd, start_new_session=True,
        )
        log.close()
        proc = ManagedProcess(name, popen, log_path)
        self.processes.append(proc)
        return proc

    def start_python(
        self, name: str, module: str, args: Sequence[str] = (), env: dict[str, str] | None = None
    ) -> ManagedProcess:
        """``python -m module args...`` with this interpreter."""
        return self.start(name, [sys.executable, "-m", module, *args], env=env)

    def stop_all(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} (pid {p.pid}) ---\n{p.tail()}" for p in self.processes)

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


def wait_for(
    predicate: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.02,
    on_timeout: Callable[[], str] | None = None,
) -> object:
    """Poll ``predicate`` until it returns something truthy; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f"\n{on_timeout()}" if on_timeout else ""
            raise TimeoutError(f"timed out after {timeout_s:.1f} s waiting for {what}{detail}")
        time.sleep(interval_s)


def free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
