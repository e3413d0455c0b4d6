"""``spatial-trace extrinsics CALIBRATION.yaml``: show the camera pose a calibration file holds.

The file is the only place the camera pose lives (the planner reads it; the TF publisher asks
``geometry.calibration.camera_tf``). This prints what they will use: the mode, the TF it becomes, the
pose in every rotation encoding, and how the calibration was made (date, samples, residuals).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HELP = "show the camera pose in a calibration file: frames, TF, translation, rotation, residuals"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("calibration", type=Path, help="calibration YAML (spatial-trace calibrate, or as "
                                                        "config/calibration.example.yaml)")


def describe(path: Path) -> list[str]:
    """The lines ``run`` prints."""
    from spatial_trace_ros.geometry.calibration import camera_tf, load_calibration

    calibration = load_calibration(path)
    parent, child, tf = camera_tf(calibration)
    topic = "/tf_static" if calibration.mode == "eye_to_hand" else "/tf_static (on the tool; the robot's TF moves it)"
    lines = [
        f"{path}: {calibration.mode}",
        f"  TF {parent} -> {child} on {topic}",
        f"  translation_m: {np.round(tf.translation, 6).tolist()}",
        f"  quaternion_xyzw: {np.round(tf.quaternion_xyzw, 9).tolist()}",
        f"  rpy_rad: {np.round(_rpy(tf.rotation), 6).tolist()}",
        f"  rotvec_rad: {np.round(tf.rotvec, 6).tolist()}",
    ]
    record = calibration.record
    if record.calibrated_at or record.sample_count or record.source:
        lines.append(f"  calibrated {record.calibrated_at or 'at an unknown date'} from {record.sample_count or '?'} "
                     f"samples by {record.source or 'an unknown tool'}")
    lines += [f"  {name}: {value:g}" for name, value in record.residuals.items()]
    if not record.residuals:
        lines.append("  no residuals recorded: this pose was not measured by spatial-trace calibrate")
    return lines


def _rpy(R: np.ndarray) -> np.ndarray:
    from transforms3d import euler

    return np.array(euler.mat2euler(R, "sxyz"))


def run(args: argparse.Namespace) -> int:
    print("\n".join(describe(args.calibration)))
    return 0
