"""A trace and its trace_status as trace_node publishes them, sent from the test (the planner's inputs)."""

from __future__ import annotations

import json

import numpy as np
from nav_msgs.msg import Path as PathMsg
from std_msgs.msg import Header, String

from spatial_trace_ros.geometry import Trace, Transform
from spatial_trace_ros.ros.conversions import seconds_to_stamp, trace_to_path
from spatial_trace_ros.ros.qos import LATCHED
from spatial_trace_ros.testing.ros_harness import RosHarness


def exact_ns(stamp_s: float) -> int:
    """The integer nanoseconds of the header stamp ``stamp_s`` becomes on the wire."""
    stamp = seconds_to_stamp(stamp_s)
    return stamp.sec * 1_000_000_000 + stamp.nanosec


class TraceSender:
    """Publishes base-frame points as a camera-frame trace (``base_T_camera``) with its status."""

    def __init__(self, harness: RosHarness, base_T_camera: Transform) -> None:
        self.h = harness
        self.base_T_camera = base_T_camera
        self.trace_pub = harness.publisher(PathMsg, "/spatial_trace/trace", LATCHED)
        self.status_pub = harness.publisher(String, "/spatial_trace/trace_status", LATCHED)
        self.request_id = 0

    def now_s(self) -> float:
        return self.h.node.get_clock().now().nanoseconds * 1e-9

    def wait_for_planner(self) -> None:
        self.h.wait_for_subscribers(self.trace_pub)
        self.h.wait_for_subscribers(self.status_pub)

    def status(self, stamp_s: float, n_valid: int, n_total: int, n_samples: int = 1,
               agreement: float | None = None) -> String:
        self.request_id += 1
        return String(data=json.dumps({
            "request_id": self.request_id, "instruction": "test", "state": "ok", "reason": "", "backend": "test",
            "model": "test", "latency_s": 0.1, "n_samples": n_samples, "agreement": agreement, "raw_answer": "",
            "n_points": n_valid, "n_points_total": n_total, "frame_stamp_s": stamp_s,
            "frame_stamp_ns": exact_ns(stamp_s),
        }))

    def send(self, base_points: np.ndarray, stamp_s: float | None = None, made_s: float | None = None,
             n_total: int | None = None, n_samples: int = 1, agreement: float | None = None,
             status_first: bool = False, with_status: bool = True) -> float:
        """Publish the trace (and its status, before or after it); returns the frame's capture stamp."""
        stamp = self.now_s() if stamp_s is None else stamp_s
        camera_points = self.base_T_camera.inverse().apply(np.asarray(base_points, float))
        trace = trace_to_path(Trace(camera_points, self.base_T_camera.child, stamp_s=stamp))
        if made_s is not None:  # when the trace was made, as trace_node stamps its poses
            for pose in trace.poses:  # a header of their own: trace_to_path shares the path's
                pose.header = Header(stamp=seconds_to_stamp(made_s), frame_id=trace.header.frame_id)
        status = self.status(stamp, len(camera_points), n_total or len(camera_points), n_samples, agreement)
        if with_status and status_first:
            self.status_pub.publish(status)
        self.trace_pub.publish(trace)
        if with_status and not status_first:
            self.status_pub.publish(status)
        return stamp
