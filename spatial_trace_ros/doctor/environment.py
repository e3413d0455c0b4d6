"""Checks of this PC itself: ROS distro and rclpy, Python dependency versions, RMW and DDS settings,
the calibration file."""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from spatial_trace_ros.doctor.findings import Finding, Level
from spatial_trace_ros.errors import SpatialTraceError

SUPPORTED_DISTROS = ("humble", "jazzy", "kilted")
MESSAGE_PACKAGES = ("std_msgs", "sensor_msgs", "geometry_msgs", "nav_msgs", "visualization_msgs",
                    "trajectory_msgs", "std_srvs", "diagnostic_msgs")
KNOWN_RMW = ("rmw_fastrtps_cpp", "rmw_cyclonedds_cpp", "rmw_connextdds", "rmw_zenoh_cpp")
INSTALL_HINT = "pip install -r requirements/robot-pc.txt in the venv (README, 'On the robot PC')"
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)")


# Imported in a child process: rcl ends the whole process at import (exit 102) when
# RMW_IMPLEMENTATION names another RMW than the one it loads, and doctor must report that, not die of it.
_IMPORT_PROBE = """
import importlib, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
        found[name] = ""
    except Exception as err:
        found[name] = f"{type(err).__name__}: {err}"
print(json.dumps(found))
"""


def _probe_imports(modules: list[str], env: Mapping[str, str]) -> tuple[dict[str, str] | None, str]:
    """``module -> error ('' = imported)`` from a child Python, or None and why it died."""
    done = subprocess.run([sys.executable, "-c", _IMPORT_PROBE, *modules], capture_output=True, text=True,
                          env=dict(env), timeout=120)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [""])[-1]
        return None, f"importing them ends Python with exit status {done.returncode}: {last[:300]}"
    return json.loads(done.stdout.strip().splitlines()[-1]), ""


def check_ros(env: Mapping[str, str]) -> list[Finding]:
    distro = env.get("ROS_DISTRO", "")
    findings = []
    if not distro:
        findings.append(Finding("ros distro", Level.WARN, "ROS_DISTRO is not set",
                                "source /opt/ros/<distro>/setup.bash (and your workspace's install/setup.bash)"))
    elif distro not in SUPPORTED_DISTROS:
        findings.append(Finding("ros distro", Level.WARN, f"{distro} is not one this package is tested on",
                                f"use one of {', '.join(SUPPORTED_DISTROS)}"))
    else:
        findings.append(Finding("ros distro", Level.OK, distro))
    messages = [f"{p}.srv" if p == "std_srvs" else f"{p}.msg" for p in MESSAGE_PACKAGES]
    found, crash = _probe_imports(["rclpy", *messages, "tf2_msgs.msg"], env)
    if found is None:
        return [*findings, Finding("rclpy", Level.FAIL, crash,
                                   "unset RMW_IMPLEMENTATION or install that RMW (ros-$ROS_DISTRO-rmw-...)")]
    if found["rclpy"]:
        return [*findings, Finding("rclpy", Level.FAIL, f"not importable ({found['rclpy']})",
                                   "source /opt/ros/<distro>/setup.bash; make the venv with --system-site-packages")]
    findings.append(Finding("rclpy", Level.OK, "importable"))
    missing = [m.split(".")[0] for m in messages if found[m]]
    if missing:
        findings.append(Finding("ros messages", Level.FAIL, f"missing {', '.join(missing)}",
                                "rosdep install --from-paths src --ignore-src -y"))
    else:
        findings.append(Finding("ros messages", Level.OK, f"{len(MESSAGE_PACKAGES)} message packages importable"))
    if found["tf2_msgs.msg"]:
        findings.append(Finding("tf2_msgs", Level.WARN, "not importable: RViz gets no TF of the robot and camera",
                                "sudo apt install ros-$ROS_DISTRO-tf2-msgs (or make setup in a dev venv)"))
    else:
        findings.append(Finding("tf2_msgs", Level.OK, "importable: robot_state_node publishes TF"))
    return findings


def read_requirements(path: Path) -> dict[str, str]:
    """``name -> pinned version`` of a requirements file's ``name==version`` lines."""
    pins = {}
    for line in path.read_text().splitlines():
        match = REQUIREMENT.match(line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def _major(version: str) -> int:
    match = re.match(r"\d+", version)
    return int(match.group()) if match else 0


def check_python_dependencies(requirements: Path | None) -> list[Finding]:
    """Every pin of requirements/robot-pc.txt: missing or an older major version is blocking (pydantic 1
    vs 2 is the classic), another version is a warning."""
    if requirements is None or not requirements.is_file():
        return [Finding("python deps", Level.WARN, "requirements/robot-pc.txt not found, versions not checked",
                        "run doctor from the source checkout or pass --requirements")]
    findings = []
    for name, pinned in read_requirements(requirements).items():
        try:
            installed = md.version(name)
        except md.PackageNotFoundError:
            findings.append(Finding(name, Level.FAIL, f"not installed (needs {pinned})", INSTALL_HINT))
            continue
        if _major(installed) < _major(pinned):
            findings.append(Finding(name, Level.FAIL, f"{installed} installed, the code needs {pinned}", INSTALL_HINT))
        elif installed != pinned:
            findings.append(Finding(name, Level.WARN, f"{installed} installed, tested with {pinned}", INSTALL_HINT))
        else:
            findings.append(Finding(name, Level.OK, installed))
    return findings


def check_middleware(env: Mapping[str, str]) -> list[Finding]:
    findings = []
    rmw = env.get("RMW_IMPLEMENTATION", "")
    if rmw and rmw not in KNOWN_RMW:
        findings.append(Finding("rmw", Level.FAIL, f"RMW_IMPLEMENTATION={rmw} is not an RMW",
                                f"unset it or use one of {', '.join(KNOWN_RMW)}"))
    else:
        findings.append(Finding("rmw", Level.OK, rmw or "the distro's default (rmw_fastrtps_cpp)"))
    domain = env.get("ROS_DOMAIN_ID", "")
    if domain and not (domain.isdigit() and int(domain) <= 232):
        findings.append(Finding("ros domain", Level.FAIL, f"ROS_DOMAIN_ID={domain} is not 0-232",
                                "set ROS_DOMAIN_ID to one number 0-232, the same in every terminal"))
    else:
        findings.append(Finding("ros domain", Level.OK, f"ROS_DOMAIN_ID={domain or '0 (default)'}"))
    if env.get("ROS_LOCALHOST_ONLY") == "1" or env.get("ROS_AUTOMATIC_DISCOVERY_RANGE") == "LOCALHOST":
        findings.append(Finding("discovery", Level.WARN, "limited to this PC: other PCs (RViz, spatial-trace ask) "
                                "will not see the nodes", "unset ROS_LOCALHOST_ONLY / ROS_AUTOMATIC_DISCOVERY_RANGE"
                                " unless that is what you want"))
    for var in ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE"):
        path = env.get(var, "")
        if path and not Path(path).is_file():
            findings.append(Finding("dds profile", Level.FAIL, f"{var}={path} does not exist",
                                    f"unset {var} (the nodes load the package's large-message profile)"))
    uri = env.get("CYCLONEDDS_URI", "")
    if uri.startswith("file://") and not Path(uri[len("file://"):]).is_file():
        findings.append(Finding("dds profile", Level.FAIL, f"CYCLONEDDS_URI={uri} does not exist",
                                "point CYCLONEDDS_URI at an existing XML file or unset it"))
    return findings


def check_calibration(path: Path | None, max_age_days: float, example: Path | None = None,
                      now_s: float | None = None) -> list[Finding]:
    from spatial_trace_ros.geometry.calibration import load_calibration

    if path is None:
        return [Finding("calibration", Level.SKIP, "no --calibration-file given")]
    try:
        calibration = load_calibration(path)
    except SpatialTraceError as err:
        return [Finding("calibration", Level.FAIL, str(err), "fix the file or recalibrate (docs/launch.md)")]
    age_days = ((now_s or time.time()) - path.stat().st_mtime) / 86400.0
    t = calibration.transform
    summary = f"{calibration.mode} {t.parent} -> {t.child}, {age_days:.0f} days old"
    if example is not None and example.is_file() and path.read_bytes() == example.read_bytes():
        return [Finding("calibration", Level.FAIL, f"{path} is the shipped example, not your calibration",
                        "copy it and fill in your hand-eye calibration's result")]
    if age_days > max_age_days:
        return [Finding("calibration", Level.WARN, summary,
                        f"older than {max_age_days:g} days: recalibrate if the camera or robot was moved")]
    return [Finding("calibration", Level.OK, summary)]


def check_camera() -> list[Finding]:
    try:
        import pyrealsense2 as rs
    except ImportError as err:
        return [Finding("camera", Level.FAIL, f"pyrealsense2 not importable ({err})",
                        f"{INSTALL_HINT}; on x86_64 it needs the libusb-1.0-0 package")]
    devices = rs.context().query_devices()
    if len(devices) == 0:
        return [Finding("camera", Level.FAIL, "no RealSense found",
                        "plug the camera into a USB 3 port; check `rs-enumerate-devices` and the udev rules")]
    names = [f"{d.get_info(rs.camera_info.name)} #{d.get_info(rs.camera_info.serial_number)}" for d in devices]
    return [Finding("camera", Level.OK, ", ".join(names))]


def environ() -> dict[str, str]:
    return dict(os.environ)
