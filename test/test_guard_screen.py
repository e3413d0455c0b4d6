"""The run-time guard's scalar screens answer "certainly clear" only where the full array checks find
nothing: over random configurations near every limit (joint limits, table, workspace walls, keep-out
boxes and cylinders, singularities, self-collision) and random tools, held objects and steps."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from spatial_trace_ros.planning.safety import SafetyConfig, safety_config_from_dict
from spatial_trace_ros.planning.safety.configuration import WaypointChecks
from spatial_trace_ros.planning.tool_geometry import HeldEnvelope, ToolGeometry
from spatial_trace_ros.robots.ur.kinematics import ur5, ur5e
from spatial_trace_ros.tools.description import default_tool, tool_from_dict

MODELS = {"ur5": ur5(), "ur5e": ur5e()}
HOME = np.array([0.0, -np.pi / 2, np.pi / 2, -np.pi / 2, -np.pi / 2, 0.0])


def random_config(rng: np.random.Generator) -> SafetyConfig:
    zones: list[dict] = [{"name": "base", "shape": "cylinder", "center_m": [0.0, 0.0],
                          "radius_m": rng.uniform(0.05, 0.3), "z_min_m": -0.1, "z_max_m": rng.uniform(0.2, 1.2)}]
    for k in range(int(rng.integers(0, 3))):
        c, h = rng.uniform([-0.6, -0.6, 0.0], [0.6, 0.6, 0.6]), rng.uniform(0.02, 0.2, 3)
        zones.append({"name": f"box{k}", "shape": "box", "min_m": (c - h).tolist(), "max_m": (c + h).tolist()})
    return safety_config_from_dict({
        "workspace": {"min_m": [-rng.uniform(0.4, 0.9), -rng.uniform(0.4, 0.9), -0.05],
                      "max_m": [rng.uniform(0.4, 0.9), rng.uniform(0.4, 0.9), rng.uniform(0.5, 1.1)]},
        "table": {"z_m": rng.uniform(-0.05, 0.3), "tcp_clearance_m": rng.uniform(0.0, 0.05)},
        "keep_out_zones": zones,
        "self_collision": {"margin_m": rng.uniform(0.0, 0.05)},
        "joint_limits": {"margin_rad": rng.uniform(0.0, 0.3)},
    })


def random_q(rng: np.random.Generator, model) -> np.ndarray:
    kind = rng.integers(0, 3)
    if kind == 0:  # anywhere, including near the joint limits
        return rng.uniform(model.lower_rad, model.upper_rad)
    if kind == 1:  # near home: mostly clear, so the screen's "clear" answers are tested too
        return HOME + rng.normal(0.0, 0.5, 6)
    q = HOME + rng.normal(0.0, 0.2, 6)  # near singular: wrist aligned or arm stretched
    q[rng.integers(2, 5)] = rng.normal(0.0, 0.05)
    return q


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(sorted(MODELS)))
def test_the_configuration_screen_clears_only_what_the_full_check_passes(seed: int, name: str) -> None:
    rng = np.random.default_rng(seed)
    model = MODELS[name]
    checks = WaypointChecks(random_config(rng), model)
    for _ in range(40):
        q = random_q(rng, model)
        pose = model.fk(q)
        start = pose[:3, 3] + rng.normal(0.0, 0.01, 3) * rng.choice([0.0, 1.0, 10.0])
        found, scale = checks.check(pose[None], q[None], start, screen=False)
        if checks._screen.clear(pose, q, start):
            assert found == [] and np.all(scale == 1.0), (q, start, found)
        got, got_scale = checks.check(pose[None], q[None], start)  # with the screen: the same answer
        assert got == found and np.array_equal(got_scale, scale)


def test_the_screen_clears_an_ordinary_motion() -> None:
    """The screen is used: on the benchmark's motion (clear of every limit) it answers clear every time."""
    model = MODELS["ur5e"]
    checks = WaypointChecks(SafetyConfig(), model)
    qs = np.array([0.3, -1.4, 1.5, -1.6, -1.5, 0.2]) + np.cumsum(np.full((50, 6), 2e-4), axis=0)
    poses = model.fk_many(qs)
    assert all(checks._screen.clear(poses[k], qs[k], poses[k - 1, :3, 3]) for k in range(1, 50))


def random_tool(rng: np.random.Generator) -> dict:
    shapes = []
    for k in range(int(rng.integers(1, 4))):
        if rng.random() < 0.5:
            shapes.append({"shape": "capsule", "name": f"c{k}", "start_m": rng.uniform(-0.05, 0.05, 3).tolist(),
                           "end_m": (rng.uniform(-0.05, 0.05, 3) + np.array([0, 0, rng.uniform(0.0, 0.3)])).tolist(),
                           "radius_m": rng.uniform(0.005, 0.06)})
        else:
            shapes.append({"shape": "box", "name": f"b{k}", "center_m": [0.0, 0.0, rng.uniform(0.0, 0.2)],
                           "half_extents_m": rng.uniform(0.005, 0.06, 3).tolist()})
    return {"name": "random", "robots": ["ur5", "ur5e"], "gripper": {"kind": "sim"}, "collision": shapes,
            "tcp": {"translation_m": [0.0, 0.0, rng.uniform(0.05, 0.25)]}}


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_the_tool_step_screen_clears_only_what_the_swept_check_passes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    model = MODELS["ur5e"]
    config = random_config(rng)
    tool = default_tool("ur5e") if rng.random() < 0.3 else tool_from_dict(random_tool(rng))
    geometry = ToolGeometry(tool, config, model)
    for _ in range(30):
        q = random_q(rng, model)
        q_start = q + rng.normal(0.0, 0.003, 6) * rng.choice([0.0, 1.0, 5.0])
        start, target = model.fk(q_start), model.fk(q)
        envelope = None
        if rng.random() < 0.6:
            envelope = HeldEnvelope((rng.uniform(0.01, 0.1), rng.uniform(0.01, 0.1), rng.uniform(0.01, 0.3)),
                                    tool.held_object.grasp_depth_m, rng.uniform(0.0, 0.01))
        held = None if envelope is None else np.ones(2, bool)
        found = geometry.check_path(np.stack([start, target]), np.stack([q_start, q]), held, envelope)
        if geometry.step_clear(start, target, q, envelope):
            assert found == [], (q, q_start, envelope, found)


def test_the_tool_step_screen_clears_an_ordinary_step_with_a_held_object() -> None:
    model = MODELS["ur5e"]
    tool = default_tool("ur5e")
    geometry = ToolGeometry(tool, SafetyConfig(), model)
    envelope = HeldEnvelope.from_grasp(tool, 0.05, 0.0)
    qs = np.array([0.3, -1.4, 1.5, -1.6, -1.5, 0.2]) + np.cumsum(np.full((50, 6), 2e-4), axis=0)
    poses = model.fk_many(qs)
    assert all(geometry.step_clear(poses[k - 1], poses[k], qs[k], envelope) for k in range(1, 50))
