"""``controller_node``: executes accepted plans on the robot with a chosen control policy.

Subscribes to ``/spatial_trace/plan`` (trajectory_msgs/JointTrajectory), ``/spatial_trace/plan_approval``
(std_msgs/String: the id of the held plan the operator approved) and ``/spatial_trace/estop``
(std_msgs/Bool: true = stop now and latch, persisted across restarts; false changes nothing); serves
``~/execute`` (runs the held plan only if it is the approved one, unexpired, and the robot is where it
starts), ``~/stop``, ``~/reset_estop`` (releases the latch; needs the ``estop_reset_note`` parameter,
who and why, which it logs and clears) and ``~/recover`` (clears a UR protective stop without a
restart), ``~/resume`` and ``~/abort`` (a stopped task), and with a gripper ``~/gripper_open``,
``~/gripper_close`` and ``~/gripper_activate``, all std_srvs/Trigger. Publishes ``/joint_states``,
``/spatial_trace/tcp_pose`` (robot base frame), ``/spatial_trace/controller_status`` (JSON),
``/diagnostics``, with a gripper its finger joint on ``/joint_states`` and
``/spatial_trace/gripper_status``, and, when the run-time guard refuses a setpoint,
``/spatial_trace/safety``. The robot and the gripper are driven by a real-time worker process
(``robots.worker``); the state machine is ``robots.controller.Controller``. This node only converts
messages, holds parameters and runs callbacks (the e-stop on its own callback group, so it is never
queued behind another callback).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import rclpy.parameter
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Pose, PoseArray, PoseStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from spatial_trace_ros.geometry.transforms import Transform
from spatial_trace_ros.planning.plan import SafetyReport, Verdict
from spatial_trace_ros.robots.controller import Controller
from spatial_trace_ros.robots.controller_config import ControllerNodeConfig
from spatial_trace_ros.robots.execution import ExecutionResult
from spatial_trace_ros.robots.plan_approval import APPROVAL_TOPIC
from spatial_trace_ros.robots.worker import StateEvent
from spatial_trace_ros.ros.conversions import make_header, transform_to_pose
from spatial_trace_ros.ros.gripper_interface import GripperInterface
from spatial_trace_ros.ros.params import ParameterBinding
from spatial_trace_ros.ros.plan_msgs import is_withdrawn, joint_trajectory_to_plan
from spatial_trace_ros.ros.qos import COMMAND, LATCHED, STATE
from spatial_trace_ros.ros.runner import run_node
from spatial_trace_ros.ros.safety_msgs import safety_report_to_diagnostics

TOPICS = {
    "plan": "/spatial_trace/plan",
    "approval": APPROVAL_TOPIC,
    "estop": "/spatial_trace/estop",
    "joint_states": "/joint_states",
    "tcp_pose": "/spatial_trace/tcp_pose",
    "status": "/spatial_trace/controller_status",
    "sim_objects": "/spatial_trace/sim/object_poses",  # simulated gripper only
    "diagnostics": "/diagnostics",
    "safety": "/spatial_trace/safety",
}
STATUS_PROGRESS_PERIOD_S = 0.2  # progress updates while executing
DIAGNOSTICS_PERIOD_S = 1.0
DIAGNOSTICS_NAME = "spatial_trace/controller"


class ControllerNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("controller_node", **kwargs)
        self._params = ParameterBinding(self, ControllerNodeConfig, veto=self._refuse_change, on_change=self._apply)
        cfg: ControllerNodeConfig = self._params.config
        self._controller = Controller(cfg, log=self._log, clock=self._now_s)
        self._model = self._controller.model
        self._last_status_s = 0.0
        self._sim_objects_pub: Any = None

        self._joint_pub = self.create_publisher(JointState, TOPICS["joint_states"], STATE)
        self._tcp_pub = self.create_publisher(PoseStamped, TOPICS["tcp_pose"], STATE)
        self._status_pub = self.create_publisher(String, TOPICS["status"], LATCHED)
        self._diag_pub = self.create_publisher(DiagnosticArray, TOPICS["diagnostics"], STATE)
        self._safety_pub = self.create_publisher(DiagnosticArray, TOPICS["safety"], LATCHED)

        estop_group = MutuallyExclusiveCallbackGroup()
        service_group = MutuallyExclusiveCallbackGroup()
        poll_group = MutuallyExclusiveCallbackGroup()
        self.create_subscription(Bool, TOPICS["estop"], self._on_estop, COMMAND, callback_group=estop_group)
        self.create_subscription(JointTrajectory, TOPICS["plan"], self._on_plan, LATCHED)
        self.create_subscription(String, TOPICS["approval"], self._on_approval, COMMAND, callback_group=service_group)
        self.create_service(Trigger, "~/execute", self._on_execute, callback_group=service_group)
        self.create_service(Trigger, "~/stop", self._on_stop, callback_group=service_group)
        self.create_service(Trigger, "~/reset_estop", self._on_reset_estop, callback_group=estop_group)
        self.create_service(Trigger, "~/recover", self._on_recover, callback_group=MutuallyExclusiveCallbackGroup())
        self.create_service(Trigger, "~/resume", self._on_resume, callback_group=service_group)
        self.create_service(Trigger, "~/abort", self._on_abort, callback_group=service_group)
        self.create_timer(1.0 / cfg.state_rate_hz, self._poll, callback_group=poll_group)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics, callback_group=poll_group)
        self._controller.start()
        # The real-time worker owns the gripper (it sequences it with the arm); this publishes its state and
        # relays the operator's manual commands to it.
        self._gripper = GripperInterface(self, self._controller) if self._controller.has_gripper else None
        self.get_logger().info(
            f"controlling {cfg.robot} with the {cfg.driver_name} driver, policy {cfg.control_policy}"
            f"{', dry run' if cfg.dry_run else ''}{', auto-execute' if cfg.auto_execute else ''}"
        )

    # -- parameters ----------------------------------------------------------------------------------------
    def _refuse_change(self, updates: dict[str, Any]) -> str | None:
        return self._controller.policy_change_refusal(updates)

    def _apply(self, cfg: ControllerNodeConfig) -> None:
        self._controller.set_config(cfg)
        self.get_logger().info(f"parameters changed; control_policy {cfg.control_policy}, dry_run {cfg.dry_run}")

    def _log(self, level: str, text: str) -> None:
        # One call site per severity: rclpy refuses a severity change at the same call site.
        logger = self.get_logger()
        if level == "error":
            logger.error(text)
        elif level == "warn":
            logger.warning(text)
        else:
            logger.info(text)

    # -- inputs ----------------------------------------------------------------------------------------------
    def _on_estop(self, msg: Bool) -> None:
        self._controller.estop(bool(msg.data))

    def _on_plan(self, msg: JointTrajectory) -> None:
        if is_withdrawn(msg):
            self._controller.refuse_plan("the planner refused the latest trace (see /spatial_trace/safety)")
            return
        try:
            plan = joint_trajectory_to_plan(msg, self._model, tool=self._controller.tool)
        except ValueError as err:
            self._controller.refuse_plan(str(err))
            self.get_logger().warning(f"plan refused: {err}")
            return
        self.get_logger().info(self._controller.on_plan(plan))

    def _on_approval(self, msg: String) -> None:
        ok, text = self._controller.approve(msg.data)
        self._log("info" if ok else "warn", f"approval: {text}")

    def _on_execute(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self._controller.execute()
        return response

    def _on_stop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self._controller.stop("stop requested on ~/stop")
        return response

    def _on_reset_estop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        note = self._params.config.estop_reset_note
        response.success, response.message = self._controller.reset_estop(note)
        if response.success:  # every release needs its own note
            self.set_parameters([rclpy.parameter.Parameter("estop_reset_note", value="")])
        return response

    def _on_recover(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self._controller.recover(self._params.config.recover_timeout_s)
        return response

    def _on_resume(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self._controller.resume()
        return response

    def _on_abort(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self._controller.abort_task()
        return response

    # -- outputs ---------------------------------------------------------------------------------------------
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _poll(self) -> None:
        updates = self._controller.poll()
        if updates.states:
            self._publish_state(updates.states[-1])
        now = time.monotonic()
        status = updates.status
        if status is None and self._controller.executing and now - self._last_status_s >= STATUS_PROGRESS_PERIOD_S:
            status = self._controller.status
        if status is not None:
            self._status_pub.publish(String(data=status.to_json()))
            self._last_status_s = now
        if updates.result is not None:
            self._publish_result(updates.result)

    def _publish_state(self, event: StateEvent) -> None:
        stamp = self._now_s()
        state = event.state
        # The model's joints first, then any other measured ones (G1: waist, other arm) for their TF.
        joints = JointState(name=[*self._model.joint_names, *state.other_joints],
                            position=[*map(float, state.q), *(q for q, _ in state.other_joints.values())])
        if state.qd is not None:
            joints.velocity = [*map(float, state.qd), *(qd for _, qd in state.other_joints.values())]
        finger = self._gripper.finger_joint(event.gripper) if self._gripper is not None else None
        if finger is not None:  # the whole robot in one message: the fingers' opening as one more joint
            joints.name.append(finger[0])
            joints.position.append(finger[1])
            if joints.velocity:
                joints.velocity.append(float("nan"))  # not measured
        joints.header = make_header(stamp, "")
        self._joint_pub.publish(joints)
        frame = self._model.base_frame
        pose = PoseStamped(pose=transform_to_pose(Transform(state.tcp, frame, self._model.tool_frame)))
        pose.header = make_header(stamp, frame)
        self._tcp_pub.publish(pose)
        if event.sim_objects is not None:
            if self._sim_objects_pub is None:
                self._sim_objects_pub = self.create_publisher(PoseArray, TOPICS["sim_objects"], STATE)
            self._sim_objects_pub.publish(_object_poses(event.sim_objects, frame, stamp))

    def _publish_result(self, result: ExecutionResult) -> None:
        if result.safety_reason is None:
            return
        report = SafetyReport(Verdict.REJECT, (result.safety_reason,))
        status = self._controller.status
        self._safety_pub.publish(safety_report_to_diagnostics(
            report, status.plan_stamp_s, float(result.times_s[-1]) if len(result.times_s) else 0.0,
            int(result.setpoints_sent), "controller", self._now_s(), hardware_id=self._model.name,
        ))

    def _publish_diagnostics(self) -> None:
        c = self._controller
        status = c.status
        cfg = c.config
        if not c.connected or c.estop_engaged or c.robot_fault or status.state == "aborted":
            level = DiagnosticStatus.ERROR
        elif status.state == "stopped":
            level = DiagnosticStatus.WARN
        else:
            level = DiagnosticStatus.OK
        last = c.last_result
        values = {
            "state": status.state, "policy": status.policy, "robot": cfg.robot, "driver": cfg.driver_name,
            "connected": str(c.connected).lower(), "estop_engaged": str(c.estop_engaged).lower(),
            "robot_fault": c.robot_fault, "estop_latch_file": str(c.latch.path),
            "dry_run": str(cfg.dry_run).lower(), "period_s": f"{c.period_s:.4f}", "progress": f"{status.progress:.3f}",
            "last_outcome": last.outcome if last else "",
            "last_missed_periods": str(last.missed_periods) if last else "",
            "last_setpoints_sent": str(last.setpoints_sent) if last else "",
            "last_stop_latency_ms": f"{last.stop_sent_after_s * 1e3:.3f}" if last and last.stop_sent_after_s else "",
        }
        if not c.connected:
            message = f"not connected: {c.connection_error or 'connecting'}"
        elif c.robot_fault:
            message = c.robot_fault
        elif c.estop_engaged:
            message = f"e-stop engaged: {c.latch.reason or 'latched'}"
        else:
            message = status.reason
        diag = DiagnosticArray(status=[DiagnosticStatus(
            level=level, name=DIAGNOSTICS_NAME, message=message, hardware_id=cfg.robot_ip or cfg.robot,
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )])
        diag.header = make_header(self._now_s(), "")
        self._diag_pub.publish(diag)

    def close(self) -> None:
        if self._gripper is not None:
            self._gripper.close()
        self._controller.close()


def _object_poses(poses: Any, frame: str, stamp_s: float) -> PoseArray:
    """The simulated cell's objects (N, 7: x, y, z, qw, qx, qy, qz) as a PoseArray, in the scene's order."""
    msg = PoseArray()
    msg.header = make_header(stamp_s, frame)
    for x, y, z, qw, qx, qy, qz in poses:
        pose = Pose()
        pose.position.x, pose.position.y, pose.position.z = float(x), float(y), float(z)
        pose.orientation.w, pose.orientation.x = float(qw), float(qx)
        pose.orientation.y, pose.orientation.z = float(qy), float(qz)
        msg.poses.append(pose)
    return msg


def main(args: list[str] | None = None) -> int:
    return run_node(ControllerNode, args=args, threads=4)


if __name__ == "__main__":
    sys.exit(main())
