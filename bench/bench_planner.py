"""Planner: a 100-point camera-frame trace to a verdict, IK for every waypoint included. Prints one JSON
object with the median and percentiles (target: median under 2 ms), the thread CPU time (robust on a
busy machine), and a breakdown by stage.

Setup: UR5e, eye-to-hand calibration looking down on the table, a 100-point curved trace (0.5 m,
5 mm apart) planned at 5 mm spacing with approach and retreat offsets and the move in from the current
pose (about 150 waypoints in all), default safety limits (every check on: workspace, zones, table,
links, IK, joint limits, steps, singularity, self-collision, timing). Single process, one thread.

    .venv/bin/python bench/bench_planner.py [--repeats 300] [--policy fixed|keep_current|follow_tangent]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from spatial_trace_ros.geometry import Calibration, Trace, Transform
from spatial_trace_ros.planning.planner import Planner, PlannerConfig
from spatial_trace_ros.planning.safety import SafetyConfig
from spatial_trace_ros.robots.ur.kinematics import ur5e

HOME = np.array([0.0, -np.pi / 2, np.pi / 2, -np.pi / 2, -np.pi / 2, 0.0])
CAMERA = "camera_color_optical_frame"


def make_trace(calibration: Calibration, n_points: int = 100) -> Trace:
    s = np.linspace(0.0, 1.0, n_points)
    base = np.c_[-0.30 - 0.15 * s, -0.25 + 0.35 * s, 0.15 + 0.03 * np.sin(3 * s)]
    return Trace(calibration.base_T_camera().inverse().apply(base), CAMERA, stamp_s=100.0)


def timed(fn: object, repeats: int) -> np.ndarray:
    """Wall-clock milliseconds per call."""
    return timed_both(fn, repeats)[0]


def timed_both(fn: object, repeats: int) -> tuple[np.ndarray, np.ndarray]:
    """Wall-clock and thread CPU milliseconds per call (CPU time is what a shared, busy machine
    does not inflate)."""
    wall, cpu = np.empty(repeats), np.empty(repeats)
    for i in range(repeats):
        t0, c0 = time.perf_counter(), time.thread_time()
        fn()
        wall[i], cpu[i] = time.perf_counter() - t0, time.thread_time() - c0
    return wall * 1e3, cpu * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--policy", default="fixed", choices=["fixed", "keep_current", "follow_tangent"])
    args = parser.parse_args()

    model = ur5e()
    calibration = Calibration("eye_to_hand", Transform.from_rpy([-0.4, 0.0, 0.9], [np.pi, 0, 0], "base", CAMERA))
    planner = Planner(model, calibration, PlannerConfig(spacing_m=0.005, orientation_policy=args.policy),
                      SafetyConfig())
    trace = make_trace(calibration)
    result = planner.plan_detailed(trace, HOME, now_s=100.5, trace_received_s=100.4)
    if result.plan is None:
        raise SystemExit(f"benchmark trace was refused: {result.report.summary()}")
    n = len(result.plan)

    for _ in range(20):  # warm up caches and lazy imports
        planner.plan(trace, HOME, now_s=100.5, trace_received_s=100.4)
    total, cpu = timed_both(lambda: planner.plan(trace, HOME, now_s=100.5, trace_received_s=100.4), args.repeats)

    # Stage breakdown on the same path.
    points = calibration.base_T_camera().apply(trace.points)
    poses = planner.build_path(points, HOME, HOME)
    joints = model.ik_path(poses, HOME)
    stages = {
        "build_path_ms": timed(lambda: planner.build_path(points, HOME, HOME), args.repeats),
        "ik_path_ms": timed(lambda: model.ik_path(poses, HOME), args.repeats),
        "checks_ms": timed(lambda: planner.safety.check_waypoints(poses, joints), args.repeats),
    }
    report = {
        "benchmark": "planner_trace_to_verdict",
        "robot": model.name,
        "orientation_policy": args.policy,
        "trace_points": len(trace),
        "waypoints": n,
        "verdict": result.report.verdict.value,
        "repeats": args.repeats,
        "median_ms": round(float(np.median(total)), 3),
        "p90_ms": round(float(np.percentile(total, 90)), 3),
        "p99_ms": round(float(np.percentile(total, 99)), 3),
        "cpu_median_ms": round(float(np.median(cpu)), 3),
        "per_waypoint_us": round(float(np.median(total)) * 1e3 / n, 2),
        "target_median_ms": 2.0,
        "meets_target": bool(np.median(total) < 2.0),
        "stages_median_ms": {k: round(float(np.median(v)), 3) for k, v in stages.items()},
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
