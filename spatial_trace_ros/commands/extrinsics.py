"""``spatial-trace extrinsics CALIBRATION.yaml``: the camera extrinsics of a calibration file as launch arguments.

``bringup.launch.xml`` publishes the extrinsics on ``/tf_static`` with tf2_ros' static_transform_publisher
(for RViz; the planner reads the calibration file itself). This prints the arguments that make the
two agree, in any rotation format the file uses, ready to paste after ``ros2 launch``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "print a calibration file's camera pose as bringup.launch.xml arguments (for the static TF)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("calibration", type=Path, help="camera extrinsics YAML (as config/calibration.example.yaml)")


def launch_arguments(path: Path) -> dict[str, str]:
    """``camera_*`` launch arguments of ``bringup.launch.xml`` for the calibration at ``path``."""
    from spatial_trace_ros.geometry.calibration import load_calibration

    tf = load_calibration(path).transform
    (x, y, z), (qx, qy, qz, qw) = tf.translation, tf.quaternion_xyzw
    values = {"x": x, "y": y, "z": z, "qx": qx, "qy": qy, "qz": qz, "qw": qw}
    return {"calibration_file": str(path.resolve()), "camera_parent_frame": tf.parent, "camera_frame": tf.child,
            **{f"camera_{k}": f"{v:.9g}" for k, v in values.items()}}


def run(args: argparse.Namespace) -> int:
    from spatial_trace_ros.geometry.calibration import load_calibration

    calibration = load_calibration(args.calibration)
    print(" ".join(f"{k}:={v}" for k, v in launch_arguments(args.calibration).items()))
    if calibration.mode == "eye_in_hand":
        print(f"note: eye-in-hand: the camera hangs off {calibration.transform.parent!r}; RViz places it once "
              "the robot's own TF (robot_state_publisher) is running", file=sys.stderr)
    return 0
