"""Hand-eye calibration in the MuJoCo cell: error against the number of poses and against noise, and the
time of a full automatic calibration (safety-checked moves, renders, board detection, solve). Prints
one JSON object.

Eye-to-hand renders at 640x480 (the flange board is ~0.8 m from the camera), eye-in-hand at 320x240.
Noise: image sensor noise (Gaussian, grey levels of 255) and error on the robot's reported poses
(Gaussian, mm and deg per axis); each noisy figure is the median and the worst over ``--seeds``
noise draws on the same rendered samples. ``closed_forms`` (noisy runs): how far each of OpenCV's
closed forms is from the truth on the samples the solve kept, beside the refined result's error: what
the least-squares refinement adds. ``--quick`` (a few seconds): 6 and 10 poses, two noise levels.

    python bench/bench_calibration.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from spatial_trace_ros.calibration.handeye import (
    CalibrationLimits,
    HandEyeResult,
    HandEyeSample,
    equation_terms,
    hand_eye_closed_forms,
    pose_difference,
    robot_world_closed_forms,
)
from spatial_trace_ros.calibration.procedure import Collection, solve_samples
from spatial_trace_ros.calibration.sim_cell import collect_in_sim, sim_calibration_cell, sim_pose_options, with_noise
from spatial_trace_ros.errors import CalibrationError
from spatial_trace_ros.sim.scene import sim_intrinsics

SIZES = {"eye_to_hand": (640, 480), "eye_in_hand": (320, 240)}
REALISTIC = (4.0, 0.1, 0.02)  # grey levels, mm, deg
NOISE_LEVELS = [(0.0, 0.0, 0.0), (2.0, 0.05, 0.01), REALISTIC, (8.0, 0.3, 0.05)]


def _closed_forms_vs_truth(mode: str, samples: Collection, result: HandEyeResult, truth: np.ndarray
                           ) -> dict[str, tuple[float, float]]:
    """Each OpenCV closed form's distance from the truth on the samples the solve kept."""
    kept = [HandEyeSample(s.base_T_tool, s.observation, s.index) for s in samples.samples if s.index in result.used]
    A, B = equation_terms(mode, kept)
    poses = {**hand_eye_closed_forms(A, B),
             **{f"robot_world_{name}": X for name, (X, _) in robot_world_closed_forms(A, B).items()}}
    return {name: pose_difference(X, truth) for name, X in poses.items()}


def _error(mode: str, collection, cell, intrinsics, noise: tuple[float, float, float], seed: int) -> dict:
    pixel, mm, deg = noise
    samples = collection if noise == (0.0, 0.0, 0.0) else with_noise(collection, cell.board, intrinsics, pixel,
                                                                      mm / 1000.0, deg, seed)
    limits = CalibrationLimits()
    try:
        result = solve_samples(mode, samples, cell.board, intrinsics, limits)
    except CalibrationError as err:
        return {"refused": str(err)}
    err_mm, err_deg = pose_difference(result.camera, cell.truth_camera)
    out = {"error_mm": err_mm, "error_deg": err_deg, "reprojection_px": result.residuals.reprojection_rms_px,
           "accepted": not result.problems(limits)}
    if noise != (0.0, 0.0, 0.0):
        out["closed_forms"] = _closed_forms_vs_truth(mode, samples, result, cell.truth_camera)
    return out


def _summary(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error_mm" in r]
    if not ok:
        return {"refused": runs[0]["refused"]}
    mm, deg = np.array([r["error_mm"] for r in ok]), np.array([r["error_deg"] for r in ok])
    return {"median_mm": round(float(np.median(mm)), 3), "worst_mm": round(float(mm.max()), 3),
            "median_deg": round(float(np.median(deg)), 4), "worst_deg": round(float(deg.max()), 4),
            "reprojection_px": round(float(np.median([r["reprojection_px"] for r in ok])), 3),
            "accepted": sum(r["accepted"] for r in ok), "runs": len(runs),
            "closed_forms_median_mm_deg": {
                name: [round(float(np.median([r["closed_forms"][name][i] for r in ok if name in r["closed_forms"]])),
                             3 if i == 0 else 4) for i in (0, 1)]
                for name in ok[0].get("closed_forms", {})}}


def bench_mode(mode: str, pose_counts: list[int], noise_levels: list[tuple[float, float, float]], seeds: int
               ) -> dict:
    width, height = SIZES[mode]
    out: dict = {"image": f"{width}x{height}", "vs_poses": {}, "vs_noise_at_15_poses": {}}
    collections = {}
    for n in sorted({*pose_counts, 15}):
        cell = sim_calibration_cell(0, mode, width=width, height=height)
        t0 = time.perf_counter()
        collection = collect_in_sim(cell, sim_pose_options(cell, n))
        collect_s = time.perf_counter() - t0
        intrinsics = sim_intrinsics(cell.world.scene.camera)
        t1 = time.perf_counter()
        clean = _error(mode, collection, cell, intrinsics, (0.0, 0.0, 0.0), 0)
        solve_s = time.perf_counter() - t1
        collections[n] = (collection, cell, intrinsics)
        if n in pose_counts:
            noisy = [_error(mode, collection, cell, intrinsics, REALISTIC, s) for s in range(seeds)]
            out["vs_poses"][str(n)] = {
                "noise_free": {k: round(v, 4) if isinstance(v, float) else v for k, v in clean.items()},
                "realistic_noise": _summary(noisy),
                "full_calibration_s": round(collect_s + solve_s, 2), "collect_s": round(collect_s, 2),
                "solve_s": round(solve_s, 3)}
    collection, cell, intrinsics = collections[15]
    for level in noise_levels:
        runs = [_error(mode, collection, cell, intrinsics, level, s) for s in range(seeds)]
        out["vs_noise_at_15_poses"][f"pixel {level[0]:g}, pose {level[1]:g} mm {level[2]:g} deg"] = _summary(runs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 and 10 poses, two noise levels, 2 seeds")
    parser.add_argument("--seeds", type=int, default=5, help="noise draws per figure (default 5)")
    args = parser.parse_args()
    poses = [6, 10] if args.quick else [6, 10, 15, 25]
    levels = [NOISE_LEVELS[0], REALISTIC] if args.quick else NOISE_LEVELS
    seeds = 2 if args.quick else args.seeds
    result = {"realistic_noise": {"pixel_grey_levels": REALISTIC[0], "pose_mm": REALISTIC[1],
                                  "pose_deg": REALISTIC[2]}}
    for mode in ("eye_to_hand", "eye_in_hand"):
        result[mode] = bench_mode(mode, poses, levels, seeds)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
