"""camera_node in its own process plays a synthetic recording; this process subscribes like the trace
node would and checks pixels, depth, intrinsics, frame ids and stamps against what was recorded, and
the /diagnostics statuses for the end of a recording, a missing file and bad parameters."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyrealsense2 as rs
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from spatial_trace_ros.ros.conversions import msg_to_image, stamp_to_seconds
from spatial_trace_ros.ros.qos import SENSOR_RELIABLE, STATE
from spatial_trace_ros.testing.realsense_recording import (
    SyntheticRecordingSpec,
    expected_color,
    expected_depth_m,
    frame_index_of,
    frame_stamp_s,
    write_synthetic_recording,
)

pytestmark = pytest.mark.integration

# 6 fps (a profile D400 cameras offer): the in-process test subscriber is Python on a shared, loaded
# machine. Publish rate and latency at 30 fps are bench/bench_camera.py's job.
SPEC = SyntheticRecordingSpec(fps=6, n_frames=20)
RECORDER = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
PREFIX = "/camera/camera"
FRAME_ID = "camera_color_optical_frame"


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_recording(tmp_path_factory.mktemp("rec") / "desk.db3", SPEC)


def start_node(procs, ros_env, **params: object):
    args = []
    for name, value in params.items():
        if isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, str | Path):
            text = f"'{value}'"  # YAML-quoted, or a serial number like 123456 would arrive as an integer
        else:
            text = str(value)
        args += ["-p", f"{name}:={text}"]
    return procs.start("camera_node", [sys.executable, "-m", "spatial_trace_ros.nodes.camera_node", "--ros-args",
                                       *args], env=ros_env)


def camera_status(diagnostics: list, node) -> Callable[[], DiagnosticStatus | None]:
    """The node's latest camera status; fails at once, with the node's output, if the node died."""
    def latest() -> DiagnosticStatus | None:
        if not node.alive():
            raise AssertionError(f"camera_node exited with {node.popen.poll()}:\n{node.tail()}")
        for array in reversed(diagnostics):
            for st in array.status:
                if st.name == "camera_node: camera":
                    return st
        return None
    return latest


def values(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def wait_until_connected(harness, latest: Callable[[], DiagnosticStatus | None]) -> None:
    """The node is up (reporting the recording missing) and its image publishers are discovered."""
    harness.wait(lambda: (st := latest()) is not None and values(st)["state"] == "reconnecting", 30.0,
                 "a reconnecting status")
    for suffix in ("color/image_raw", "color/camera_info", "aligned_depth_to_color/image_raw",
                   "aligned_depth_to_color/camera_info"):
        harness.wait(lambda s=suffix: harness.node.count_publishers(f"{PREFIX}/{s}") > 0, 10.0, suffix)


def put_in_place(recording: Path, target: Path) -> None:
    """Copy, then rename: the node never sees a half-written file."""
    partial = target.with_suffix(".partial")
    shutil.copy(recording, partial)
    partial.rename(target)


def test_node_publishes_the_recording_as_realsense_ros_would(procs, ros_env, harness, recording,
                                                            tmp_path) -> None:
    # Subscribed as a recorder would (a queue deep enough to ride out a stall of this busy test process),
    # so a missing frame is the node's or the transport's fault.
    colors = harness.collect(Image, f"{PREFIX}/color/image_raw", RECORDER)
    depths = harness.collect(Image, f"{PREFIX}/aligned_depth_to_color/image_raw", RECORDER)
    color_infos = harness.collect(CameraInfo, f"{PREFIX}/color/camera_info", SENSOR_RELIABLE)
    depth_infos = harness.collect(CameraInfo, f"{PREFIX}/aligned_depth_to_color/camera_info", SENSOR_RELIABLE)
    diagnostics = harness.collect(DiagnosticArray, "/diagnostics", STATE)
    target = tmp_path / "desk.db3"
    node = start_node(procs, ros_env, source="replay", recording_path=target, diagnostics_period_s=0.2,
                      reconnect_backoff_initial_s=0.1, reconnect_backoff_max_s=0.2)
    latest = camera_status(diagnostics, node)
    wait_until_connected(harness, latest)
    put_in_place(recording, target)
    harness.wait(lambda: (st := latest()) is not None and values(st)["state"] == "ended", 60.0,
                 f"the end of the recording in /diagnostics\n{node.tail()}")

    published, drops = int(values(latest())["frames"]), int(values(latest())["drops"])
    # Real-time playback on a loaded machine can lose a frame or two (counted as drops unless it was the
    # first); the node never invents one.
    assert SPEC.n_frames // 2 <= published and published + drops <= SPEC.n_frames
    stamps = [stamp_to_seconds(m.header.stamp) for m in colors]
    # At 6 fps a reliable subscriber in another process gets every frame published (a color image lost
    # between processes is the Fast DDS shared-memory segment bug that ros/dds.py fixes).
    depth_stamps = [stamp_to_seconds(m.header.stamp) for m in depths]
    assert len(stamps) >= published - 2, (
        f"every color frame reaches a subscriber in another process: color {stamps}, depth {depth_stamps}")
    assert all(b > a for a, b in itertools.pairwise(stamps)), "no frame twice, none out of order"
    depth_by_stamp = {stamp_to_seconds(m.header.stamp): m for m in depths}
    assert len(depth_by_stamp.keys() & set(stamps)) >= published - 3, "color and depth arrive as pairs"
    expected_mm = np.nan_to_num(expected_depth_m(SPEC) * 1000.0)
    for msg, stamp in zip(colors, stamps, strict=True):
        assert (msg.encoding, msg.header.frame_id, msg.width, msg.height) == ("rgb8", FRAME_ID, 640, 480)
        image = msg_to_image(msg)
        index = frame_index_of(image)
        assert stamp == pytest.approx(frame_stamp_s(SPEC, index), abs=1e-6)
        np.testing.assert_array_equal(image, expected_color(SPEC, index))
        depth_msg = depth_by_stamp.get(stamp)
        if depth_msg is None:
            continue
        assert (depth_msg.encoding, depth_msg.header.frame_id) == ("16UC1", FRAME_ID)
        depth = msg_to_image(depth_msg)
        written = depth > 0
        assert written.mean() > 0.85
        assert np.abs(depth[written].astype(float) - expected_mm[written]).max() <= 5.0  # mm; ramp: 1.6 mm/px

    for info in (color_infos[-1], depth_infos[-1]):
        assert info.header.frame_id == FRAME_ID and (info.width, info.height) == (640, 480)
        np.testing.assert_allclose(np.reshape(info.k, (3, 3)), SPEC.intrinsics.K, rtol=1e-6)
        np.testing.assert_allclose(info.d, SPEC.distortion_coeffs, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(np.reshape(info.p, (3, 4))[:, :3], SPEC.intrinsics.K, rtol=1e-6)
        assert info.distortion_model == "plumb_bob"
    recorded = {round(frame_stamp_s(SPEC, i), 6) for i in range(SPEC.n_frames)}
    assert {round(stamp_to_seconds(i.header.stamp), 6) for i in color_infos + depth_infos} <= recorded

    final = latest()
    assert final.level == DiagnosticStatus.WARN and final.hardware_id == SPEC.serial_number
    assert f"ended after {published} frames" in final.message and "loop_recording" in final.message
    v = values(final)
    assert (v["device"], v["timestamp_domain"], v["source"]) == (SPEC.device_name, "hardware_clock", "replay")
    n_at_end = len(colors)
    harness.wait(lambda: len(diagnostics) > 3 + len(diagnostics) // 2, 10.0, "more diagnostics after the end")
    assert len(colors) == n_at_end, "nothing is republished after the recording ended"
    assert node.alive()


def test_missing_recording_is_reported_and_picked_up_when_it_appears(procs, ros_env, harness, recording,
                                                                    tmp_path) -> None:
    target = tmp_path / "later.db3"
    colors = harness.collect(Image, f"{PREFIX}/color/image_raw", SENSOR_RELIABLE)
    diagnostics = harness.collect(DiagnosticArray, "/diagnostics", STATE)
    node = start_node(procs, ros_env, source="replay", recording_path=target, loop_recording=True,
               diagnostics_period_s=0.2, reconnect_backoff_max_s=0.5)
    latest = camera_status(diagnostics, node)
    harness.wait(lambda: (st := latest()) is not None and values(st)["state"] == "reconnecting", 30.0,
                 "a reconnecting status")
    st = latest()
    assert st.level == DiagnosticStatus.ERROR
    assert f"recording {target} not found; set recording_path" in st.message
    assert not colors

    put_in_place(recording, target)
    harness.wait(lambda: len(colors) >= 5, 30.0, "frames once the recording exists")
    harness.wait(lambda: values(latest())["state"] == "streaming", 10.0, "a streaming status")
    assert latest().level in (DiagnosticStatus.OK, DiagnosticStatus.WARN)


def test_unsupported_profile_fails_with_the_available_ones(procs, ros_env, harness, recording) -> None:
    diagnostics = harness.collect(DiagnosticArray, "/diagnostics", STATE)
    node = start_node(procs, ros_env, source="replay", recording_path=recording, color_profile="1280x720x30",
                      diagnostics_period_s=0.2)
    latest = camera_status(diagnostics, node)
    harness.wait(lambda: (st := latest()) is not None and values(st)["state"] == "failed", 30.0,
                 f"a failed status\n{node.tail()}")
    st = latest()
    assert st.level == DiagnosticStatus.ERROR
    assert "color_profile '1280x720x30'" in st.message
    assert f"available color profiles: 640x480x{SPEC.fps} rgb8" in st.message
    assert values(st)["reconnects"] == "0" and node.alive()


@pytest.mark.skipif(len(rs.context().query_devices()) > 0, reason="a RealSense camera is attached")
def test_absent_camera_is_reported_while_the_node_keeps_trying(procs, ros_env, harness) -> None:
    diagnostics = harness.collect(DiagnosticArray, "/diagnostics", STATE)
    node = start_node(procs, ros_env, source="realsense", serial_number="123456", diagnostics_period_s=0.2)
    latest = camera_status(diagnostics, node)
    harness.wait(lambda: (st := latest()) is not None and values(st)["state"] == "reconnecting", 30.0,
                 f"a reconnecting status\n{node.tail()}")
    st = latest()
    assert st.level == DiagnosticStatus.ERROR
    assert "no RealSense camera with serial number '123456' is connected; available: (none" in st.message
    assert node.alive()


def test_bad_parameter_stops_the_node_with_one_clear_line(procs, ros_env) -> None:
    node = start_node(procs, ros_env, source="replay", color_profile="fullhd", recording_path="/x.db3")
    assert node.popen.wait(60) == 2
    out = node.output()
    assert "color_profile = 'fullhd'" in out and "is not WIDTHxHEIGHTxFPS" in out
    assert "Traceback" not in out


def test_a_process_with_the_camera_node_and_pyrealsense2_exits_cleanly(ros_env) -> None:
    """pyrealsense2 loaded before rclpy makes the process segfault at exit; the node module loads rclpy first."""
    code = (
        "import spatial_trace_ros.nodes.camera_node\n"
        "import pyrealsense2, rclpy\n"
        "from rclpy.node import Node\n"
        "rclpy.init(); node = Node('exit_check'); node.destroy_node(); rclpy.shutdown()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=ros_env, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
