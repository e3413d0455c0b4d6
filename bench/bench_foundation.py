"""Foundation hot paths: numpy <-> sensor_msgs/Image conversion and vectorised deprojection.

Prints one JSON object. Figures are medians over repeats in one run, and the slow path
(``msg.data = array``) is measured beside the fast path so the ratio, not the absolute time, is the
claim (machines here are shared and noisy).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

import numpy as np

from spatial_trace_ros.geometry.camera_model import CameraIntrinsics, deproject, project, sample_depth
from spatial_trace_ros.ros.conversions import image_to_msg, msg_to_image


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    rng = np.random.default_rng(0)
    color = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    depth = rng.integers(300, 3000, (720, 1280), dtype=np.uint16)
    color_msg = image_to_msg(color, "rgb8")

    def slow_path() -> None:
        msg = image_to_msg(color[:1, :1], "rgb8")
        msg.data = color.reshape(-1)  # the array-assignment path DESIGN.md warns about

    intr = CameraIntrinsics(1280, 720, 910.0, 910.0, 640.0, 360.0)
    distorted = CameraIntrinsics(
        1280, 720, 910.0, 910.0, 640.0, 360.0, "brown_conrady", (0.1, -0.05, 0.001, 0.001, 0.01)
    )
    uv = rng.uniform([0, 0], [1279, 719], (10_000, 2))
    z = rng.uniform(0.3, 3.0, 10_000)
    pts = deproject(uv, z, intr)
    depth_m = depth.astype(np.float32) * 0.001

    figures = {
        "image_to_msg_1280x720_rgb8_ms": median_ms(lambda: image_to_msg(color, "rgb8"), 50),
        "image_to_msg_1280x720_16uc1_ms": median_ms(lambda: image_to_msg(depth, "16UC1"), 50),
        "msg_to_image_1280x720_rgb8_ms": median_ms(lambda: msg_to_image(color_msg), 200),
        "array_assignment_1280x720_rgb8_ms": median_ms(slow_path, 3),
        "deproject_10k_pinhole_ms": median_ms(lambda: deproject(uv, z, intr), 50),
        "deproject_10k_brown_conrady_ms": median_ms(lambda: deproject(uv, z, distorted), 20),
        "project_10k_brown_conrady_ms": median_ms(lambda: project(pts, distorted), 50),
        "sample_depth_10k_window5_ms": median_ms(lambda: sample_depth(depth_m, uv, window_px=5), 10),
    }
    figures["fast_vs_array_assignment_speedup"] = (
        figures["array_assignment_1280x720_rgb8_ms"] / figures["image_to_msg_1280x720_rgb8_ms"]
    )
    print(json.dumps({"benchmark": "foundation", **{k: round(v, 4) for k, v in figures.items()}}, indent=2))


if __name__ == "__main__":
    main()
