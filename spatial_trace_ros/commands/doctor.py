"""``spatial-trace doctor``: check what a robot PC needs and print what to fix, one line per finding."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from spatial_trace_ros.doctor import environment as envchecks
from spatial_trace_ros.doctor import reach
from spatial_trace_ros.doctor.findings import Finding, Level, exit_code, format_finding

HELP = "check this robot PC (ROS, Python deps, DDS, calibration, camera, robot, model server); exit 1 if blocked"
PACKAGE = "spatial_trace_ros"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params-file", type=Path, help="the robot's parameter file (a copy of config/ur5e.yaml ...): "
                   "robot, robot_ip, driver_options_json and calibration_file are read from it")
    p.add_argument("--robot", choices=["ur5", "ur5e", "g1_left_arm", "g1_right_arm"], help="overrides the file's")
    p.add_argument("--robot-ip", help="UR controller address (overrides the file's robot_ip)")
    p.add_argument("--network-interface", help="G1: the PC's port on the robot network (overrides the file's)")
    p.add_argument("--dds-domain-id", type=int, help="G1: the robot's DDS domain (default 0)")
    p.add_argument("--calibration-file", type=Path, help="camera extrinsics YAML the planner will use")
    p.add_argument("--max-calibration-age-days", type=float, default=90.0, help="warn when older [days]")
    p.add_argument("--backend", default="http", choices=["http", "robotracer", "openai"], help="model server API")
    p.add_argument("--backend-url", default="", help="model server address; empty = not checked")
    p.add_argument("--camera", default="realsense", choices=["realsense", "none"], help="camera to look for")
    p.add_argument("--requirements", type=Path, help="requirements file to check versions against "
                   "(default: requirements/robot-pc.txt of this package)")
    p.add_argument("--timeout-s", type=float, default=3.0, help="per network check [s]")


def _package_file(relative: str) -> Path | None:
    """A file of this package: from the source tree, else from the install's share/ folder (colcon puts
    this module at <prefix>/lib/pythonX.Y/site-packages/spatial_trace_ros/commands/)."""
    parents = Path(__file__).resolve().parents
    candidates = [parents[2] / relative]
    if len(parents) > 5:
        candidates.append(parents[5] / "share" / PACKAGE / relative)
    return next((c for c in candidates if c.is_file()), None)


def _robot_params(path: Path | None) -> dict:
    """controller_node's and planner_node's parameters of a robot parameter file, merged."""
    if path is None:
        return {}
    import yaml

    from spatial_trace_ros.errors import ConfigError

    if not path.is_file():
        raise ConfigError(f"parameter file {path} not found; pass a copy of config/<robot>.yaml")
    data = yaml.safe_load(path.read_text()) or {}
    merged: dict = {}
    for node in ("planner_node", "controller_node"):
        merged.update((data.get(node) or {}).get("ros__parameters") or {})
    return merged


def _safely(name: str, check: Callable[[], list[Finding]]) -> list[Finding]:
    """A check that fails in an unforeseen way (a module missing on this PC) is a finding, not a crash."""
    try:
        return check()
    except ImportError as err:
        return [Finding(name, Level.FAIL, f"cannot check: {err}", "rosdep install --from-paths src --ignore-src "
                        "-y, and pip install -r requirements/robot-pc.txt")]
    except Exception as err:  # reported as a finding; the other checks go on
        return [Finding(name, Level.FAIL, f"cannot check: {type(err).__name__}: {err}", "see the message")]


def _robot_checks(args: argparse.Namespace, params: dict, robot: str, options: dict) -> list[Finding]:
    if params.get("driver") == "sim":
        return [Finding("robot", Level.SKIP, "driver sim: no robot to reach")]
    if robot.startswith("ur"):
        host = args.robot_ip or params.get("robot_ip", "")
        if not host:
            return [Finding("robot", Level.SKIP, "no robot_ip given (--robot-ip or --params-file)")]
        return reach.check_ur(host, args.timeout_s)
    if robot.startswith("g1"):
        interface = args.network_interface
        if interface is None:
            interface = options.get("network_interface", "")
        domain = args.dds_domain_id if args.dds_domain_id is not None else int(options.get("dds_domain_id", 0))
        return reach.check_g1(interface, domain, args.timeout_s)
    return [Finding("robot", Level.SKIP, "no robot given (--robot or --params-file)")]


def run(args: argparse.Namespace) -> int:
    params = _robot_params(args.params_file)
    robot = args.robot or params.get("robot", "")
    options = json.loads(params.get("driver_options_json") or "{}")
    calibration = args.calibration_file
    if calibration is None and params.get("calibration_file"):
        calibration = Path(params["calibration_file"])
    env = envchecks.environ()

    checks: list[tuple[str, Callable[[], list[Finding]]]] = [
        ("rclpy", lambda: envchecks.check_ros(env)),
        ("python deps", lambda: envchecks.check_python_dependencies(
            args.requirements or _package_file("requirements/robot-pc.txt"))),
        ("rmw", lambda: envchecks.check_middleware(env)),
        ("calibration", lambda: envchecks.check_calibration(
            calibration, args.max_calibration_age_days, _package_file("config/calibration.example.yaml"))),
        ("camera", lambda: envchecks.check_camera() if args.camera == "realsense" else [
            Finding("camera", Level.SKIP, "--camera none")]),
        ("robot", lambda: _robot_checks(args, params, robot, options)),
        ("model server", lambda: reach.check_model_server(args.backend_url, args.backend, args.timeout_s)
         if args.backend_url else [Finding("model server", Level.SKIP, "no --backend-url given")]),
    ]
    findings = [finding for name, check in checks for finding in _safely(name, check)]

    for finding in findings:
        print(format_finding(finding))
    blocking = sum(f.level == Level.FAIL for f in findings)
    warnings = sum(f.level == Level.WARN for f in findings)
    print(f"{len(findings)} checks: {blocking} blocking, {warnings} warnings")
    return exit_code(findings)
