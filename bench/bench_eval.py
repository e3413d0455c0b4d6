"""Evaluation throughput: trace metrics on 100 x 100 point traces, the collision check, scoring a
whole answers file, synthetic scenes per second (render, plan, check, write), and a live evaluation
with the simulation oracle. Prints one JSON object.

The plain-Python cell-by-cell DTW is measured beside the vectorised one so the speed-up, not the
absolute time, is the claim (machines here are shared and noisy). Figures are medians over repeats.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from spatial_trace_ros.eval.metrics import compare_traces, discrete_frechet, dtw_distance, hausdorff
from spatial_trace_ros.eval.success import VoxelScene, collision_fraction


def median_s(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def loop_dtw(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook recurrence in plain Python, the baseline the vectorised version is compared with."""
    n, m = len(a), len(b)
    al, bl = a.tolist(), b.tolist()
    prev = [0.0] + [math.inf] * m
    for i in range(1, n + 1):
        cur = [math.inf] * (m + 1)
        for j in range(1, m + 1):
            cur[j] = math.dist(al[i - 1], bl[j - 1]) + min(prev[j - 1], prev[j], cur[j - 1])
        prev = cur
    return prev[m]


def synth_figures() -> dict[str, float]:
    """Scenes per second of ``spatial-trace synth`` at two image sizes (3 tasks per scene), and samples
    per second of ``spatial-trace eval`` with the oracle over the smaller dataset (scoring included)."""
    import tempfile

    from spatial_trace_ros.eval.live_eval import evaluate_backend
    from spatial_trace_ros.eval.synth import generate_dataset, make_config
    from spatial_trace_ros.eval.synth_tasks import ORACLE_CATEGORIES

    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate_dataset(make_config(n_scenes=1, width=320, height=240), root / "warmup", progress=False)
        for width, height in ((320, 240), (640, 480)):
            result = generate_dataset(make_config(n_scenes=8, seed=1, width=width, height=height,
                                                  categories=ORACLE_CATEGORIES), root / f"s{width}", progress=False)
            figures[f"synth_scenes_per_s_{width}x{height}"] = result.scenes_per_s
            figures[f"synth_samples_per_s_{width}x{height}"] = result.n_samples / result.elapsed_s
        t0 = time.perf_counter()
        run = evaluate_backend(root / "s320", "oracle", {}, root / "eval", plots=False, progress=False)
        figures["eval_oracle_samples_per_s_320x240"] = run.n_selected / (time.perf_counter() - t0)
    return figures


def main() -> None:
    rng = np.random.default_rng(0)
    a = np.cumsum(rng.normal(0, 0.01, (100, 3)), axis=0)
    b = a + rng.normal(0, 0.005, (100, 3))
    figures: dict[str, float] = {}
    dtw_s = median_s(lambda: dtw_distance(a, b), 200)
    frechet_s = median_s(lambda: discrete_frechet(a, b), 200)
    figures["dtw_100x100_per_s"] = 1.0 / dtw_s
    figures["frechet_100x100_per_s"] = 1.0 / frechet_s
    figures["hausdorff_100x100_per_s"] = 1.0 / median_s(lambda: hausdorff(a, b), 200)
    figures["compare_traces_all_metrics_per_s"] = 1.0 / median_s(lambda: compare_traces(a, b, 0.2), 100)
    figures["dtw_plain_python_loop_100x100_per_s"] = 1.0 / median_s(lambda: loop_dtw(a, b), 5)
    figures["dtw_vectorised_vs_loop_speedup"] = (
        figures["dtw_100x100_per_s"] / figures["dtw_plain_python_loop_100x100_per_s"])

    # Collision check: a 4 cm object (729 points) carried 1 m past a 2 cm voxel scene of 200k points.
    ax = np.linspace(-0.02, 0.02, 9)
    obj = np.stack(np.meshgrid(ax, ax, ax + 1.0, indexing="ij"), axis=-1).reshape(-1, 3)
    scene_pts = rng.uniform([-1, -1, 0.5], [1, 1, 2.0], (200_000, 3))
    scene = VoxelScene(scene_pts, 0.02)
    trace = np.array([[0.0, 0.0, 1.0], [0.5, 0.2, 1.0], [1.0, 0.0, 1.0]])
    figures["voxel_scene_build_200k_points_ms"] = 1e3 * median_s(lambda: VoxelScene(scene_pts, 0.02), 5)
    figures["collision_check_1m_trace_729_points_ms"] = 1e3 * median_s(lambda: collision_fraction(trace, obj, scene), 5)

    reference = (Path(__file__).resolve().parents[2] / "shared" / "reference" / "robotracer_outputs"
                 / "RoboTracer_Intrinsics_Depth_3D.jsonl")
    if reference.is_file():
        from spatial_trace_ros.eval.dataset import read_benchmark, resolve_image_size
        from spatial_trace_ros.eval.scoring import score_sample

        samples = read_benchmark(reference)

        def score_all() -> None:
            for s in samples:
                score_sample(s, "robotracer", *resolve_image_size(s))

        figures["score_answers_per_s"] = len(samples) / median_s(score_all, 3)
    figures.update(synth_figures())
    json.dump({k: round(v, 3) for k, v in figures.items()}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
