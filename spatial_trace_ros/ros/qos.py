"""Named QoS profiles, chosen per use and kept in one place."""

from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)

# Camera streams: drop rather than queue stale frames. Best effort matches realsense-ros defaults.
# Either way, camera-sized images need the Fast DDS profile that ros/dds.py gives every node.
SENSOR_BEST_EFFORT = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=2, reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)
SENSOR_RELIABLE = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=2, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
# Operator commands and e-stop: every message must arrive.
COMMAND = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
# Results that a late joiner (RViz, the operator CLI) should still see: trace, plan, verdict, markers.
LATCHED = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
# Periodic state (joint states, TCP pose, diagnostics).
STATE = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)


def sensor_qos(reliability: str) -> QoSProfile:
    """The camera QoS named by a node's ``qos_reliability`` parameter."""
    return {"best_effort": SENSOR_BEST_EFFORT, "reliable": SENSOR_RELIABLE}[reliability]
