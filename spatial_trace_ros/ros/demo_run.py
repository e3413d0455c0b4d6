"""``spatial-trace demo``: the whole stack in one process in simulation, driven like an operator would.

The four nodes run in one process (``ros.stack.InProcessStack``) with the sim camera, the oracle (or
a real model server), the planner and the controller with the sim driver. For each instruction the
demo publishes it, waits for the trace and the safety verdict, calls ``/controller_node/execute`` for
accepted plans, and waits for the outcome, all through the public topics (``ros.stack_client``).
It records every topic into an MCAP bag and writes the overlays, a 3D plot and a summary table.
The controller drives its arm in its real-time worker process; the sim camera follows
``/joint_states`` (camera_node does that with the ``sim`` source), so the frames show the arm where it is.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path as PathMsg
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, JointState

from spatial_trace_ros.demo.config import DemoConfig
from spatial_trace_ros.demo.instructions import DemoInstruction, choose_instructions
from spatial_trace_ros.demo.overlay import banner_colour, save_png, with_banner
from spatial_trace_ros.demo.plot import plot_paths
from spatial_trace_ros.demo.report import InstructionReport, write_summary
from spatial_trace_ros.errors import ModelError
from spatial_trace_ros.geometry.calibration import Calibration
from spatial_trace_ros.planning.safety_config import SafetyConfig
from spatial_trace_ros.robots.model import make_robot_model
from spatial_trace_ros.ros.bag_recorder import BagRecorder
from spatial_trace_ros.ros.bag_writer import McapBagWriter
from spatial_trace_ros.ros.conversions import msg_to_image, path_to_trace, stamp_to_seconds
from spatial_trace_ros.ros.qos import LATCHED, STATE
from spatial_trace_ros.ros.stack import InProcessStack
from spatial_trace_ros.ros.stack_client import Inbox, StackClient, StageTimeoutError
from spatial_trace_ros.sim.config import world_config
from spatial_trace_ros.sim.scene import calibration_dict, write_calibration
from spatial_trace_ros.sim.task_eval import judge_task
from spatial_trace_ros.sim.tasks import plan_task
from spatial_trace_ros.sim.ur_arm import HOME_Q_RAD

Progress = Callable[[str], None]
CAMERA_INFO_TOPIC = "/camera/camera/color/camera_info"
# Topics the recording must hold before the first instruction (their publishers exist from the start).
RECORDED_TOPICS = (
    "/camera/camera/color/image_raw", "/camera/camera/color/camera_info",
    "/camera/camera/aligned_depth_to_color/image_raw", "/camera/camera/aligned_depth_to_color/camera_info",
    "/spatial_trace/instruction", "/spatial_trace/trace", "/spatial_trace/overlay", "/spatial_trace/trace_status",
    "/spatial_trace/plan", "/spatial_trace/waypoints", "/spatial_trace/markers", "/spatial_trace/safety",
    "/spatial_trace/controller_status", "/spatial_trace/tcp_pose", "/joint_states", "/diagnostics",
)
STAMP_MATCH_S = 1e-3
STARTUP_TIMEOUT_S = 60.0
OUTPUT_NAMES = ("summary.md", "summary.json", "paths_3d.png", "calibration.yaml")


@dataclass
class DemoResult:
    reports: list[InstructionReport]
    files: dict[str, Path] = field(default_factory=dict)
    overlays: list[Path] = field(default_factory=list)
    bag_counts: dict[str, int] = field(default_factory=dict)
    startup_s: float = 0.0
    total_s: float = 0.0

    @property
    def all_as_expected(self) -> bool:
        return all(r.met_expectation for r in self.reports)


class DemoObserver:
    """The demo's own subscriptions: overlays and traces (to save and plot), TCP poses during a run (the
    executed path), frame and joint-state arrivals (are the camera and the controller up?)."""

    def __init__(self, node: Node) -> None:
        self.overlays, self.traces = Inbox(), Inbox()
        self._lock = threading.Lock()
        self._capturing = False
        self._tcp: list[list[float]] = []
        self.frames = 0
        self.joint_states = 0
        any_reliability = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2,
                                     reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE)
        node.create_subscription(Image, "/spatial_trace/overlay", self.overlays.put, LATCHED)
        node.create_subscription(PathMsg, "/spatial_trace/trace", self.traces.put, LATCHED)
        node.create_subscription(PoseStamped, "/spatial_trace/tcp_pose", self._on_tcp, STATE)
        node.create_subscription(JointState, "/joint_states", self._on_joints, STATE)
        node.create_subscription(CameraInfo, CAMERA_INFO_TOPIC, self._on_frame, any_reliability)

    def _on_frame(self, _msg: CameraInfo) -> None:
        self.frames += 1

    def _on_joints(self, _msg: JointState) -> None:
        self.joint_states += 1

    def _on_tcp(self, msg: PoseStamped) -> None:
        with self._lock:
            if self._capturing:
                p = msg.pose.position
                self._tcp.append([p.x, p.y, p.z])

    def start_capture(self) -> None:
        with self._lock:
            self._tcp, self._capturing = [], True

    def stop_capture(self) -> np.ndarray:
        with self._lock:
            self._capturing = False
            return np.array(self._tcp, float).reshape(-1, 3)

    @staticmethod
    def _stamped(stamp_s: float) -> Callable[[Any], bool]:
        return lambda msg: abs(stamp_to_seconds(msg.header.stamp) - stamp_s) < STAMP_MATCH_S

    def wait_trace(self, stamp_s: float, start: int, timeout_s: float) -> tuple[float, PathMsg] | None:
        return self.traces.wait(self._stamped(stamp_s), start, timeout_s)

    def wait_overlay(self, stamp_s: float, start: int, timeout_s: float) -> tuple[float, Image] | None:
        return self.overlays.wait(self._stamped(stamp_s), start, timeout_s)


def clear_previous_results(out_dir: Path) -> None:
    """Remove what an earlier demo run wrote there (only files of the names the demo writes)."""
    for name in OUTPUT_NAMES:
        (out_dir / name).unlink(missing_ok=True)
    for png in out_dir.glob("overlay_*.png"):
        png.unlink()
    bag = out_dir / "recording"
    if bag.is_dir() and all(p.name == "metadata.yaml" or p.suffix == ".mcap" for p in bag.iterdir()):
        shutil.rmtree(bag)


class DemoRun:
    """One demo session: start the stack, run the instructions, write the results, stop everything."""

    def __init__(self, cfg: DemoConfig, progress: Progress) -> None:
        self.cfg = cfg
        self.progress = progress
        self.scene = world_config(**cfg.world_options()).build_scene()
        self.model = make_robot_model(cfg.robot)
        self.safety = SafetyConfig()  # the built-in limits, identical to config/safety.yaml
        self.calibration = Calibration.from_dict(calibration_dict(self.scene), "simulated camera")
        self.stack: InProcessStack | None = None
        self.client: StackClient | None = None
        self.observer: DemoObserver | None = None
        self.writer: McapBagWriter | None = None
        self.recorder: BagRecorder | None = None
        self.objects_m: dict[str, np.ndarray] = {o.name: o.centre for o in self.scene.objects}

    # -- setup -------------------------------------------------------------------------------------------
    def instructions(self) -> list[DemoInstruction]:
        if self.cfg.instructions:
            return [DemoInstruction(text) for text in self.cfg.instructions]
        chosen = choose_instructions(self.scene, self.model, self.safety, np.array(HOME_Q_RAD[self.cfg.robot]),
                                     short=self.cfg.short)
        if self.cfg.backend != "oracle":  # what a real model draws is its own business: nothing is expected
            chosen = [DemoInstruction(item.text, why=item.why) for item in chosen]
        return chosen

    def start(self, record: bool, log_level: str = "warn") -> float:
        """Start the stack (and the recorder) and wait until every stage is up; returns the seconds it took."""
        t0 = time.monotonic()
        cfg = self.cfg
        cfg.out_dir.mkdir(parents=True, exist_ok=True)
        clear_previous_results(cfg.out_dir)
        write_calibration(self.scene, cfg.calibration_path)
        self.progress(f"starting the stack: simulated {cfg.robot} (scene seed {cfg.seed}), {cfg.backend} trace "
                      f"backend, {cfg.policy} policy")
        self.stack = InProcessStack({
            "camera_node": cfg.camera_parameters(), "trace_node": cfg.trace_parameters(),
            "planner_node": cfg.planner_parameters(), "controller_node": cfg.controller_parameters(),
        }, log_level=log_level)
        self.stack.start()
        operator = self.stack.helper_node("demo_operator")
        self.client = StackClient(operator)
        self.observer = DemoObserver(operator)
        if record:
            self.writer = McapBagWriter(cfg.out_dir / "recording")
            self.recorder = BagRecorder(self.stack.helper_node("demo_recorder"), self.writer)
        self._wait_ready()
        return time.monotonic() - t0

    def _wait_until(self, predicate: Callable[[], bool], what: str, deadline: float) -> None:
        while not predicate():
            if time.monotonic() > deadline:
                raise StageTimeoutError(f"the simulated stack did not come up: {what} within {STARTUP_TIMEOUT_S:g} s")
            time.sleep(0.05)

    def _wait_ready(self) -> None:
        assert self.client is not None and self.observer is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        self.client.wait_for_stack(STARTUP_TIMEOUT_S)
        self._wait_until(lambda: self.observer.frames > 0, "no camera frame (see camera_node's messages above; "
                         "if offscreen rendering fails, try MUJOCO_GL=osmesa)", deadline)
        self._wait_until(lambda: self.observer.joint_states > 0, "the controller did not connect to the arm",
                         deadline)
        if self.recorder is not None:
            missing = lambda: [t for t in RECORDED_TOPICS if t not in self.recorder.topics]  # noqa: E731
            self._wait_until(lambda: not missing(), "the recorder did not find every topic", deadline)
            # the instruction must reach the recorder as well as trace_node
            self._wait_until(lambda: self.client.instruction_listeners() >= 2, "the recorder did not subscribe",
                             deadline)
        self.progress("stack ready")

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
        if self.stack is not None:
            self.stack.close()
        if self.writer is not None:
            self.writer.close()

    # -- one instruction ---------------------------------------------------------------------------------
    def run_instruction(self, index: int, item: DemoInstruction) -> InstructionReport:
        client, observer, cfg = self.client, self.observer, self.cfg
        assert client is not None and observer is not None
        report = InstructionReport.start(index, item)
        frame_stamp = 0.0
        t0 = time.monotonic()
        marks = (len(observer.traces), len(observer.overlays))
        request = client.send(item.text)
        try:
            t_status, status = client.wait_trace(request, cfg.trace_timeout_s)
            report.trace_s = t_status - t0
            report.trace_state, report.trace_reason = status["state"], status.get("reason", "")
            report.n_points = int(status.get("n_points", 0))
            report.model_latency_s = float(status.get("latency_s", 0.0))
            if report.trace_state != "ok":
                return report
            frame_stamp = float(status["frame_stamp_s"])
            found = observer.wait_trace(frame_stamp, marks[0], cfg.stage_timeout_s)
            if found is None:
                raise StageTimeoutError("trace stage: the trace was announced but never came on /spatial_trace/trace")
            t_trace, path_msg = found
            trace = path_to_trace(path_msg)
            report.trace_length_m = trace.length_m
            report.trace_base_m = self.calibration.base_T_camera().apply(trace.points[trace.valid])
            t_verdict, verdict = client.wait_verdict(request, cfg.stage_timeout_s)
            report.plan_s = max(0.0, t_verdict - t_trace)
            report.verdict, report.codes, report.safety_message = verdict.verdict, verdict.codes, verdict.detail
            if verdict.accepted:
                self._execute(request, verdict, report)
        except StageTimeoutError as err:
            report.problem = str(err)
            if not report.trace_state:
                report.trace_state = "timeout"
        finally:
            report.total_s = time.monotonic() - t0
            if report.trace_state == "ok":
                self._save_overlay(report, frame_stamp, marks[1])
        return report

    def _execute(self, request: Any, verdict: Any, report: InstructionReport) -> None:
        client, observer, cfg = self.client, self.observer, self.cfg
        assert client is not None and observer is not None
        report.plan_duration_s, report.n_waypoints = verdict.duration_s, verdict.n_waypoints
        _, extent = client.wait_waypoints(request, verdict, cfg.stage_timeout_s)
        report.planned_path_m, report.plan_length_m = extent.positions_m, extent.length_m
        _, ready = client.wait_controller_ready(request, verdict, cfg.stage_timeout_s)
        if ready.get("state") != "waiting_for_execute":
            report.problem = f"the controller did not take the plan: {ready.get('reason', '')}"
            return
        observer.start_capture()
        t_exec = time.monotonic()
        ok, message = client.approve(str(ready.get("plan_id") or verdict.plan_id), cfg.stage_timeout_s)
        if ok:
            ok, message = client.execute(cfg.stage_timeout_s)
        if not ok:
            observer.stop_capture()
            report.problem = f"/controller_node/execute refused: {message}"
            return
        try:
            t_done, final = client.wait_outcome(request, verdict, verdict.duration_s * 1.5 + cfg.stage_timeout_s)
        finally:
            report.executed_path_m = observer.stop_capture()
        report.execute_s = t_done - t_exec
        report.outcome, report.outcome_reason = final["state"], final.get("reason", "")
        error = final.get("tracking_error_m")
        report.tracking_error_m = None if error is None else float(error)
        self._judge(report, final.get("task") or {})

    def _judge(self, report: InstructionReport, task: dict) -> None:
        """Task success from the simulated world the controller's worker ran: where the object ended."""
        if not task:
            return
        report.task_kind, report.grasp = task.get("task", ""), task.get("grasp", "")
        report.object_paths_m = task.get("sim_object_paths_m", {})
        world = {name: np.asarray(p, float) for name, p in task.get("sim_objects_m", {}).items()}
        if not world:
            return
        try:
            truth = plan_task(report.instruction, self.scene, self.calibration.base_T_camera().matrix)
        except ModelError as err:
            report.task_reason = f"cannot judge: {err}"
            return
        name = truth.obj.name
        start = self.objects_m.get(name, truth.obj.centre)
        path = report.object_paths_m.get(name)
        if path:
            start = np.asarray(path[0], float)
        held = bool(task.get("holding"))
        report.task_success, report.task_reason = judge_task(truth, start, world[name], world, held)
        self.objects_m.update(world)

    def _save_overlay(self, report: InstructionReport, frame_stamp: float, start: int) -> None:
        assert self.observer is not None
        found = self.observer.wait_overlay(frame_stamp, start, self.cfg.stage_timeout_s)
        if found is None:
            report.problem = report.problem or "the overlay image never arrived on /spatial_trace/overlay"
            return
        image = np.array(msg_to_image(found[1]))
        lines = [f"#{report.index} {report.instruction}"]
        if report.verdict == "REJECT":
            first_reason = report.safety_message.split("; ")[0]
            lines.append(f"REFUSED by the safety filter ({', '.join(report.codes)}): {first_reason}")
        elif report.verdict:
            outcome = report.outcome or "not executed"
            error = report.tracking_error_m
            error_text = "" if error is None else f", tracking error {error * 1000:.1f} mm"
            lines.append(f"{report.verdict}: {outcome}{error_text}")
        path = self.cfg.out_dir / f"overlay_{report.index:02d}.png"
        colour = banner_colour(report.verdict, report.outcome)
        report.overlay_png = str(save_png(with_banner(image, lines, colour), path))

    # -- the whole session -------------------------------------------------------------------------------
    def run(self) -> DemoResult:
        t0 = time.monotonic()
        items = self.instructions()
        result = DemoResult([])
        try:
            result.startup_s = self.start(self.cfg.record)
            for index, item in enumerate(items, start=1):
                self.progress(f"[{index}/{len(items)}] {item.text!r}" + (f" ({item.why})" if item.why else ""))
                report = self.run_instruction(index, item)
                result.reports.append(report)
                self.progress("    " + describe(report))
        finally:
            self.close()
        result.total_s = time.monotonic() - t0
        self._write_outputs(result)
        return result

    def _write_outputs(self, result: DemoResult) -> None:
        cfg = self.cfg
        header = {"robot": cfg.robot, "scene_seed": str(cfg.seed), "backend": cfg.backend, "policy": cfg.policy,
                  "startup_s": f"{result.startup_s:.1f}", "total_s": f"{result.total_s:.1f}"}
        if self.writer is not None:
            result.bag_counts = {t.name: t.count for t in self.writer.topics.values()}
            result.files["bag"] = self.writer.folder
        title = f"{cfg.robot}, scene {cfg.seed}: planned (dotted) vs executed (solid) TCP paths"
        result.files["plot"] = plot_paths(result.reports, self.safety, cfg.out_dir / "paths_3d.png", title)
        md, js = write_summary(result.reports, header, {"bag_message_counts": result.bag_counts}, cfg.out_dir)
        result.files["summary_md"], result.files["summary_json"] = md, js
        result.overlays = [Path(r.overlay_png) for r in result.reports if r.overlay_png]


def describe(report: InstructionReport) -> str:
    """One line saying what happened to an instruction."""
    if report.trace_state != "ok":
        text = f"trace {report.trace_state or 'not received'}"
        return text + (f": {report.trace_reason}" if report.trace_reason else "") + (
            f" ({report.problem})" if report.problem else "")
    parts = [f"trace {report.n_points} points ({report.trace_s:.2f} s)"]
    if report.verdict:
        parts.append(report.verdict if report.verdict != "REJECT" else f"REFUSED ({', '.join(report.codes)})")
    if report.outcome:
        error = "" if report.tracking_error_m is None else f", tracking error {report.tracking_error_m * 1000:.1f} mm"
        parts.append(f"{report.outcome} in {report.execute_s:.1f} s{error}")
    text = " -> ".join(parts)
    return text + (f"; {report.problem}" if report.problem else "")


def run_demo(cfg: DemoConfig, progress: Progress) -> DemoResult:
    return DemoRun(cfg, progress).run()


def serve(cfg: DemoConfig, progress: Progress, stop: threading.Event) -> None:
    """Keep the simulated stack up (for ``spatial-trace ask``, RViz, Foxglove) until ``stop`` is set."""
    run = DemoRun(cfg, progress)
    try:
        run.start(record=False, log_level="info")
        progress('serving; try: spatial-trace ask "pick up the ..." (objects: '
                 f"{', '.join(run.scene.names)}); Ctrl-C stops")
        stop.wait()
    finally:
        run.close()

