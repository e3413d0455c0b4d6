"""Kinematics from the URDF: Pinocchio (FK, Jacobians) and coal (capsule distances) against today's
code (the planner's ``UrKinematics`` / ``G1ArmModel`` and ``planning.volumes``), accuracy and speed.
Prints one JSON object. Times are per joint configuration (median of repeats), on this machine.

    .venv/bin/python bench/bench_kinematics.py [--configs 2000] [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable

import coal
import numpy as np
import pinocchio as pin

from spatial_trace_ros.planning.volumes import self_collision_clearance
from spatial_trace_ros.robots.description import robot_urdf
from spatial_trace_ros.robots.description.urdf import pose_along
from spatial_trace_ros.robots.model import RobotModel, make_robot_model


def fresh(qs: np.ndarray) -> Callable[[], np.ndarray]:
    """A new, slightly different copy of ``qs`` per call: the UR model caches its last batch's frames."""
    calls = iter(range(1, 1_000_000))
    return lambda: qs + next(calls) * 1e-12


def per_config_us(run: Callable[[], object], n: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) / n * 1e6


def pin_setup(model: RobotModel) -> tuple:
    pm = pin.buildModelFromXML(robot_urdf(model.name))
    data = pm.createData()
    idx = [pm.joints[pm.getJointId(name)].idx_q for name in model.joint_names]
    cols = [pm.joints[pm.getJointId(name)].idx_v for name in model.joint_names]
    return pm, data, idx, cols, pm.getFrameId(model.base_frame), pm.getFrameId(model.tool_frame)


def bench_robot(name: str, n: int, repeats: int) -> dict:
    model = make_robot_model(name)
    qs = np.random.default_rng(0).uniform(model.lower_rad, model.upper_rad, (n, model.dof))
    pm, data, idx, cols, base_id, tool_id = pin_setup(model)
    q_pin = np.tile(pin.neutral(pm), (n, 1))
    q_pin[:, idx] = qs

    def pin_fk_all() -> np.ndarray:
        out = np.empty((n, 4, 4))
        for k in range(n):
            pin.framesForwardKinematics(pm, data, q_pin[k])
            out[k] = (data.oMf[base_id].actInv(data.oMf[tool_id])).homogeneous
        return out

    def pin_jac_all() -> np.ndarray:
        out = np.empty((n, 6, model.dof))
        for k in range(n):
            pin.computeJointJacobians(pm, data, q_pin[k])
            pin.updateFramePlacements(pm, data)
            J = pin.getFrameJacobian(pm, data, tool_id, pin.ReferenceFrame.LOCAL_WORLD_ALIGNED)[:, cols]
            R = data.oMf[base_id].rotation
            out[k, :3], out[k, 3:] = R.T @ J[:3], R.T @ J[3:]
        return out

    fk_ours = model.fk_many(qs)
    jac_ours = model.jacobian_many(qs)
    fk_pin, jac_pin = pin_fk_all(), pin_jac_all()
    single = qs[:200]
    batch = fresh(qs)
    return {
        "configs": n,
        "fk_max_position_diff_m": float(np.abs(fk_ours[:, :3, 3] - fk_pin[:, :3, 3]).max()),
        "fk_max_rotation_diff": float(np.abs(fk_ours[:, :3, :3] - fk_pin[:, :3, :3]).max()),
        "jacobian_max_diff": float(np.abs(jac_ours - jac_pin).max()),
        "fk_ours_batch_us": per_config_us(lambda: model.fk_many(batch()), n, repeats),
        "fk_ours_single_us": per_config_us(lambda: [model.fk(q) for q in single], len(single), repeats),
        "fk_pin_us": per_config_us(pin_fk_all, n, repeats),
        "jacobian_ours_batch_us": per_config_us(lambda: model.jacobian_many(batch()), n, repeats),
        "jacobian_ours_single_us": per_config_us(lambda: [model.jacobian(q) for q in single], len(single), repeats),
        "jacobian_pin_us": per_config_us(pin_jac_all, n, repeats),
    }


def bench_collision(n: int, repeats: int) -> dict:
    """UR5e self-collision clearance: our vectorised segment distances vs coal's capsule distance on the
    same capsules (the URDF's collision geometry), every checked pair."""
    model = make_robot_model("ur5e")
    qs = np.random.default_rng(1).uniform(model.lower_rad, model.upper_rad, (n, 6))
    pairs = model.self_collision_pairs()
    radii = model.capsule_radii_m

    def coal_clearance() -> np.ndarray:
        p0, p1, _ = model.capsule_segments_many(qs)
        request, out = coal.DistanceRequest(), np.empty(n)
        for k in range(n):
            shapes = []
            for link in range(6):
                length = float(np.linalg.norm(p1[k, link] - p0[k, link]))
                pose = pose_along(p0[k, link], p1[k, link]) if length > 1e-9 else np.eye(4)
                if length <= 1e-9:
                    pose[:3, 3] = p0[k, link]
                shapes.append((coal.Capsule(float(radii[link]), length), coal.Transform3s(pose[:3, :3], pose[:3, 3])))
            best = np.inf
            for i, j in pairs:
                result = coal.DistanceResult()
                best = min(best, coal.distance(shapes[i][0], shapes[i][1], shapes[j][0], shapes[j][1], request,
                                               result))
            out[k] = best
        return out

    batch = fresh(qs)
    ours = self_collision_clearance(model, qs)[0]
    theirs = coal_clearance()
    separated = ours > 0  # coal reports penetration depth differently from our signed segment distance
    return {
        "configs": n,
        "pairs": len(pairs),
        "clearance_max_diff_m_when_separated": float(np.abs(ours[separated] - theirs[separated]).max()),
        "overlap_agreement": float(np.mean((ours <= 0) == (theirs <= 0))),
        "ours_batch_us": per_config_us(lambda: self_collision_clearance(model, batch()), n, repeats),
        "coal_us": per_config_us(coal_clearance, n, repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="200 configurations, 3 repeats")
    args = parser.parse_args()
    n, repeats = (200, 3) if args.quick else (args.configs, args.repeats)
    report = {
        "machine": platform.processor() or platform.machine(),
        "pinocchio": pin.__version__,
        "coal": coal.__version__,
        "ur5e": bench_robot("ur5e", n, repeats),
        "g1_left_arm": bench_robot("g1_left_arm", n, repeats),
        "ur5e_self_collision": bench_collision(n, repeats),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
