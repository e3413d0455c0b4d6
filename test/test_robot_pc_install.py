"""The robot-PC install path holds together: requirements/robot-pc.txt pins what base.txt pins, takes
nothing the distro must own, and package.xml asks rosdep only for what the distro supplies well
enough (nothing robot-pc.txt installs). The README's robot-PC section is the one described here."""

from __future__ import annotations

import re
from pathlib import Path

from catkin_pkg.package import parse_package

from spatial_trace_ros.doctor.environment import read_requirements

REPO = Path(__file__).resolve().parents[1]
ROBOT_PC = REPO / "requirements" / "robot-pc.txt"
# The distro's message packages are compiled against its numpy; these come from rosdep, never pip.
DISTRO_OWNED = {"numpy", "scipy", "opencv-python", "opencv-python-headless", "opencv-contrib-python", "pyyaml"}
# pip name -> the rosdep key that would bring the distro's (too old) version.
ROSDEP_KEY = {"pydantic": "python3-pydantic", "httpx": "python3-httpx", "transforms3d": "python3-transforms3d",
              "fastapi": "python3-fastapi", "uvicorn": "python3-uvicorn"}


def test_robot_pc_pins_are_base_pins() -> None:
    robot_pc = read_requirements(ROBOT_PC)
    base = read_requirements(REPO / "requirements" / "base.txt")
    assert {"pydantic", "httpx", "ur-rtde", "pyrealsense2"} <= set(robot_pc)
    for name, version in robot_pc.items():
        assert base.get(name) == version, f"robot-pc.txt pins {name}=={version}, base.txt {base.get(name)}"
        assert not name.startswith("ros-"), f"{name}: ROS comes from the distro on a robot PC"
    assert not DISTRO_OWNED & set(robot_pc), f"robot-pc.txt must not replace {DISTRO_OWNED & set(robot_pc)}"


def test_package_xml_has_no_key_for_what_pip_installs() -> None:
    execs = {d.name for d in parse_package(str(REPO / "package.xml")).exec_depends}
    for name in read_requirements(ROBOT_PC):
        assert ROSDEP_KEY.get(name, f"python3-{name}") not in execs, f"rosdep would install an old {name}"
    assert not {"python3-fastapi", "python3-uvicorn"} & execs, "server-only dependencies on the robot PC"
    assert {"python3-numpy", "python3-scipy", "python3-opencv", "python3-yaml", "tf2_msgs", "python3-venv"} <= execs


def test_readme_robot_pc_section_is_this_path() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## On the robot PC"):]
    section = section[:section.index("\n## ", 1)]
    for step in ("--system-site-packages", "requirements/robot-pc.txt", "rosdep install", "COLCON_IGNORE",
                 "python -m colcon build", "spatial-trace doctor"):
        assert step in section, f"README robot-PC section lacks {step!r}"
    assert not re.search(r"pip install (?!-r)", section), "install Python packages through robot-pc.txt only"
