"""Shared fixtures. Every test run gets its own ROS domain and localhost-only discovery, so parallel
runs on one machine never hear each other; every process a test starts is stopped after it."""

from __future__ import annotations

import os
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# CI draws the same property-test examples every run, so an example found by chance never blocks an
# unrelated change; a developer's `make test` draws new ones (and replays failures from .hypothesis/).
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

_DOMAIN_ID = int(os.environ.get("SPATIAL_TRACE_TEST_DOMAIN_ID") or random.SystemRandom().randint(10, 99))
os.environ["ROS_DOMAIN_ID"] = str(_DOMAIN_ID)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_LOCALHOST_ONLY"] = "1"
os.environ.setdefault("MUJOCO_GL", "egl")
# The controller keeps its e-stop latch under $ROS_HOME: never the developer's own ~/.ros in tests.
os.environ["ROS_HOME"] = tempfile.mkdtemp(prefix="spatial_trace_test_ros_home_")

# rclpy must be loaded before pyrealsense2 in a process that uses both: the other order segfaults at
# interpreter exit (measured with the Kilted wheels and pyrealsense2 2.59), which fails the run.
import rclpy  # noqa: E402, F401

from spatial_trace_ros.testing.processes import ProcessGroup, ros_test_env  # noqa: E402

TEST_DIR = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def ros_domain_id() -> int:
    return _DOMAIN_ID


@pytest.fixture
def ros_env(ros_domain_id: int, tmp_path: Path) -> dict[str, str]:
    """Environment for child processes that run ROS nodes (each test its own ROS_HOME)."""
    env = ros_test_env(ros_domain_id, {"ROS_HOME": str(tmp_path / "ros_home")})
    env["PYTHONPATH"] = os.pathsep.join([str(TEST_DIR), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


@pytest.fixture
def procs(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ProcessGroup]:
    """Processes started by the test; all are stopped afterwards, and their logs printed on failure."""
    group = ProcessGroup(tmp_path / "procs")
    try:
        yield group
    finally:
        group.stop_all()
        if group.processes:
            sys.stdout.write("\n" + group.logs() + "\n")


@pytest.fixture
def harness() -> Iterator[object]:
    from spatial_trace_ros.testing.ros_harness import RosHarness

    h = RosHarness()
    try:
        yield h
    finally:
        h.close()


@pytest.fixture(scope="session")
def reference_outputs_dir() -> Path:
    """400 real model answers with ground truth (RoboTracer and Gemini, 2D and 3D), shipped in test/data."""
    return TEST_DIR / "data" / "robotracer_outputs"


@pytest.fixture(scope="module")
def fake_model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One fake trace-model server process per test module (its base URL); tests reconfigure it."""
    from spatial_trace_ros.testing.fake_model_servers import start_fake_model_server
    from spatial_trace_ros.testing.processes import free_port

    with ProcessGroup(tmp_path_factory.mktemp("fake_model_server")) as group:
        base_url, _ = start_fake_model_server(group, free_port())
        yield base_url
