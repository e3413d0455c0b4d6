"""Run plans through the controller's real-time worker (real ur_rtde inside it) against a fake UR."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from spatial_trace_ros.planning.plan import Plan
from spatial_trace_ros.robots.execution import ExecutionResult
from spatial_trace_ros.robots.worker import RealtimeWorker, StateEvent, WorkerConfig
from spatial_trace_ros.testing.fake_ur.client import FakeUrClient, start_fake_ur
from spatial_trace_ros.testing.processes import ProcessGroup

# A loaded CI machine can stall a process for tens of milliseconds; 5 Hz keeps the watchdog meaningful
# without tripping on that.
TEST_DRIVER_OPTIONS = {"watchdog_min_hz": 5.0}
# The fake controller is a Python process on a shared CI machine: its RTDE stream can pause for tens of
# milliseconds, which a real controller never does. Tests that are not about staleness allow 25 periods
# (200 ms at 125 Hz) before a stalled stream stops the run; the staleness tests use the default (3).
TEST_SAFETY = {"runtime": {"max_stale_periods": 25}}


def relaxed_safety_file(directory: Path, **sections: Any) -> str:
    """A safety YAML with the test allowances plus ``sections`` (merged at the top level)."""
    path = directory / "safety.yaml"
    path.write_text(yaml.safe_dump({**TEST_SAFETY, **sections}))
    return str(path)
POLICY_OPTIONS = {"lookahead_s": 0.1, "gain": 300.0, "blend_m": 0.005, "goal_tolerance_m": 0.01}


def start_worker(fake: FakeUrClient, robot: str, driver_options: dict[str, Any] | None = None,
                 safety_file: str | None = None) -> RealtimeWorker:
    """``safety_file`` None: the test allowances (``TEST_SAFETY``) in a temporary file."""
    options = {"robot_ip": fake.host, **TEST_DRIVER_OPTIONS, **(driver_options or {})}
    if safety_file is None:
        safety_file = relaxed_safety_file(Path(tempfile.mkdtemp(prefix="spatial_trace_safety_")))
    worker = RealtimeWorker(WorkerConfig(robot=robot, driver="ur_rtde", driver_options=options,
                                         safety_file=safety_file))
    worker.start()
    try:
        worker.wait_ready(40.0)
    except Exception:
        worker.close(timeout_s=2.0)
        raise
    return worker


def run_plan(worker: RealtimeWorker, plan: Plan, policy: str, *, dry_run: bool = False,
             during: Callable[[RealtimeWorker, StateEvent], bool] | None = None,
             timeout_s: float = 40.0) -> ExecutionResult:
    """Execute ``plan`` and wait for the result. ``during(worker, event)`` sees every state event of the
    run and returns True once it has done what it wanted (it is not called again)."""
    worker.execute(plan, policy, POLICY_OPTIONS, dry_run)
    deadline = time.monotonic() + timeout_s
    pending = during
    while time.monotonic() < deadline:
        for event in worker.events():
            if isinstance(event, StateEvent):
                if pending is not None and event.executing and pending(worker, event):
                    pending = None
            elif event[0] == "result":
                return event[1]
            elif event[0] == "failed":
                raise AssertionError(f"worker failed: {event[1]['reason']}")
        time.sleep(0.01)
    raise TimeoutError(f"no result for {policy} within {timeout_s} s")


@contextlib.contextmanager
def fake_ur_with_worker(log_dir: Path, robot: str) -> Iterator[tuple[FakeUrClient, RealtimeWorker]]:
    """A fake UR controller process and a connected real-time worker; both stopped on exit."""
    group = ProcessGroup(log_dir)
    worker = None
    try:
        fake = start_fake_ur(group, robot)
        worker = start_worker(fake, robot)
        yield fake, worker
    finally:
        if worker is not None:
            worker.close()
        group.stop_all()
