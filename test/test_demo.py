"""``spatial-trace demo --short``, end to end in its own process: the simulated camera, the oracle, the
planner and the controller with the simulated arm, all four nodes in one process.

Asserts on outcomes: every oracle instruction accepted and executed with a small tracking error (checked
again from the recording: the recorded TCP poses against the recorded plan), the keep-out instruction
refused by the safety filter with that reason, and the MCAP bag read back with every message decoded
from the definitions stored in it and the expected topics and counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory

from spatial_trace_ros.testing.processes import ProcessGroup

DEMO_TIMEOUT_S = 240.0
TRACKING_TOLERANCE_M = 0.02
EXPECTED_TOPICS = {
    "/camera/camera/color/image_raw", "/camera/camera/color/camera_info",
    "/camera/camera/aligned_depth_to_color/image_raw", "/camera/camera/aligned_depth_to_color/camera_info",
    "/spatial_trace/instruction", "/spatial_trace/trace", "/spatial_trace/overlay", "/spatial_trace/trace_status",
    "/spatial_trace/plan", "/spatial_trace/waypoints", "/spatial_trace/markers", "/spatial_trace/safety",
    "/spatial_trace/controller_status", "/spatial_trace/tcp_pose", "/joint_states", "/diagnostics",
}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "spatial_trace_ros.cli", *args]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory, ros_domain_id: int) -> tuple[Path, str]:
    """One short demo run shared by the tests of this module (its process is always stopped)."""
    from spatial_trace_ros.testing.processes import ros_test_env

    out = tmp_path_factory.mktemp("demo") / "out"
    with ProcessGroup(tmp_path_factory.mktemp("procs")) as procs:
        proc = procs.start("demo", _cli("demo", "--short", "--out", str(out)), env=ros_test_env(ros_domain_id))
        try:
            proc.popen.wait(DEMO_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the demo did not finish in {DEMO_TIMEOUT_S} s:\n{proc.tail(60)}")
        log = proc.output()
        assert proc.popen.returncode == 0, f"demo failed (exit {proc.popen.returncode}):\n{proc.tail(80)}"
    return out, log


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def test_oracle_instructions_are_executed_and_the_keep_out_one_is_refused(demo_run: tuple[Path, str]) -> None:
    out, log = demo_run
    rows = _summary(out)["instructions"]
    executed = [r for r in rows if r["expect"] == "execute"]
    refused = [r for r in rows if r["expect"] == "refuse"]
    assert len(executed) == 2 and len(refused) == 1, rows
    for row in executed:
        assert row["trace_state"] == "ok" and row["n_points"] >= 2, row
        assert row["verdict"] in ("ACCEPT", "ADJUSTED"), row
        assert row["outcome"] == "succeeded", row
        assert row["tracking_error_m"] is not None and row["tracking_error_m"] < TRACKING_TOLERANCE_M, row
        assert row["plan_duration_s"] > 0 and row["execute_s"] >= row["plan_duration_s"] * 0.9, row
        # the gripper really took the object, and the simulated world shows it where the task wanted it
        assert row["grasp"] == "held" and row["task_success"] is True, row
    place = next(r for r in executed if r["task_kind"] == "place")
    assert "into the" in place["instruction"] and "from the" in place["task_reason"], place
    (row,) = refused
    assert row["trace_state"] == "ok", "the oracle draws the trace; the safety filter must be the one refusing"
    assert row["verdict"] == "REJECT" and "KEEP_OUT_ZONE" in row["codes"], row
    assert "keep-out" in row["safety_message"] and "robot_base" in row["safety_message"]
    assert row["outcome"] == "", "nothing may run after a refusal"
    assert _summary(out)["all_as_expected"] is True
    assert "REJECT" in (out / "summary.md").read_text()
    for name in ("summary.md", "summary.json", "paths_3d.png", "recording"):
        assert str(out / name) in log, f"the demo does not say where {name} is"


def test_overlays_and_plot_are_images(demo_run: tuple[Path, str]) -> None:
    out, _ = demo_run
    rows = _summary(out)["instructions"]
    for row in rows:
        image = cv2.imread(row["overlay_png"])
        assert image is not None, f"no overlay for {row['instruction']!r}"
        assert image.shape[1] == 640 and image.shape[0] > 480  # the frame plus the verdict banner
    banner = cv2.imread(rows[-1]["overlay_png"])[480:]
    assert banner[..., 2].mean() > banner[..., 1].mean() + 40, "the refused instruction's banner should be red"
    plot = cv2.imread(str(out / "paths_3d.png"))
    assert plot is not None and plot.shape[0] > 300 and (out / "paths_3d.png").stat().st_size < 200_000


def _read_bag(path: Path) -> tuple[Counter, dict[str, list]]:
    counts: Counter = Counter()
    decoded: dict[str, list] = defaultdict(list)
    keep = {"/spatial_trace/waypoints", "/spatial_trace/tcp_pose", "/spatial_trace/controller_status",
            "/spatial_trace/safety", "/spatial_trace/instruction", "/spatial_trace/trace_status",
            "/camera/camera/color/image_raw", "/spatial_trace/plan"}
    with path.open("rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        header_profile = reader.get_header().profile
        assert header_profile == "ros2"
        for schema, channel, message, ros_msg in reader.iter_decoded_messages():
            assert schema.encoding == "ros2msg" and channel.message_encoding == "cdr"
            assert schema.name.count("/msg/") == 1, schema.name
            counts[channel.topic] += 1
            if channel.topic in keep:
                decoded[channel.topic].append((message.log_time, ros_msg))
    return counts, decoded


def _distance_to_polyline(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    a, b = line[:-1], line[1:]
    ab = b - a
    t = np.clip(np.einsum("pkj,kj->pk", points[:, None] - a[None], ab) / np.maximum((ab * ab).sum(1), 1e-12), 0, 1)
    closest = a[None] + t[..., None] * ab[None]
    return np.linalg.norm(points[:, None] - closest, axis=2).min(axis=1)


def test_mcap_bag_reads_back_with_every_topic(demo_run: tuple[Path, str]) -> None:
    out, _ = demo_run
    rows = _summary(out)["instructions"]
    bag = out / "recording"
    counts, decoded = _read_bag(bag / "recording_0.mcap")
    assert set(counts) >= EXPECTED_TOPICS, f"missing topics: {EXPECTED_TOPICS - set(counts)}"
    n, n_accepted = len(rows), sum(r["verdict"] in ("ACCEPT", "ADJUSTED") for r in rows)
    assert n_accepted == 2
    assert [m.data for _, m in decoded["/spatial_trace/instruction"]] == [r["instruction"] for r in rows]
    assert counts["/spatial_trace/trace"] == n and counts["/spatial_trace/overlay"] == n
    # Every verdict replaces the latched plan: an accepted one, or an empty one that withdraws the last.
    plans_sent = [len(m.points) for _, m in decoded["/spatial_trace/plan"]]
    assert [n > 0 for n in plans_sent] == [r["verdict"] in ("ACCEPT", "ADJUSTED") for r in rows]
    assert [len(m.poses) for _, m in decoded["/spatial_trace/waypoints"]] == [r["n_waypoints"] for r in rows]
    verdicts = [{kv.key: kv.value for kv in m.status[0].values} for _, m in decoded["/spatial_trace/safety"]]
    assert [v["verdict"] for v in verdicts if v["source"] == "planner"] == [r["verdict"] for r in rows]
    finals = [json.loads(m.data) for _, m in decoded["/spatial_trace/trace_status"]]
    assert [s["instruction"] for s in finals if s["state"] == "ok"] == [r["instruction"] for r in rows]
    outcomes = [json.loads(m.data)["state"] for _, m in decoded["/spatial_trace/controller_status"]]
    assert outcomes.count("succeeded") == n_accepted
    for topic in ("/camera/camera/color/image_raw", "/camera/camera/aligned_depth_to_color/image_raw",
                  "/joint_states", "/spatial_trace/tcp_pose"):
        assert counts[topic] >= 10, f"{topic}: only {counts[topic]} messages"
    # Nothing in the scene moves but the arm: the camera shows it where the controller took it.
    images = decoded["/camera/camera/color/image_raw"]
    first, last = (np.frombuffer(bytes(m.data), np.uint8).reshape(m.height, m.width, 3).astype(int)
                   for _, m in (images[0], images[-1]))
    assert images[0][1].encoding == "rgb8" and (images[0][1].width, images[0][1].height) == (640, 480)
    assert np.mean(np.any(np.abs(first - last) > 30, axis=2)) > 0.01, "the rendered arm did not move"
    # The same counts in the rosbag2 metadata that `ros2 bag play` reads.
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["storage_identifier"] == "mcap" and meta["relative_file_paths"] == ["recording_0.mcap"]
    assert {t["topic_metadata"]["name"]: t["message_count"] for t in meta["topics_with_message_count"]
            if t["message_count"]} == dict(counts)
    assert meta["message_count"] == sum(counts.values())
    # Tracking, measured from the recording itself: TCP poses during each run against that run's plan.
    plans = [(t, np.array([[p.position.x, p.position.y, p.position.z] for p in m.poses]))
             for t, m in decoded["/spatial_trace/waypoints"] if m.poses]
    statuses = decoded["/spatial_trace/controller_status"]
    done_times = [t for t, m in statuses if json.loads(m.data)["state"] == "succeeded"]
    tcp = [(t, [m.pose.position.x, m.pose.position.y, m.pose.position.z])
           for t, m in decoded["/spatial_trace/tcp_pose"]]
    for (start, waypoints), end in zip(plans, done_times, strict=True):
        samples = np.array([p for t, p in tcp if start < t < end])
        assert len(samples) > 20
        moving = samples[np.linalg.norm(samples - samples[0], axis=1) > 1e-3]  # from when the arm moved
        assert len(moving) > 10
        assert _distance_to_polyline(moving, waypoints).max() < TRACKING_TOLERANCE_M
        assert np.linalg.norm(samples[-1] - waypoints[-1]) < TRACKING_TOLERANCE_M


def test_bad_options_are_refused_in_words() -> None:
    for args, expected in ((["--backend", "openai"], "needs --backend-url"),
                           (["--policy", "teleport"], "teleport"),
                           (["--instruction", " "], "instruction is empty")):
        result = subprocess.run(_cli("demo", "--short", "--out", "/nonexistent/never", *args), capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 2, result
        assert expected in result.stderr and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("backend", ["oracle", "openai"])
def test_demo_parameters_are_valid_node_parameters_describing_one_world(backend: str, tmp_path: Path) -> None:
    """What the demo gives each node validates against the node's own config, and the camera, the
    oracle and the driver are told the same simulated cell."""
    from spatial_trace_ros.camera.config import CameraNodeConfig
    from spatial_trace_ros.demo.config import DemoConfig
    from spatial_trace_ros.planning.node_config import PlannerNodeConfig
    from spatial_trace_ros.robots.controller_config import ControllerNodeConfig
    from spatial_trace_ros.sim.camera import SimCameraOptions
    from spatial_trace_ros.sim.config import split_options
    from spatial_trace_ros.sim.robot import SimDriverOptions
    from spatial_trace_ros.trace.config import TraceStageConfig

    url = "" if backend == "oracle" else "http://127.0.0.1:9/v1"
    cfg = DemoConfig(robot="ur5", seed=5, backend=backend, backend_url=url, backend_model="m", out_dir=tmp_path,
                     policy="movel_path")
    camera = CameraNodeConfig.model_validate(cfg.camera_parameters())
    camera_world, camera_own = split_options(json.loads(camera.sim_options_json), SimCameraOptions, "camera")
    assert camera.source == "sim" and camera_own.fps == cfg.camera_fps
    trace = TraceStageConfig.model_validate(cfg.trace_parameters())
    controller = ControllerNodeConfig.model_validate(cfg.controller_parameters())
    driver_world, driver_own = split_options({"robot": "ur5", **controller.driver_options()}, SimDriverOptions, "d")
    assert controller.driver_name == "sim" and controller.control_policy == "movel_path"
    assert driver_own.period_s == cfg.control_period_s and driver_world == camera_world
    assert (camera_world.robot, camera_world.scene_seed) == ("ur5", 5)
    if backend == "oracle":
        assert split_options(trace.backend_options(), SimCameraOptions, "oracle")[0] == camera_world
    else:
        assert trace.backend_options()["base_url"] == url and trace.backend_options()["model"] == "m"
    planner = PlannerNodeConfig.model_validate(cfg.planner_parameters())
    assert planner.robot == "ur5" and Path(planner.calibration_file) == (tmp_path / "calibration.yaml").resolve()
