"""The URDF and the planner's kinematics agree: forward kinematics and Jacobians of the URDF, loaded by
an independent parser (Pinocchio), equal the planner's at random joint vectors."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from spatial_trace_ros.robots.description import TCP_FRAME, ToolGeometry, build_description, robot_urdf
from spatial_trace_ros.robots.description.state import fixed_transforms, joint_transforms, link_poses
from spatial_trace_ros.robots.description.tool import BARE_FLANGE, tool_geometry
from spatial_trace_ros.robots.description.urdf import Box, capsule
from spatial_trace_ros.robots.model import ROBOT_MODELS, make_robot_model
from spatial_trace_ros.tools.description import default_tool

pin = pytest.importorskip("pinocchio")

ROBOTS = sorted(ROBOT_MODELS)


def _pin_q(pin_model, model, q: np.ndarray) -> np.ndarray:
    qp = pin.neutral(pin_model)
    for name, value in zip(model.joint_names, q):
        qp[pin_model.joints[pin_model.getJointId(name)].idx_q] = value
    return qp


def _relative(data, pin_model, base: str, frame: str) -> np.ndarray:
    world_T_base = data.oMf[pin_model.getFrameId(base)].homogeneous
    return np.linalg.inv(world_T_base) @ data.oMf[pin_model.getFrameId(frame)].homogeneous


@pytest.mark.parametrize("robot", ROBOTS)
def test_urdf_fk_and_jacobian_equal_the_planners(robot: str) -> None:
    model = make_robot_model(robot)
    pin_model = pin.buildModelFromXML(robot_urdf(robot))
    data = pin_model.createData()
    rng = np.random.default_rng(17)
    for _ in range(100):
        q = rng.uniform(model.lower_rad, model.upper_rad)
        qp = _pin_q(pin_model, model, q)
        pin.computeJointJacobians(pin_model, data, qp)
        pin.framesForwardKinematics(pin_model, data, qp)
        urdf_fk = _relative(data, pin_model, model.base_frame, model.tool_frame)
        fk = model.fk(q)
        assert np.abs(urdf_fk[:3, 3] - fk[:3, 3]).max() < 1e-6
        assert np.abs(urdf_fk[:3, :3] - fk[:3, :3]).max() < 1e-6
        # Jacobian at the tool frame, world-aligned, rotated into the base frame; the planner's columns
        # are in its joint order.
        J_world = pin.getFrameJacobian(pin_model, data, pin_model.getFrameId(model.tool_frame),
                                       pin.ReferenceFrame.LOCAL_WORLD_ALIGNED)
        R = data.oMf[pin_model.getFrameId(model.base_frame)].rotation
        J_base = np.vstack([R.T @ J_world[:3], R.T @ J_world[3:]])
        columns = [pin_model.joints[pin_model.getJointId(n)].idx_v for n in model.joint_names]
        assert np.abs(J_base[:, columns] - model.jacobian(q)).max() < 1e-6


@pytest.mark.parametrize("robot", ROBOTS)
def test_joint_limits_in_the_urdf_are_the_planners(robot: str) -> None:
    model = make_robot_model(robot)
    pin_model = pin.buildModelFromXML(robot_urdf(robot))
    for i, name in enumerate(model.joint_names):
        idx = pin_model.joints[pin_model.getJointId(name)].idx_q
        assert pin_model.lowerPositionLimit[idx] == pytest.approx(model.lower_rad[i])
        assert pin_model.upperPositionLimit[idx] == pytest.approx(model.upper_rad[i])


@pytest.mark.parametrize("robot", ROBOTS)
def test_tf_tree_from_joint_states_reproduces_fk(robot: str) -> None:
    """What robot_state_node publishes (fixed joints once, movable joints per /joint_states), chained
    from the base frame, gives the planner's tool pose."""
    model = make_robot_model(robot)
    description = build_description(robot)
    q = np.random.default_rng(3).uniform(model.lower_rad, model.upper_rad)
    positions = dict(zip(model.joint_names, q))
    published = fixed_transforms(description) + joint_transforms(description, positions)
    edges = {child: (parent, T) for parent, child, T in published}
    T = np.eye(4)
    frame = model.tool_frame
    while frame != model.base_frame:
        parent, step = edges[frame]
        T = step @ T
        frame = parent
    np.testing.assert_allclose(T, model.fk(q), atol=1e-9)
    # Joints not in /joint_states are left out, never drawn at a made-up angle.
    moved = {child for _, child, _ in joint_transforms(description, positions)}
    assert len(moved) == model.dof


def test_tool_adds_its_shapes_and_the_tcp_frame() -> None:
    flange_T_tcp = np.eye(4)
    flange_T_tcp[2, 3] = 0.15
    tool = ToolGeometry("gripper", flange_T_tcp, (Box((0.08, 0.08, 0.1)), *capsule((0, 0, 0.05), (0, 0, 0.15), 0.03)))
    model = make_robot_model("ur5e")
    description = build_description("ur5e", tool)
    root = ET.fromstring(description.to_urdf())
    gripper = root.find("link[@name='gripper_link']")
    assert len(gripper.findall("collision")) == 4 and len(gripper.findall("visual")) == 4
    q = np.array([0.3, -1.2, 1.4, -0.5, 1.1, 0.2])
    poses = link_poses(description, dict(zip(model.joint_names, q)), "base")
    np.testing.assert_allclose(poses[TCP_FRAME], model.fk(q) @ flange_T_tcp, atol=1e-12)
    bare = link_poses(build_description("ur5e"), dict(zip(model.joint_names, q)), "base")
    np.testing.assert_allclose(bare[TCP_FRAME], model.fk(q), atol=1e-12)


@pytest.mark.parametrize("robot", ROBOTS)
def test_urdf_is_well_formed(robot: str) -> None:
    root = ET.fromstring(robot_urdf(robot))
    links = {link.get("name") for link in root.findall("link")}
    joints = root.findall("joint")
    children = [j.find("child").get("link") for j in joints]
    assert len(children) == len(set(children)), "a link with two parents"
    roots = links - set(children)
    assert len(roots) == 1, f"one root link, got {roots}"
    for joint in joints:
        assert joint.find("parent").get("link") in links
    # Every link the planner checks for collisions has collision geometry, and the arm has visuals.
    assert sum(1 for link in root.findall("link") if link.find("collision") is not None) >= 6
    assert sum(1 for link in root.findall("link") if link.find("visual") is not None) >= 6


def test_ur_collision_capsules_are_the_planners() -> None:
    """Each UR link's collision is the planner's capsule of that DH segment (same ends, same radius)."""
    model = make_robot_model("ur5")
    description = build_description("ur5")
    q = np.array([0.1, -0.9, 1.3, -1.6, -1.5, 0.4])
    poses = link_poses(description, dict(zip(model.joint_names, q)), "base")
    from spatial_trace_ros.robots.description.ur import UR_LINKS

    for link_name, planner_capsule in zip(UR_LINKS, model.capsules(q)):
        spheres = [s for s in description.link(link_name).collisions if type(s).__name__ == "Sphere"]
        ends = sorted((poses[link_name] @ s.pose)[:3, 3].tolist() for s in spheres)
        expected = sorted([planner_capsule.p0.tolist(), planner_capsule.p1.tolist()])
        np.testing.assert_allclose(ends, expected, atol=1e-9)
        assert spheres[0].radius_m == planner_capsule.radius_m


def test_description_command_writes_the_published_urdf(tmp_path) -> None:
    from spatial_trace_ros import cli

    out = tmp_path / "g1.urdf"
    assert cli.main(["description", "g1_right_arm", "--out", str(out)]) == 0
    assert out.read_text() == robot_urdf("g1_right_arm")
    pin_model = pin.buildModelFromUrdf(str(out))
    assert pin_model.nq == 17  # waist 3 + two arms of 7
    with_tool = tmp_path / "ur5e.urdf"
    assert cli.main(["description", "ur5e", "--tool", "default", "--out", str(with_tool)]) == 0
    assert with_tool.read_text() == robot_urdf("ur5e", tool_geometry(default_tool("ur5e")))
    assert "robotiq_2f85_link" in with_tool.read_text()
    assert cli.main(["description", "ur5e", "--tool", str(tmp_path / "none.yaml")]) != 0  # said in one line


def test_the_tool_description_converts_to_the_urdf_tool() -> None:
    """Each capsule of the tool description becomes a cylinder between two spheres, each box a box of
    twice its half extents at its centre, and its TCP the tcp frame."""
    tool = default_tool("ur5e")
    geometry = tool_geometry(tool)
    assert geometry.name == tool.name and tool_geometry(None) is BARE_FLANGE
    np.testing.assert_allclose(geometry.flange_T_tcp, tool.flange_T_tcp)
    capsule_spec = next(c for c in tool.collision if c.shape == "capsule")
    box_spec = next(c for c in tool.collision if c.shape == "box")
    kinds = [type(s).__name__ for s in geometry.shapes]
    assert kinds == ["Cylinder", "Sphere", "Sphere", "Box"]
    cylinder, box = geometry.shapes[0], geometry.shapes[3]
    assert cylinder.length_m == pytest.approx(np.linalg.norm(np.subtract(capsule_spec.end_m, capsule_spec.start_m)))
    assert cylinder.radius_m == capsule_spec.radius_m
    np.testing.assert_allclose(box.size_m, 2 * np.array(box_spec.half_extents_m))
    np.testing.assert_allclose(box.pose[:3, 3], box_spec.center_m)
    poses = link_poses(build_description("ur5e", geometry), {}, "tool0")
    np.testing.assert_allclose(poses[TCP_FRAME], tool.flange_T_tcp, atol=1e-12)


def test_description_command_takes_the_tool_as_robot_state_node_does(tmp_path, capsys) -> None:
    """``--tool`` or robot_state_node's ``tool`` in a ``--params-file`` (what robot_state_publisher:=true
    uses in the launch files): the gripper's link and tcp are in the URDF; without one, the bare flange."""
    from spatial_trace_ros import cli
    from spatial_trace_ros.robots.description.tool import tool_geometry
    from spatial_trace_ros.tools.description import default_tool

    def printed(*args: str) -> str:
        capsys.readouterr()
        assert cli.main(["description", *args]) == 0
        return capsys.readouterr().out

    with_gripper = robot_urdf("ur5e", tool_geometry(default_tool("ur5e")))
    assert "robotiq_2f85_link" in with_gripper
    assert printed("ur5e", "--tool", "default") == with_gripper
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"tool": ""}},
                                      "robot_state_node": {"ros__parameters": {"tool": "default"}},
                                      "planner_node": {"ros__parameters": {"tool": ""}}}))
    assert printed("ur5e", "--params-file", str(params)) == with_gripper
    params.write_text(yaml.safe_dump({"controller_node": {"ros__parameters": {"tool": "default"}}}))
    assert printed("ur5e", "--params-file", str(params)) == robot_urdf("ur5e")  # not robot_state_node's
    pin_model = pin.buildModelFromXML(with_gripper)
    data = pin_model.createData()
    q = np.array([0.3, -1.2, 1.4, -1.6, -1.5, 0.2])
    pin.framesForwardKinematics(pin_model, data, q)
    tcp = data.oMf[pin_model.getFrameId("tcp")].homogeneous
    base = data.oMf[pin_model.getFrameId("base")].homogeneous
    expected = make_robot_model("ur5e").fk(q) @ default_tool("ur5e").flange_T_tcp
    np.testing.assert_allclose(np.linalg.inv(base) @ tcp, expected, atol=1e-6)


def test_description_command_refuses_a_bad_tool_in_one_line(tmp_path, capsys) -> None:
    from spatial_trace_ros import cli

    config = Path(__file__).resolve().parents[1] / "config"
    for args, named in ((["--params-file", str(tmp_path / "missing.yaml")], "missing.yaml"),
                        (["--tool", str(config / "tool.g1_dex3.yaml")], "ur5e")):
        capsys.readouterr()
        assert cli.main(["description", "ur5e", *args]) == 2
        out = capsys.readouterr()
        assert not out.out and named in out.err and len(out.err.strip().splitlines()) == 1
