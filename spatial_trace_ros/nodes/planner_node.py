"""``planner_node``: camera-frame traces in, checked and timed plans out.

Subscribes to ``/spatial_trace/trace`` (nav_msgs/Path), ``/spatial_trace/trace_status`` (validity and
model agreement of each trace, paired with it by the exact frame stamp: ``planning.trace_pairing``),
``/joint_states`` and ``/spatial_trace/tcp_pose`` (eye-in-hand). For every trace it
publishes the verdict on ``/spatial_trace/safety`` and ``/diagnostics``, RViz markers on
``/spatial_trace/markers`` and, unless refused, the plan on ``/spatial_trace/plan``
(trajectory_msgs/JointTrajectory) with its waypoints on ``/spatial_trace/waypoints``.
All planning is in ``planning.Planner``; this node only moves data and holds parameters.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import replace
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray, PoseStamped
from nav_msgs.msg import Path
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from spatial_trace_ros.errors import SpatialTraceError
from spatial_trace_ros.geometry.trace import Trace
from spatial_trace_ros.geometry.transforms import Transform
from spatial_trace_ros.planning.node_config import PlannerNodeConfig, build_planner
from spatial_trace_ros.planning.plan import SafetyReport, Verdict
from spatial_trace_ros.planning.planner import Planner, PlanResult
from spatial_trace_ros.planning.pose_history import PoseHistory
from spatial_trace_ros.planning.safety import SafetyCode, reason
from spatial_trace_ros.planning.task import task_kind
from spatial_trace_ros.planning.trace_pairing import TracePairing, TraceStageFacts
from spatial_trace_ros.robots.model import make_robot_model
from spatial_trace_ros.ros.conversions import (
    path_to_trace,
    pose_to_transform,
    stamp_ns,
    stamp_to_seconds,
    trace_made_s,
    transforms_to_pose_array,
)
from spatial_trace_ros.ros.markers import specs_to_marker_array
from spatial_trace_ros.ros.params import ParameterBinding
from spatial_trace_ros.ros.plan_msgs import plan_to_joint_trajectory, withdrawn_plan
from spatial_trace_ros.ros.qos import COMMAND, LATCHED, STATE
from spatial_trace_ros.ros.runner import run_node
from spatial_trace_ros.ros.safety_msgs import safety_report_to_diagnostics
from spatial_trace_ros.viz.markers import plan_markers
from spatial_trace_ros.viz.task_markers import task_markers

TOPICS = {
    "trace": "/spatial_trace/trace",
    "trace_status": "/spatial_trace/trace_status",
    "instruction": "/spatial_trace/instruction",
    "joint_states": "/joint_states",
    "tcp_pose": "/spatial_trace/tcp_pose",
    "plan": "/spatial_trace/plan",
    "waypoints": "/spatial_trace/waypoints",
    "safety": "/spatial_trace/safety",
    "markers": "/spatial_trace/markers",
    "diagnostics": "/diagnostics",
}
PAIRING_CHECK_PERIOD_S = 0.1  # how often traces still waiting for their trace_status are checked


class PlannerNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("planner_node", **kwargs)
        self._lock = threading.Lock()
        self._pending: Planner | None = None
        self._params = ParameterBinding(self, PlannerNodeConfig, veto=self._try_change, on_change=self._apply)
        cfg: PlannerNodeConfig = self._params.config
        self._model = make_robot_model(cfg.robot)
        self._planner = build_planner(cfg, self._model)
        self._q: np.ndarray | None = None
        self._q_stamp_s = 0.0
        self._tcp_history = PoseHistory()
        self._joint_history = PoseHistory()
        self._pairing = TracePairing(cfg.trace_status_timeout_s)
        self._instruction = ""  # the latest one: with a tool it says which task a trace is for
        self._warned: set[str] = set()

        self._plan_pub = self.create_publisher(JointTrajectory, TOPICS["plan"], LATCHED)
        self._waypoints_pub = self.create_publisher(PoseArray, TOPICS["waypoints"], LATCHED)
        self._safety_pub = self.create_publisher(DiagnosticArray, TOPICS["safety"], LATCHED)
        self._markers_pub = self.create_publisher(MarkerArray, TOPICS["markers"], LATCHED)
        self._diag_pub = self.create_publisher(DiagnosticArray, TOPICS["diagnostics"], STATE)
        self.create_subscription(Path, TOPICS["trace"], self._on_trace, LATCHED)
        self.create_subscription(String, TOPICS["trace_status"], self._on_trace_status, LATCHED)
        self.create_subscription(String, TOPICS["instruction"], self._on_instruction, COMMAND)
        self.create_subscription(JointState, TOPICS["joint_states"], self._on_joint_state, STATE)
        self.create_subscription(PoseStamped, TOPICS["tcp_pose"], self._on_tcp_pose, STATE)
        self.create_timer(PAIRING_CHECK_PERIOD_S, self._refuse_overdue)
        self._publish_cell()
        self.get_logger().info(
            f"planning for {self._model.name} in frame {self._model.base_frame!r} with calibration "
            f"{cfg.calibration_file} ({self._planner.calibration.mode}); safety limits from "
            f"{cfg.safety_file or 'built-in defaults'}"
        )

    # -- parameters -----------------------------------------------------------------------------------
    def _try_change(self, updates: dict[str, Any]) -> str | None:
        """Build the planner a change asks for; refuse the change if that fails (files, seed)."""
        merged = {**self._params.config.model_dump(), **updates}
        try:
            self._pending = build_planner(PlannerNodeConfig.model_validate(merged), self._model)
        except SpatialTraceError as err:
            return str(err)
        return None

    def _apply(self, cfg: PlannerNodeConfig) -> None:
        with self._lock:
            self._pairing.timeout_s = cfg.trace_status_timeout_s
            if self._pending is not None:
                self._planner, self._pending = self._pending, None
        self.get_logger().info("parameters changed; the next trace is planned with them")
        self._publish_cell()

    # -- inputs ---------------------------------------------------------------------------------------
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.get_logger().warning(text)

    def _on_joint_state(self, msg: JointState) -> None:
        names = list(msg.name)
        try:
            order = [names.index(n) for n in self._model.joint_names]
        except ValueError:
            self._warn_once("joint_names", f"/joint_states has joints {names}, not {list(self._model.joint_names)}; "
                                           "is the controller running for the same robot?")
            return
        q = np.array([msg.position[i] for i in order], float)
        if not np.all(np.isfinite(q)):
            return
        stamp = stamp_to_seconds(msg.header.stamp) or self._now_s()
        with self._lock:
            self._q, self._q_stamp_s = q, self._now_s()
            if self._planner.calibration.mode == "eye_in_hand":
                self._joint_history.add(stamp, self._model.fk(q))

    def _on_tcp_pose(self, msg: PoseStamped) -> None:
        frame = msg.header.frame_id
        if frame and frame != self._model.base_frame:
            self._warn_once("tcp_frame", f"/spatial_trace/tcp_pose is in {frame!r}, expected "
                                         f"{self._model.base_frame!r}; ignoring it")
            return
        with self._lock:
            self._tcp_history.add(stamp_to_seconds(msg.header.stamp), pose_to_transform(msg.pose).matrix)

    def _on_instruction(self, msg: String) -> None:
        with self._lock:
            self._instruction = msg.data.strip()

    def _on_trace_status(self, msg: String) -> None:
        try:
            status = json.loads(msg.data)
        except ValueError:
            return
        facts = TraceStageFacts.from_status(status) if isinstance(status, dict) else None
        if facts is None:
            return
        with self._lock:
            pair = self._pairing.add_status(facts)
        if pair is not None:
            self._plan_pair(*pair)

    def _on_trace(self, msg: Path) -> None:
        received_s = self._now_s()
        try:
            trace = path_to_trace(msg)
        except ValueError as err:
            self._publish(_refusal(SafetyCode.INVALID_INPUT, f"unusable trace message: {err}"), received_s)
            return
        with self._lock:
            pair = self._pairing.add_trace(stamp_ns(msg.header.stamp), (trace, trace_made_s(msg)), received_s)
        if pair is not None:
            self._plan_pair(*pair)

    def _refuse_overdue(self) -> None:
        now = self._now_s()
        with self._lock:
            late = self._pairing.overdue(now)
            timeout_s = self._pairing.timeout_s
        for trace, _made in late:
            self._publish(_refusal(
                SafetyCode.INVALID_INPUT,
                f"no trace_status for the trace of the frame stamped {trace.stamp_s:.3f} s within "
                f"{timeout_s:g} s (trace_status_timeout_s): its depth validity and model agreement are unknown; "
                "is trace_node publishing /spatial_trace/trace_status?"), now)

    def _plan_pair(self, item: tuple[Trace, float | None], facts: TraceStageFacts) -> None:
        trace, made_s = item
        trace = replace(trace, metadata={**trace.metadata, **facts.metadata()})
        self._publish(self._plan(trace, made_s), self._now_s())

    # -- planning -------------------------------------------------------------------------------------
    def _plan(self, trace: Trace, made_s: float | None) -> PlanResult:
        cfg: PlannerNodeConfig = self._params.config
        with self._lock:
            planner = self._planner
            now = self._now_s()
            fresh = self._q is not None and now - self._q_stamp_s <= cfg.joint_state_timeout_s
            q_now = self._q if fresh else None
            seed, label = (self._q, "the last joint state (stale)") if self._q is not None else (
                cfg.seed_joints(), "initial_joints_rad")
            capture_pose = None
            if planner.calibration.mode == "eye_in_hand":
                capture_pose = self._tcp_history.at(trace.stamp_s, cfg.tcp_pose_tolerance_s)
                if capture_pose is None:
                    capture_pose = self._joint_history.at(trace.stamp_s, cfg.tcp_pose_tolerance_s)
        try:
            # the task a trace is for: its status names the instruction; else the latest instruction
            instruction = trace.metadata.get("instruction") or self._instruction
            task = task_kind(instruction) if instruction else ""
            return planner.plan_detailed(
                trace, q_now, capture_pose, now_s=now, trace_made_s=made_s, seed_joints=seed,
                max_trace_age_s=cfg.max_trace_age_s, seed_label=label, task=task,
            )
        except (SpatialTraceError, ValueError) as err:
            return _refusal(SafetyCode.INVALID_INPUT, str(err))

    # -- outputs --------------------------------------------------------------------------------------
    def _publish(self, result: PlanResult, stamp_s: float) -> None:
        plan, report = result.plan, result.report
        frame = self._model.base_frame
        plan_stamp = plan.stamp_s if plan is not None else stamp_s
        if plan is not None:
            self._plan_pub.publish(plan_to_joint_trajectory(plan))
            tfs = [Transform(p, frame, self._model.tool_frame) for p in plan.poses]
            self._waypoints_pub.publish(transforms_to_pose_array(tfs, frame, plan.stamp_s))
        else:
            # The plan topic is latched: replace the previous plan with an empty one so that no
            # controller (or one started later) can execute a plan older than this refusal.
            self._plan_pub.publish(withdrawn_plan(self._model.joint_names, frame, plan_stamp))
            self._waypoints_pub.publish(transforms_to_pose_array([], frame, plan_stamp))
        diag = safety_report_to_diagnostics(
            report, plan_stamp, plan.duration_s if plan is not None else 0.0, len(plan) if plan is not None else 0,
            "planner", stamp_s, hardware_id=self._model.name, plan_id=plan.plan_id if plan is not None else "",
            expires_s=plan.expires_s if plan is not None else None,
        )
        self._safety_pub.publish(diag)
        self._diag_pub.publish(diag)
        with self._lock:
            safety_cfg = self._planner.safety.config
        specs = plan_markers(result.trace_base, result.waypoints, report, safety_cfg)
        task_planner = self._planner.task_planner
        if plan is not None and task_planner is not None:
            specs += task_markers(plan, task_planner.tool)
        self._markers_pub.publish(specs_to_marker_array(specs, frame, stamp_s))
        log = self.get_logger()
        if report.verdict is Verdict.REJECT:
            log.warning(f"plan refused: {report.summary()}")
        else:
            log.info(f"plan {plan.plan_id}: {len(plan)} waypoints, {plan.duration_s:.2f} s, {report.summary()}")

    def _publish_cell(self) -> None:
        """Workspace, table and keep-out zones, before any trace arrives (and after a limits change)."""
        with self._lock:
            safety_cfg = self._planner.safety.config
        report = SafetyReport(Verdict.ACCEPT)
        specs = [s for s in plan_markers(np.zeros((0, 3)), np.zeros((0, 4, 4)), report, safety_cfg)
                 if s.ns != "verdict"]
        self._markers_pub.publish(specs_to_marker_array(specs, self._model.base_frame, self._now_s()))


def _refusal(code: SafetyCode, text: str) -> PlanResult:
    report = SafetyReport(Verdict.REJECT, (reason(code, text),))
    return PlanResult(None, report, np.zeros((0, 3)), np.zeros((0, 4, 4)))


def main(args: list[str] | None = None) -> int:
    return run_node(PlannerNode, args=args)


if __name__ == "__main__":
    sys.exit(main())
