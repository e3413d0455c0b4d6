"""Every launch file is checked without a ROS install: parsed with xml.etree and expanded the way
launch_ros would (args with their defaults and choices, includes, ``$(var)``/``$(find-pkg-share)``,
parameter files, inline parameters YAML-parsed), for every combination of the choice arguments.

Each node must be a console script of this package or a known external executable; each parameter
must be one the node's pydantic config declares, with the ROS type the node declares it with, and
the merged parameters must validate; files named by parameters must exist and load; the camera pose
lives only in the calibration file the planner is given (no launch argument repeats it). A
``$(command ...)`` must run this package's installed CLI; it is run here (through
``python -m spatial_trace_ros.cli``) and its output YAML-parsed as launch_ros does.
"""

from __future__ import annotations

import ast
import itertools
import json
import re
import runpy
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from rcl_interfaces.msg import ParameterType

from spatial_trace_ros.camera.config import CameraNodeConfig
from spatial_trace_ros.geometry.calibration import load_calibration
from spatial_trace_ros.planning.node_config import PlannerNodeConfig
from spatial_trace_ros.planning.safety_config import load_safety_config
from spatial_trace_ros.robots.controller_config import ControllerNodeConfig
from spatial_trace_ros.robots.description import robot_urdf
from spatial_trace_ros.robots.description.node_config import RobotStateNodeConfig
from spatial_trace_ros.robots.description.tool import tool_geometry
from spatial_trace_ros.robots.model import make_robot_model
from spatial_trace_ros.ros.dds import large_message_profile
from spatial_trace_ros.ros.params import ros_parameter_type
from spatial_trace_ros.tools.description import resolve_tool
from spatial_trace_ros.trace.config import TraceStageConfig

REPO = Path(__file__).resolve().parents[1]
LAUNCH_DIR = REPO / "launch"
LAUNCH_FILES = sorted(LAUNCH_DIR.glob("*.launch.xml"))
PACKAGE = "spatial_trace_ros"
NODE_CONFIGS = {
    "camera_node": CameraNodeConfig,
    "trace_node": TraceStageConfig,
    "planner_node": PlannerNodeConfig,
    "controller_node": ControllerNodeConfig,
    "robot_state_node": RobotStateNodeConfig,
}
# Executables of other packages the launch files start, and launch files of others they include.
EXTERNAL_EXECUTABLES = {"rviz2": {"rviz2"}, "robot_state_publisher": {"robot_state_publisher"}}
# Launch arguments that once repeated the calibration file's camera pose: it lives in the file only.
EXTRINSIC_ARGUMENTS = {"camera_parent_frame", "camera_frame", "camera_x", "camera_y", "camera_z", "camera_qx",
                       "camera_qy", "camera_qz", "camera_qw"}
EXTERNAL_INCLUDES = {"realsense2_camera": {"launch/rs_launch.py"}}
EXTERNAL_SHARE = Path("/external-share")
INSTALL_PREFIX = Path("/install-prefix")  # $(find-pkg-prefix spatial_trace_ros)
SUBSTITUTION = re.compile(r"\$\(([a-z-]+) ([^()]*)\)")
PYTHON_TYPES = {
    ParameterType.PARAMETER_BOOL: bool, ParameterType.PARAMETER_INTEGER: int,
    ParameterType.PARAMETER_DOUBLE: float, ParameterType.PARAMETER_STRING: str,
}
ARRAY_ITEM_TYPES = {
    ParameterType.PARAMETER_BOOL_ARRAY: bool, ParameterType.PARAMETER_INTEGER_ARRAY: int,
    ParameterType.PARAMETER_DOUBLE_ARRAY: float, ParameterType.PARAMETER_STRING_ARRAY: str,
}


def console_scripts() -> set[str]:
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "entry_points":
            scripts = ast.literal_eval(node.value)["console_scripts"]
            return {spec.split("=")[0].strip() for spec in scripts}
    raise AssertionError("setup.py has no entry_points")


def substitute(text: str, values: dict[str, str]) -> str:
    """Resolve ``$(var x)`` and ``$(find-pkg-share pkg)`` (this package's share is the repository)."""
    def one(match: re.Match) -> str:
        kind, argument = match.group(1), match.group(2).strip()
        if kind == "var":
            if argument not in values:
                raise KeyError(f"$(var {argument}) has no value (no <arg> declares it)")
            return values[argument]
        if kind == "find-pkg-share":
            return str(REPO if argument == PACKAGE else EXTERNAL_SHARE / argument)
        if kind == "find-pkg-prefix":
            assert argument == PACKAGE, f"$(find-pkg-prefix {argument}): only this package's prefix is known"
            return str(INSTALL_PREFIX)
        if kind == "command":
            return run_command(argument)
        raise AssertionError(f"unsupported substitution $({kind} ...) in a launch file")

    while SUBSTITUTION.search(text):
        text = SUBSTITUTION.sub(one, text)
    return text


def installed_script(path: str) -> str:
    """The console script ``path`` names in colcon's install prefix (setup.cfg: ``install_scripts``)."""
    script_dir = INSTALL_PREFIX / "lib" / PACKAGE
    assert Path(path).parent == script_dir, f"{path} is not in {script_dir}, where colcon installs the scripts"
    assert Path(path).name in console_scripts(), f"{path}: no such console script in setup.py"
    assert "install_scripts=$base/lib/spatial_trace_ros" in (REPO / "setup.cfg").read_text()
    return Path(path).name


@cache
def run_command(argument: str) -> str:
    """``$(command 'CMD')``: CMD must run our CLI; run it here and return its stdout.

    launch's Command substitution fails on any stderr output (its default), so stderr must stay empty.
    """
    words = shlex.split(argument)
    assert len(words) == 1, f"$(command {argument}): quote the whole command line"
    program, *cli_args = shlex.split(words[0])
    assert installed_script(program) == "spatial-trace", f"$(command) runs {program}, not this package's CLI"
    done = subprocess.run([sys.executable, "-m", "spatial_trace_ros.cli", *cli_args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0 and not done.stderr, f"spatial-trace {' '.join(cli_args)} failed: {done.stderr}"
    return done.stdout


def launch_yaml(value: str) -> Any:
    """What launch_ros makes of a parameter value given as text (it YAML-parses it and refuses the rest)."""
    parsed = yaml.safe_load(value)
    if isinstance(parsed, list) and parsed and len({type(v) for v in parsed}) == 1:
        return parsed
    if isinstance(parsed, bool | int | float | str):
        return parsed
    raise TypeError(f"launch_ros refuses parameter value {value!r} (parsed as {parsed!r}); quote strings like "
                    "'...' so they stay strings")


@dataclass
class NodeInstance:
    package: str
    executable: str
    name: str
    args: str
    source: Path
    parameter_files: list[Path] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)  # merged, files then inline, in order


@dataclass
class Expansion:
    nodes: list[NodeInstance] = field(default_factory=list)
    external_includes: list[tuple[str, str]] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)


def declared_args(root: ET.Element) -> list[ET.Element]:
    return [el for el in root if el.tag == "arg"]


def arg_choices(arg: ET.Element) -> list[str]:
    return [c.get("value") for c in arg.findall("choice")]


def condition_holds(element: ET.Element, values: dict[str, str]) -> bool:
    for attr, wanted in (("if", True), ("unless", False)):
        if attr in element.attrib:
            text = substitute(element.get(attr), values).strip().lower()
            assert text in ("true", "false", "1", "0"), f"condition {attr}={text!r} is not a boolean"
            if (text in ("true", "1")) != wanted:
                return False
    return True


def parameter_file_section(path: Path, node_name: str) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) or {}
    section: dict[str, Any] = {}
    for key in ("/**", node_name, f"/{node_name}"):
        section.update((data.get(key) or {}).get("ros__parameters", {}))
    return section


def expand(path: Path, given: dict[str, str], out: Expansion | None = None) -> Expansion:
    """The nodes a launch file starts with these argument values (recursing into this package's includes)."""
    out = out or Expansion()
    root = ET.parse(path).getroot()
    assert root.tag == "launch", f"{path.name}: the root element must be <launch>"
    values: dict[str, str] = {}
    for arg in declared_args(root):
        name = arg.get("name")
        if name in given:
            value = given[name]
        elif arg.get("default") is not None:
            value = substitute(arg.get("default"), values)
        else:
            raise ValueError(f"{path.name}: required argument {name!r} was not given")
        choices = arg_choices(arg)
        if choices and value not in choices:
            raise ValueError(f"{path.name}: argument {name}={value!r} is not one of {choices}")
        values[name] = value
    for element in root:
        if not condition_holds(element, values):
            continue
        if element.tag == "include":
            target = Path(substitute(element.get("file"), values))
            passed = {a.get("name"): substitute(a.get("value"), values) for a in element.findall("arg")}
            if EXTERNAL_SHARE in target.parents:
                package = target.relative_to(EXTERNAL_SHARE).parts[0]
                out.external_includes.append((package, str(target.relative_to(EXTERNAL_SHARE / package))))
                continue
            assert target.is_file(), f"{path.name} includes {target}, which does not exist"
            expand(target, passed, out)
        elif element.tag == "node":
            node = NodeInstance(element.get("pkg"), element.get("exec"), element.get("name", ""),
                                substitute(element.get("args", ""), values), path)
            for param in element.findall("param"):
                if param.get("from") is not None:
                    file = Path(substitute(param.get("from"), values))
                    assert file.is_file(), f"{path.name}: parameter file {file} does not exist"
                    node.parameter_files.append(file)
                    node.parameters.update(parameter_file_section(file, node.name))
                else:
                    node.parameters[param.get("name")] = launch_yaml(substitute(param.get("value"), values))
            out.nodes.append(node)
        elif element.tag == "set_env":
            out.environment[element.get("name")] = substitute(element.get("value"), values)
        else:
            assert element.tag == "arg", f"{path.name}: unexpected <{element.tag}>"
    return out


def choice_combinations(path: Path, fixed: dict[str, str] | None = None) -> list[dict[str, str]]:
    """Every combination of the values of the arguments with choices (others keep their defaults)."""
    args = [a for a in declared_args(ET.parse(path).getroot()) if arg_choices(a)]
    names = [a.get("name") for a in args]
    combos = [dict(zip(names, values, strict=True)) for values in itertools.product(*(arg_choices(a) for a in args))]
    return [{**c, **(fixed or {})} for c in combos]


def check_parameters(node: NodeInstance) -> None:
    """Every parameter is declared by the node with this ROS type, and all of them validate together."""
    model = NODE_CONFIGS[node.executable]
    fields = model.model_fields
    where = f"{node.source.name}: {node.executable}"
    for name, value in node.parameters.items():
        assert name in fields, f"{where} does not declare parameter {name!r} (declared: {sorted(fields)})"
        ptype = ros_parameter_type(fields[name].annotation)
        if ptype in PYTHON_TYPES:
            wanted = PYTHON_TYPES[ptype]
            ok = type(value) is wanted
            assert ok, f"{where}: {name} = {value!r} is {type(value).__name__}, the node declares {wanted.__name__}"
        else:
            item = ARRAY_ITEM_TYPES[ptype]
            assert isinstance(value, list) and all(type(v) is item for v in value), (
                f"{where}: {name} = {value!r} must be a list of {item.__name__}")
    model.model_validate(node.parameters)


def installed_share_files(monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Path under share/spatial_trace_ros -> source file, from the data_files setup.py gives setuptools."""
    import setuptools

    given: dict[str, Any] = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: given.update(kwargs))
    monkeypatch.chdir(REPO)
    runpy.run_path(str(REPO / "setup.py"))
    share = Path("share") / PACKAGE
    return {(Path(target) / Path(source).name).relative_to(share).as_posix(): REPO / source
            for target, sources in given["data_files"] if Path(target).is_relative_to(share)
            for source in sources}


def test_realsense_ros_driver_gets_the_packaged_fast_dds_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    environment = expand(LAUNCH_DIR / "camera_realsense_ros.launch.xml", {}).environment
    profile = Path(environment["FASTDDS_DEFAULT_PROFILES_FILE"])
    assert environment["FASTRTPS_DEFAULT_PROFILES_FILE"] == str(profile), "Fast DDS 2 reads the old name"
    installed = installed_share_files(monkeypatch)
    assert installed.get(profile.relative_to(REPO).as_posix()) == large_message_profile(), (
        f"{profile} is not the profile setup.py installs from spatial_trace_ros/ros/")


def test_there_are_launch_files_and_setup_installs_them() -> None:
    names = {p.name for p in LAUNCH_FILES}
    assert {"bringup.launch.xml", "sim.launch.xml", "g1.launch.xml"} <= names
    assert not [p for p in LAUNCH_DIR.rglob("*") if p.is_dir()], "setup.py installs launch/*.launch.xml only"
    assert 'glob("launch/*.launch.xml")' in (REPO / "setup.py").read_text()


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_every_var_has_an_arg(path: Path) -> None:
    text = re.sub(r"<!--.*?-->", "", path.read_text(), flags=re.S)
    used = set(re.findall(r"\$\(var ([A-Za-z0-9_]+)\)", text))
    root = ET.fromstring(text)
    declared = {a.get("name") for a in declared_args(root)}
    assert used <= declared, f"{path.name}: $(var) without <arg>: {sorted(used - declared)}"
    for arg in declared_args(root):
        assert arg.get("description"), f"{path.name}: <arg {arg.get('name')}> has no description"
        if arg_choices(arg) and arg.get("default") is not None:
            assert arg.get("default") in arg_choices(arg), f"{path.name}: default of {arg.get('name')} is no choice"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_nodes_exist_and_their_parameters_are_declared_and_valid(path: Path) -> None:
    scripts = console_scripts()
    required = {a.get("name"): "/data/desk.db3" for a in declared_args(ET.parse(path).getroot())
                if a.get("default") is None}
    for combo in choice_combinations(path, required):
        if path.name == "bringup.launch.xml" and combo["camera"] == "sim" and combo["robot"].startswith("g1"):
            with pytest.raises(ValueError, match="robot='g1"):
                expand(path, combo)
            continue
        if combo.get("camera") == "replay":
            combo = {**combo, "recording_path": "/data/desk.db3"}
        expansion = expand(path, combo)
        for node in expansion.nodes:
            if node.package == PACKAGE:
                assert node.executable in scripts, f"{path.name}: no console script {node.executable!r} in setup.py"
                assert node.name == node.executable, "node names are those of docs/interfaces.md"
                check_parameters(node)
            else:
                assert node.executable in EXTERNAL_EXECUTABLES.get(node.package, set()), (
                    f"{path.name}: unknown executable {node.package}/{node.executable}")
        for package, file in expansion.external_includes:
            assert file in EXTERNAL_INCLUDES.get(package, set()), f"{path.name}: unknown include {package}/{file}"


def _bringup_expansions() -> list[tuple[str, dict[str, str], Expansion]]:
    cases = [("bringup.launch.xml", {}), ("bringup.launch.xml", {"robot": "ur5", "camera": "realsense_ros"}),
             ("sim.launch.xml", {}), ("sim.launch.xml", {"robot": "ur5", "scene_seed": "7"}),
             ("g1.launch.xml", {}), ("g1.launch.xml", {"arm": "right", "camera": "realsense_ros"})]
    return [(name, given, expand(LAUNCH_DIR / name, given)) for name, given in cases]


def _node(expansion: Expansion, executable: str) -> NodeInstance:
    found = [n for n in expansion.nodes if n.executable == executable]
    assert len(found) == 1, f"expected one {executable}, found {len(found)}"
    return found[0]


@pytest.mark.parametrize("case", _bringup_expansions(), ids=lambda c: f"{c[0]}{c[1]}")
def test_stack_is_complete_and_consistent(case: tuple[str, dict[str, str], Expansion]) -> None:
    name, given, expansion = case
    camera = "realsense2_camera" in {p for p, _ in expansion.external_includes}
    if not camera:
        _node(expansion, "camera_node")
    for executable in ("trace_node", "planner_node", "controller_node", "rviz2"):
        _node(expansion, executable)
    planner = _node(expansion, "planner_node").parameters
    controller = _node(expansion, "controller_node").parameters
    assert planner["robot"] == controller["robot"]
    assert planner["safety_file"] == controller["safety_file"], "planner and controller must enforce the same limits"
    load_safety_config(planner["safety_file"])
    # RViz shows the robot the planner plans for, and the camera where the planner believes it is.
    robot_state = _node(expansion, "robot_state_node").parameters
    assert robot_state["robot"] == planner["robot"]
    assert robot_state["calibration_file"] == planner["calibration_file"]
    # ... with the tool the planner plans for and the controller drives
    assert robot_state.get("tool", "") == planner.get("tool", "") == controller.get("tool", "")
    if name == "sim.launch.xml":
        assert robot_state["tool"] == "default"
    calibration = load_calibration(planner["calibration_file"])
    # RViz looks from the robot base frame the eye-to-hand calibration is given in.
    rviz = _node(expansion, "rviz2").args.split()
    assert rviz[rviz.index("-f") + 1] == calibration.transform.parent
    assert Path(rviz[rviz.index("-d") + 1]).is_file()
    if name == "sim.launch.xml":
        _check_simulation_agrees(expansion, given)


def _check_simulation_agrees(expansion: Expansion, given: dict[str, str]) -> None:
    """The sim camera, the oracle and the sim driver simulate the same arm and scene."""
    from spatial_trace_ros.sim.camera import SimCameraOptions
    from spatial_trace_ros.sim.config import split_options
    from spatial_trace_ros.sim.robot import SimDriverOptions
    from spatial_trace_ros.sim.scene import calibration_dict, generate_scene

    robot, seed = given.get("robot", "ur5e"), int(given.get("scene_seed", "0"))
    camera_options = json.loads(_node(expansion, "camera_node").parameters["sim_options_json"])
    camera_world, _ = split_options(camera_options, SimCameraOptions, "camera")
    trace = TraceStageConfig.model_validate(_node(expansion, "trace_node").parameters)
    assert trace.backend == "oracle"
    oracle_world = split_options(trace.backend_options(), SimCameraOptions, "oracle")[0]
    controller = ControllerNodeConfig.model_validate(_node(expansion, "controller_node").parameters)
    assert controller.driver_name == "sim"
    driver_world, _ = split_options({"robot": robot, **controller.driver_options()}, SimDriverOptions, "driver")
    assert camera_world == oracle_world
    assert (camera_world.robot, camera_world.scene_seed) == (robot, seed)
    assert driver_world.robot == robot
    planner = _node(expansion, "planner_node").parameters
    assert load_calibration(planner["calibration_file"]).transform.parent == "base"
    expected = calibration_dict(generate_scene(seed, 4, 2, "eye_to_hand", 640, 480))
    cal = yaml.safe_load(Path(planner["calibration_file"]).read_text())
    np.testing.assert_allclose(cal["translation_m"], expected["translation_m"], atol=1e-9)
    np.testing.assert_allclose(cal["rotation"]["quaternion_xyzw"], expected["rotation"]["quaternion_xyzw"], atol=1e-9)


@pytest.mark.parametrize("name", ["bringup.launch.xml", "sim.launch.xml", "g1.launch.xml"])
def test_one_publisher_of_the_description_and_each_link_tf(name: str) -> None:
    """robot_state_publisher:=true hands the description and the links to robot_state_publisher (with
    the URDF robot_state_node would publish); false keeps them in robot_state_node. Never both."""
    path = LAUNCH_DIR / name
    combos = [c for c in choice_combinations(path) if c.get("camera") != "replay"]
    combos = [c for c in combos if not (c.get("camera") == "sim" and c.get("robot", "").startswith("g1"))]
    assert {c["robot_state_publisher"] for c in combos} == {"true", "false"}
    for combo in combos:
        expansion = expand(path, combo)
        robot_state = _node(expansion, "robot_state_node").parameters
        publishers = [n for n in expansion.nodes if n.package == "robot_state_publisher"]
        if combo["robot_state_publisher"] == "false":
            assert not publishers, f"{name} {combo}: robot_state_publisher runs unasked"
            assert robot_state.get("publish_robot_tf", True) is True
            continue
        assert len(publishers) == 1, f"{name} {combo}: expected one robot_state_publisher"
        assert robot_state["publish_robot_tf"] is False, "robot_state_node would publish the links a second time"
        assert RobotStateNodeConfig.model_validate(robot_state).publish_robot_tf is False
        assert set(publishers[0].parameters) == {"robot_description"}
        # The text robot_state_node would publish, as launch_ros hands it over (YAML-parsed: lines folded).
        tool = tool_geometry(resolve_tool(robot_state.get("tool", ""), robot_state["robot"]))
        urdf = robot_urdf(robot_state["robot"], tool)
        assert publishers[0].parameters["robot_description"] == launch_yaml(urdf)


@pytest.mark.parametrize("robot", ["ur5e", "g1_left_arm"])
def test_robot_state_publisher_gets_a_urdf_pinocchio_loads(robot: str) -> None:
    pin = pytest.importorskip("pinocchio")
    given = {"robot": robot, "robot_state_publisher": "true", "camera": "realsense"}
    urdf = _node(expand(LAUNCH_DIR / "bringup.launch.xml", given), "robot_state_publisher").parameters[
        "robot_description"]
    assert isinstance(urdf, str) and urdf.lstrip().startswith("<?xml")
    model = pin.buildModelFromXML(urdf)
    reference = pin.buildModelFromXML(robot_urdf(robot))
    assert list(model.names) == list(reference.names) and model.nq == reference.nq
    frames = {model.frames[i].name for i in range(model.nframes)}
    assert {"tcp", make_robot_model(robot).base_frame, make_robot_model(robot).tool_frame} <= frames
    # With the robot's shipped tool too (what a params file with robot_state_node's tool: default gives).
    tool = tool_geometry(resolve_tool("default", robot))
    script = INSTALL_PREFIX / "lib" / PACKAGE / "spatial-trace"
    folded = launch_yaml(run_command(f"'{script} description {robot} --tool default'"))
    assert folded == launch_yaml(robot_urdf(robot, tool))
    with_tool = pin.buildModelFromXML(folded)
    assert f"{tool.name}_link" in {with_tool.frames[i].name for i in range(with_tool.nframes)}


def test_command_substitution_runs_only_our_installed_cli() -> None:
    with pytest.raises(AssertionError, match="not in"):
        run_command("'/usr/bin/spatial-trace description ur5e'")
    with pytest.raises(AssertionError, match="no such console script"):
        run_command(f"'{INSTALL_PREFIX}/lib/{PACKAGE}/xacro robot.urdf.xacro'")
    with pytest.raises(AssertionError, match="failed"):
        run_command(f"'{INSTALL_PREFIX}/lib/{PACKAGE}/spatial-trace description ur10'")


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_the_camera_pose_is_no_launch_argument(path: Path) -> None:
    """One source of truth: the calibration file. No launch file declares or passes the pose again."""
    root = ET.parse(path).getroot()
    repeated = {a.get("name") for a in root.iter("arg")} & EXTRINSIC_ARGUMENTS
    assert not repeated, f"{path.name} repeats the calibration file's camera pose: {sorted(repeated)}"
    assert "static_transform_publisher" not in path.read_text()


def test_expansion_catches_mistakes(tmp_path: Path) -> None:
    """The checker itself fails on the mistakes it is there to catch."""
    def launch(body: str) -> Path:
        path = tmp_path / "x.launch.xml"
        path.write_text(f"<launch>{body}</launch>")
        return path

    node = '<node pkg="spatial_trace_ros" exec="controller_node" name="controller_node">{}</node>'
    with pytest.raises(KeyError, match="policy"):
        expand(launch(node.format('<param name="control_policy" value="$(var policy)"/>')), {})
    bad_name = expand(launch(node.format('<param name="robot_name" value="ur5"/>')), {}).nodes[0]
    with pytest.raises(AssertionError, match="does not declare parameter 'robot_name'"):
        check_parameters(bad_name)
    int_for_double = expand(launch(node.format('<param name="gain" value="300"/>')), {}).nodes[0]
    with pytest.raises(AssertionError, match="gain = 300 is int"):
        check_parameters(int_for_double)
    with pytest.raises(TypeError, match="refuses"):
        expand(launch(node.format('<param name="robot_ip" value=""/>')), {})
    bad_policy = expand(launch(node.format('<param name="control_policy" value="teleport"/>')), {}).nodes[0]
    with pytest.raises(ValueError, match="teleport"):
        check_parameters(bad_policy)
