"""``spatial-trace doctor`` as an operator runs it (its own process): against the fakes (UR controller
on RTDE and dashboard, G1 on DDS, model server on HTTP) every check passes and it exits 0; against a
deliberately broken setup every problem is one line with its fix, and it exits 1, never a traceback."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spatial_trace_ros.testing.fake_g1 import FakeG1Process
from spatial_trace_ros.testing.fake_ur.client import start_fake_ur, unique_loopback_host

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration


def doctor(args: list[str], env_update: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    """Exit status and ``check -> line`` of one doctor run."""
    env = dict(os.environ, ROS_DISTRO="kilted", **(env_update or {}))
    for var in ("RMW_IMPLEMENTATION", "FASTRTPS_DEFAULT_PROFILES_FILE", "ROS_LOCALHOST_ONLY",
                "ROS_AUTOMATIC_DISCOVERY_RANGE"):
        if var not in (env_update or {}):
            env.pop(var, None)
    done = subprocess.run([sys.executable, "-m", "spatial_trace_ros.cli", "doctor", "--timeout-s", "2", *args],
                          capture_output=True, text=True, env=env, timeout=120)
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    lines = {}
    for line in done.stdout.splitlines():
        if line.startswith("["):
            lines[line.split("] ", 1)[1].split(":", 1)[0]] = line
    return done.returncode, lines


def write_calibration(path: Path, **change: object) -> Path:
    data = {"mode": "eye_to_hand", "parent_frame": "base", "camera_frame": "camera_color_optical_frame",
            "translation_m": [0.8, 0.1, 0.7], "rotation": {"rpy_rad": [-2.4, 0.0, 1.6]}}
    path.write_text(yaml.safe_dump({**data, **change}))
    return path


def test_healthy_ur_cell_passes(procs, tmp_path: Path, fake_model_server: str) -> None:
    fake = start_fake_ur(procs, robot="ur5e")
    code, lines = doctor(["--params-file", str(REPO / "config" / "ur5e.yaml"), "--robot-ip", fake.host,
                          "--calibration-file", str(write_calibration(tmp_path / "cal.yaml")), "--camera", "none",
                          "--backend", "robotracer", "--backend-url", fake_model_server])
    assert code == 0, "\n".join(lines.values())
    assert lines["rclpy"].startswith("[  ok]") and "kilted" in lines["ros distro"]
    assert lines["pydantic"].startswith("[  ok]") and lines["ur-rtde"].startswith("[  ok]")
    assert "RTDE v2, controller 5." in lines["ur rtde"], lines["ur rtde"]
    assert "Universal Robots Dashboard Server" in lines["ur dashboard"]
    assert "eye_to_hand base -> camera_color_optical_frame, 0 days old" in lines["calibration"]
    assert lines["model server"].startswith("[  ok]") and fake_model_server in lines["model server"]


def test_g1_lowstate_is_found_on_its_interface(procs, tmp_path: Path) -> None:
    domain_id = random.SystemRandom().randint(100, 229)
    FakeG1Process(procs, tmp_path, domain_id, log_commands=False)
    code, lines = doctor(["--robot", "g1_left_arm", "--network-interface", "lo", "--dds-domain-id", str(domain_id),
                          "--camera", "none"])
    assert lines["g1 lowstate"].startswith("[  ok]"), lines["g1 lowstate"]
    assert code == 0, "\n".join(lines.values())


def test_broken_setup_names_every_problem_and_its_fix(tmp_path: Path, fake_model_server: str) -> None:
    requirements = tmp_path / "robot-pc.txt"
    requirements.write_text("pydantic==99.0.0\nnot-a-package-anywhere==1.0\n")
    example = tmp_path / "calibration.yaml"
    example.write_bytes((REPO / "config" / "calibration.example.yaml").read_bytes())
    closed = unique_loopback_host()  # nothing listens there
    code, lines = doctor(
        ["--robot", "ur5", "--robot-ip", closed, "--calibration-file", str(example), "--requirements",
         str(requirements), "--backend", "http", "--backend-url", fake_model_server, "--camera", "none"],
        {"RMW_IMPLEMENTATION": "rmw_nonsense_cpp", "ROS_DOMAIN_ID": "999",
         "FASTRTPS_DEFAULT_PROFILES_FILE": str(tmp_path / "missing.xml")},
    )
    assert code == 1
    expected = {
        "pydantic": "the code needs 99.0.0",
        "not-a-package-anywhere": "not installed",
        "rmw": "rmw_nonsense_cpp is not an RMW",
        "rclpy": "ends Python with exit status",  # rcl exits at import; doctor reports it and goes on
        "ros domain": "ROS_DOMAIN_ID=999",
        "dds profile": "missing.xml does not exist",
        "calibration": "shipped example",
        "ur dashboard": "not reachable",
        "ur rtde": "no RTDE answer",
        "model server": "/readyz answered 404",
    }
    for check, text in expected.items():
        line = lines[check]
        assert line.startswith("[FAIL]") and text in line and " -> " in line, line


def test_calibration_in_millimetres_and_stale_calibration(tmp_path: Path) -> None:
    millimetres = write_calibration(tmp_path / "mm.yaml", translation_m=[800.0, 100.0, 700.0])
    code, lines = doctor(["--calibration-file", str(millimetres), "--camera", "none"])
    assert code == 1 and lines["calibration"].startswith("[FAIL]") and "metres" in lines["calibration"]
    stale = write_calibration(tmp_path / "old.yaml")
    os.utime(stale, (0, 0))
    code, lines = doctor(["--calibration-file", str(stale), "--camera", "none"])
    assert lines["calibration"].startswith("[warn]") and "recalibrate" in lines["calibration"]
    assert code == 0


def test_a_module_missing_on_this_pc_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    """As on a robot PC where rosdep has not installed python3-opencv yet: the calibration check cannot
    load (geometry needs cv2), and doctor says so and goes on."""
    blocker = tmp_path / "blocked" / "cv2"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named cv2')\n")
    calibration = write_calibration(tmp_path / "cal.yaml")
    pythonpath = os.pathsep.join([str(blocker.parent), os.environ.get("PYTHONPATH", "")])
    code, lines = doctor(["--calibration-file", str(calibration), "--camera", "none"], {"PYTHONPATH": pythonpath})
    assert code == 1
    assert lines["calibration"].startswith("[FAIL]") and "cv2" in lines["calibration"]
    assert "rosdep install" in lines["calibration"]
    assert lines["rclpy"].startswith("[  ok]")  # the other checks still ran
