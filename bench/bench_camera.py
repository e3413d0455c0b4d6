"""camera_node replaying a color + depth recording in real time: publish rate, latency to a subscriber
in another process, and the node's CPU use, at 1280x720 and 640x480. Prints one JSON object.

Setup per resolution: a synthetic 30 fps recording (``testing/realsense_recording.py``) looped by
camera_node (``playback_real_time``, aligned depth, reliable QoS) in its own process; a subscriber in a
third process (a single-threaded rclpy executor on color and aligned depth). The node stamps each frame
with the host clock when librealsense handed it the frameset (``timestamp_source:=system``), so the
latency covers alignment, conversion, publishing, DDS transport and the subscriber's callback; it
excludes exposure and USB transfer, which a recording does not have. CPU is the node's
user + system time over the measuring window divided by wall time (1.0 = one core).

    .venv/bin/python bench/bench_camera.py [--seconds 10] [--warmup-s 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

COLOR = "/camera/camera/color/image_raw"
DEPTH = "/camera/camera/aligned_depth_to_color/image_raw"


def subscribe(out: Path, warmup_s: float, seconds: float) -> None:
    """Subscriber process: record (topic, receive time, stamp) for ``seconds`` after ``warmup_s``."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import Image

    from spatial_trace_ros.ros.conversions import stamp_to_seconds
    from spatial_trace_ros.ros.qos import SENSOR_RELIABLE, STATE

    rclpy.init()
    node = Node("bench_camera_subscriber")
    rows: list[tuple[str, float, float]] = []
    diagnostics: list[dict[str, str]] = []
    for topic in (COLOR, DEPTH):
        node.create_subscription(
            Image, topic, lambda m, t=topic: rows.append((t, time.time(), stamp_to_seconds(m.header.stamp))),
            SENSOR_RELIABLE)
    node.create_subscription(
        DiagnosticArray, "/diagnostics",
        lambda m: diagnostics.extend({kv.key: kv.value for kv in s.values} for s in m.status), STATE)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    start = time.time() + warmup_s
    while time.time() < start:
        executor.spin_once(timeout_sec=0.05)
    rows.clear()
    diagnostics.clear()
    while time.time() < start + seconds:
        executor.spin_once(timeout_sec=0.05)
    out.write_text(json.dumps({"rows": rows, "diagnostics": diagnostics, "window_s": seconds}))
    node.destroy_node()
    rclpy.try_shutdown()


def percentile_ms(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1e3, 2) if values else None


def measure(width: int, height: int, seconds: float, warmup_s: float, workdir: Path) -> dict:
    import psutil

    from spatial_trace_ros.testing.processes import ProcessGroup, ros_test_env
    from spatial_trace_ros.testing.realsense_recording import SyntheticRecordingSpec, write_synthetic_recording

    spec = SyntheticRecordingSpec(width=width, height=height, n_frames=60, fx=0.9 * width, fy=0.9 * width,
                                  cx=width / 2 - 0.5, cy=height / 2 - 0.5)
    recording = write_synthetic_recording(workdir / f"bench_{width}x{height}.db3", spec)
    env = ros_test_env(domain_id=int(os.environ.get("BENCH_ROS_DOMAIN_ID", "87")))
    out = workdir / f"subscriber_{width}x{height}.json"
    with ProcessGroup(workdir / "logs") as procs:
        node = procs.start("camera_node", [
            sys.executable, "-m", "spatial_trace_ros.nodes.camera_node", "--ros-args",
            "-p", "source:=replay", "-p", f"recording_path:='{recording}'", "-p", "loop_recording:=true",
            "-p", "playback_real_time:=true", "-p", "timestamp_source:=system", "-p", "qos_reliability:=reliable",
        ], env=env)
        sub = procs.start("subscriber", [sys.executable, __file__, "--subscribe", str(out),
                                         "--warmup-s", str(warmup_s), "--seconds", str(seconds)], env=env)
        proc = psutil.Process(node.pid)
        time.sleep(warmup_s)
        cpu0, t0 = proc.cpu_times(), time.monotonic()
        time.sleep(seconds)
        cpu1, t1 = proc.cpu_times(), time.monotonic()
        if sub.popen.wait(seconds + 60) != 0 or not out.exists():
            raise RuntimeError(f"subscriber failed:\n{procs.logs()}")
    data = json.loads(out.read_text())
    rows, window = data["rows"], data["window_s"]
    lat = {t: [recv - stamp for topic, recv, stamp in rows if topic == t] for t in (COLOR, DEPTH)}
    last_diag = data["diagnostics"][-1] if data["diagnostics"] else {}
    cpu_s = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    return {
        "resolution": f"{width}x{height}",
        "received_color_hz": round(len(lat[COLOR]) / window, 2),
        "received_aligned_depth_hz": round(len(lat[DEPTH]) / window, 2),
        "node_publish_rate_hz": float(last_diag.get("rate_hz", "nan")),
        "node_drops": int(last_diag.get("drops", "0")),
        "node_publish_ms_p50": float(last_diag.get("publish_ms") or "nan"),
        "latency_color_ms": {"p50": percentile_ms(lat[COLOR], 50), "p99": percentile_ms(lat[COLOR], 99)},
        "latency_aligned_depth_ms": {"p50": percentile_ms(lat[DEPTH], 50), "p99": percentile_ms(lat[DEPTH], 99)},
        "node_cpu_cores": round(cpu_s / (t1 - t0), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring window per resolution [s]")
    parser.add_argument("--warmup-s", type=float, default=3.0, help="discovery and start-up, not measured [s]")
    parser.add_argument("--subscribe", type=Path, help=argparse.SUPPRESS)  # the subscriber process
    args = parser.parse_args()
    if args.subscribe:
        subscribe(args.subscribe, args.warmup_s, args.seconds)
        return
    with tempfile.TemporaryDirectory(prefix="bench_camera_") as tmp:
        results = [measure(w, h, args.seconds, args.warmup_s, Path(tmp)) for w, h in ((1280, 720), (640, 480))]
    print(json.dumps({
        "benchmark": "camera_node replay, aligned depth, reliable QoS, subscriber in another process",
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
