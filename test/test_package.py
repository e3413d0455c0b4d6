"""The package is a real ament_python package: package.xml parses, every console script imports."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata as md
import subprocess
import sys
from pathlib import Path

import pytest
from catkin_pkg.package import parse_package

REPO = Path(__file__).resolve().parents[1]


def _setup_entry_points() -> dict[str, list[str]]:
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "entry_points":
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no entry_points")


def test_package_xml_is_valid_format3_ament_python() -> None:
    pkg = parse_package(str(REPO / "package.xml"))
    pkg.validate()
    assert pkg.name == "spatial_trace_ros"
    assert pkg.package_format == 3
    assert pkg.get_build_type() == "ament_python"
    execs = {d.name for d in pkg.exec_depends}
    for dep in ("rclpy", "sensor_msgs", "geometry_msgs", "nav_msgs", "visualization_msgs",
                "trajectory_msgs", "std_srvs", "diagnostic_msgs"):
        assert dep in execs, f"package.xml lacks <exec_depend>{dep}</exec_depend>"


def test_versions_agree() -> None:
    import spatial_trace_ros

    pkg = parse_package(str(REPO / "package.xml"))
    assert pkg.version == spatial_trace_ros.__version__ == md.version("spatial_trace_ros")


@pytest.mark.parametrize("group", ["console_scripts", "spatial_trace_ros.control_policies"])
def test_every_entry_point_imports(group: str) -> None:
    for spec in _setup_entry_points()[group]:
        name, target = (s.strip() for s in spec.split("="))
        module_name, _, attr = target.partition(":")
        module = importlib.import_module(module_name)
        assert callable(getattr(module, attr)), f"{name}: {target} is not callable"


def test_installed_entry_points_match_setup_py() -> None:
    installed = {ep.name for ep in md.entry_points(group="console_scripts") if ep.value.startswith("spatial_trace_ros")}
    declared = {s.split("=")[0].strip() for s in _setup_entry_points()["console_scripts"]}
    assert declared == installed


def test_cli_help_and_version() -> None:
    out = subprocess.run([sys.executable, "-m", "spatial_trace_ros.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "COMMAND" in out.stdout
    out = subprocess.run([sys.executable, "-m", "spatial_trace_ros.cli", "version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.startswith("spatial_trace_ros 0.1.0")
    assert "rclpy" in out.stdout


def test_core_modules_do_not_import_rclpy() -> None:
    """Cores stay plain Python: only ros/, nodes/ and testing/ may import rclpy or ROS messages."""
    allowed = {"ros", "nodes", "testing"}
    ros_modules = ("rclpy", "sensor_msgs", "geometry_msgs", "nav_msgs", "std_msgs", "visualization_msgs",
                   "trajectory_msgs", "std_srvs", "diagnostic_msgs", "builtin_interfaces", "rcl_interfaces")
    offenders = []
    pkg_dir = REPO / "spatial_trace_ros"
    for path in pkg_dir.rglob("*.py"):
        rel = path.relative_to(pkg_dir)
        if rel.parts[0] in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{rel}: {n}" for n in names if n.split(".")[0] in ros_modules]
    assert not offenders, f"core modules import ROS: {offenders}"


def test_package_data_ships_every_data_file_the_code_loads() -> None:
    """Files next to the code (Fast DDS profile, MuJoCo assets, server schemas) must be installed too."""
    tree = ast.parse((REPO / "setup.py").read_text())
    keyword = next(n for n in ast.walk(tree) if isinstance(n, ast.keyword) and n.arg == "package_data")
    patterns = ast.literal_eval(keyword.value.values[0])
    package = REPO / "spatial_trace_ros"
    data_files = [p for p in package.rglob("*")
                  if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert data_files, "no data files found; is the package where the test expects it?"
    unshipped = [str(p.relative_to(package)) for p in data_files
                 if not any(p.relative_to(package).match(pattern) for pattern in patterns)]
    assert not unshipped, f"add these to package_data in setup.py: {unshipped}"
