"""TF messages (tf2_msgs/TFMessage of geometry_msgs/TransformStamped) from 4x4 transforms.

tf2_msgs ships with every ROS distro; the PyPI ROS wheels lack it, so ``make setup`` builds it from its
one-line .msg (scripts/build_tf2_msgs.sh). ``TFMessage`` is None where it is still missing: the caller
then publishes what needs no tf2_msgs and says so.
"""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import TransformStamped
from transforms3d.quaternions import mat2quat

from spatial_trace_ros.ros.conversions import seconds_to_stamp

try:
    from tf2_msgs.msg import TFMessage
except ImportError:  # the PyPI wheels without `make setup`'s tf2_msgs build
    TFMessage = None

TF_MISSING_HINT = (
    "tf2_msgs is not importable, so no TF is published (only /robot_description); source your ROS "
    "distro's setup.bash, or run `make setup`, which builds tf2_msgs into .venv"
)


def transform_stamped(parent: str, child: str, matrix: np.ndarray, stamp_s: float) -> TransformStamped:
    msg = TransformStamped()
    msg.header.stamp = seconds_to_stamp(stamp_s)
    msg.header.frame_id = parent
    msg.child_frame_id = child
    t = msg.transform.translation
    t.x, t.y, t.z = (float(v) for v in matrix[:3, 3])
    w, x, y, z = (float(v) for v in mat2quat(matrix[:3, :3]))
    r = msg.transform.rotation
    r.x, r.y, r.z, r.w = x, y, z, w
    return msg


def tf_message(transforms: list[tuple[str, str, np.ndarray]], stamp_s: float) -> object:
    """A TFMessage of (parent, child, parent_T_child) triples (needs tf2_msgs)."""
    return TFMessage(transforms=[transform_stamped(p, c, m, stamp_s) for p, c, m in transforms])
