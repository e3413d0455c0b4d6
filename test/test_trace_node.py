"""trace_node end to end: camera frames from a publisher process, a fake RoboTracer server process,
the node in a third process; the test operates it like an operator would, over ROS topics."""

from __future__ import annotations

import hashlib
import json
import sys
import time

import numpy as np
import pytest
from nav_msgs.msg import Path
from sensor_msgs.msg import Image
from std_msgs.msg import String

from helpers.rgbd_publisher import FRAME_ID, INTRINSICS, color_pattern, depth_ramp_mm
from spatial_trace_ros.ros.conversions import msg_to_image, stamp_to_seconds
from spatial_trace_ros.ros.qos import COMMAND, LATCHED
from spatial_trace_ros.testing.fake_model_servers import fake_requests, start_fake_model_server
from spatial_trace_ros.testing.processes import free_port
from spatial_trace_ros.trace.overlay import START_RGB

pytestmark = pytest.mark.integration

ANSWER_3D = "Sure. [(250, 500, 1.2), (500, 500, 1.0), (750, 250, 0.8)]"
ANSWER_2D = "<answer>[(500, 500), (600, 400)]</answer>"
# Causes to wait out while the camera is still being discovered.
# Refusals while the camera's topics are still being matched (the color and depth subscriptions of
# trace_node can start receiving a few frames apart); the first request is retried through them.
_NOT_YET = ("no color image received yet", "no camera_info received yet", "no aligned depth image received yet",
            "no depth image within max_sync_skew_s")


def _expected_points(answer_xyd: list[tuple[float, float, float]]) -> np.ndarray:
    """Deprojection written out by hand: u = x/1000*W, X = (u - cx) * d / fx (no distortion)."""
    out = []
    for x, y, d in answer_xyd:
        u, v = x / 1000 * INTRINSICS.width, y / 1000 * INTRINSICS.height
        out.append(((u - INTRINSICS.cx) * d / INTRINSICS.fx, (v - INTRINSICS.cy) * d / INTRINSICS.fy, d))
    return np.array(out)


class Operator:
    """Publishes instructions and waits for the node's final status for each."""

    def __init__(self, harness) -> None:
        self.harness = harness
        self.statuses = harness.collect(String, "/spatial_trace/trace_status", LATCHED)
        self.paths = harness.collect(Path, "/spatial_trace/trace", LATCHED)
        self.overlays = harness.collect(Image, "/spatial_trace/overlay", LATCHED)
        self.pub = harness.publisher(String, "/spatial_trace/instruction", COMMAND)

    def final_statuses(self) -> list[dict]:
        return [s for s in (json.loads(m.data) for m in list(self.statuses)) if s["state"] != "running"]

    def ask(self, instruction: str, timeout_s: float = 30.0, retry_while_starting: bool = True) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            seen = len(self.final_statuses())
            self.pub.publish(String(data=instruction))
            status = self.harness.wait(
                lambda seen=seen: next((s for s in self.final_statuses()[seen:] if s["instruction"] == instruction),
                                       None),
                timeout_s, f"a final status for {instruction!r}",
            )
            if not (retry_while_starting and status["state"] == "refused"
                    and any(r in status["reason"] for r in _NOT_YET)) or time.monotonic() > deadline:
                return status
            time.sleep(0.2)


def test_trace_node_end_to_end(procs, ros_env, harness) -> None:
    port = free_port()
    base_url, server = start_fake_model_server(procs, port, answers=[ANSWER_3D])
    camera = procs.start("rgbd_publisher", [sys.executable, "-m", "helpers.rgbd_publisher", "10"], env=ros_env)
    node = procs.start("trace_node", [
        sys.executable, "-m", "spatial_trace_ros.nodes.trace_node", "--ros-args",
        "-p", "backend:=robotracer", "-p", f"base_url:={base_url}", "-p", "qos_reliability:=reliable",
        # Generous limits: the machine running the tests may be busy; timeouts are tested elsewhere.
        "-p", "timeout_s:=20.0", "-p", "max_retries:=0", "-p", "max_frame_age_s:=3.0",
    ], env=ros_env)
    op = Operator(harness)
    harness.wait_for_subscribers(op.pub, timeout_s=30.0)

    # 1. A 3D answer becomes a Path with the model's depths, in the camera optical frame.
    status = op.ask("put the cup on the plate")
    assert status["state"] == "ok", status
    assert status["backend"] == "robotracer" and status["n_points"] == 3 and status["raw_answer"] == ANSWER_3D
    harness.wait(lambda: op.paths and op.overlays, 10.0, "the trace and the overlay")
    path = op.paths[-1]
    assert path.header.frame_id == FRAME_ID
    assert stamp_to_seconds(path.header.stamp) == pytest.approx(status["frame_stamp_s"], abs=1e-6)
    # The status names the trace's frame by its exact stamp (the planner pairs the two by it) and says how
    # many points were found in all; the poses' stamps say when the trace was made (after the capture).
    assert status["frame_stamp_ns"] == path.header.stamp.sec * 1_000_000_000 + path.header.stamp.nanosec
    assert status["n_points_total"] == 3
    assert all(stamp_to_seconds(p.header.stamp) > stamp_to_seconds(path.header.stamp) for p in path.poses)
    got = np.array([[p.pose.position.x, p.pose.position.y, p.pose.position.z] for p in path.poses])
    np.testing.assert_allclose(got, _expected_points([(250, 500, 1.2), (500, 500, 1.0), (750, 250, 0.8)]),
                               atol=1e-9)
    # The overlay is the camera image with the start point drawn on it.
    overlay = msg_to_image(op.overlays[-1])
    assert overlay.shape == (INTRINSICS.height, INTRINSICS.width, 3)
    np.testing.assert_array_equal(overlay[240, 160], START_RGB)
    assert np.mean(np.all(overlay == color_pattern(), axis=2)) > 0.9
    # The server got the real protocol: the prompt, the image and the lossless depth image.
    (request,) = fake_requests(base_url)
    assert 'Point the 3D object-centric visual trace for the task "put the cup on the plate"' in request["text"]
    assert request["image_shape"] == [480, 640, 3] and request["enable_depth"] == 1
    assert request["depth_sha1"] == hashlib.sha1(depth_ramp_mm().tobytes()).hexdigest()

    # 2. Model down: an error status that says so, no trace, and the node keeps running.
    server.stop()
    n_paths = len(op.paths)
    status = op.ask("move the cup to the left")
    assert status["state"] == "error" and "cannot reach" in status["reason"], status
    assert node.alive() and len(op.paths) == n_paths

    # 3. The server is back with a 2D answer: the node answers again, depth now from the depth image.
    base_url, server = start_fake_model_server(procs, port, answers=[ANSWER_2D])
    status = op.ask("move the cup to the right")
    assert status["state"] == "ok", status
    harness.wait(lambda: len(op.paths) > n_paths, 10.0, "the second trace")
    got = np.array([[p.pose.position.x, p.pose.position.y, p.pose.position.z] for p in op.paths[-1].poses])
    # (500, 500) -> pixel (320, 240), ramp depth 1.240 m; (600, 400) -> pixel (384, 192), 1.192 m.
    np.testing.assert_allclose(got, [[0.0, 0.0, 1.240], [64 * 1.192 / 500, -48 * 1.192 / 500, 1.192]], atol=1e-6)

    # 4. The camera stops: instructions are refused as stale, not answered from an old frame.
    camera.stop()
    time.sleep(3.5)
    status = op.ask("move the cup back", retry_while_starting=False)
    assert status["state"] == "refused" and "old" in status["reason"] and "max_frame_age_s" in status["reason"]
    assert node.alive()
    assert len(fake_requests(base_url)) == 1  # the stale request never reached the model
