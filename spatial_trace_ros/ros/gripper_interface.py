"""The ROS face of the gripper: its state on ``/joint_states`` and a status topic, and the operator's
manual open/close/activate services.

The gripper itself lives in the controller's real-time worker (``robots.gripper_owner``), its one
owner, which sequences it with the arm; this module only publishes what a ``GripperSource`` reports
(the controller's ``gripper_report``) and relays the services to it (``gripper_command``, which runs
in the worker and answers what the gripper did). It gives

- the finger joint for ``/joint_states`` (``finger_joint``): ``joint_name``, whose position is the
  opening between the fingers [m] (a prismatic "width" joint); the controller node puts it into the
  same message as the arm's joints, so every ``/joint_states`` message has the whole robot;
- at ``rate_hz``, ``status_topic`` and ``/diagnostics`` (diagnostic_msgs/DiagnosticArray): level (OK, WARN while
  not activated or unreachable, ERROR on a fault), a sentence, and the values reachable, width_m,
  object_detected, moving, activated, fault, senses_object, last_command, last_result;

and serves ``~/gripper_open``, ``~/gripper_close`` and ``~/gripper_activate`` (std_srvs/Trigger) on a
callback group of their own, so state keeps flowing and ``~/stop`` is answered while the fingers move
(the node needs a multi-threaded executor).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from std_srvs.srv import Trigger

from spatial_trace_ros.robots.gripper_owner import MANUAL_COMMANDS, GripperReport
from spatial_trace_ros.ros.conversions import make_header
from spatial_trace_ros.ros.qos import STATE

STATUS_NAME = "spatial_trace/gripper"


class GripperSource(Protocol):
    """Where the gripper's state comes from and where the operator's commands go (the controller)."""

    def gripper_report(self) -> GripperReport: ...

    def gripper_command(self, name: str) -> tuple[bool, str]: ...


@dataclass(frozen=True)
class GripperInterfaceSettings:
    """Where the gripper's state goes, and how often."""

    joint_name: str = "gripper_finger_joint"
    status_topic: str = "/spatial_trace/gripper_status"
    rate_hz: float = 10.0


class GripperInterface:
    def __init__(self, node: Node, source: GripperSource, settings: GripperInterfaceSettings | None = None) -> None:
        self.node, self.source = node, source
        self.settings = s = settings or GripperInterfaceSettings()
        self._last_command = self._last_result = ""
        self._lock = threading.Lock()
        self._status_pub = node.create_publisher(DiagnosticArray, s.status_topic, STATE)
        self._diag_pub = node.create_publisher(DiagnosticArray, "/diagnostics", STATE)
        commands = MutuallyExclusiveCallbackGroup()
        for name in MANUAL_COMMANDS:
            node.create_service(Trigger, f"~/gripper_{name}", self._service(name), callback_group=commands)
        self._timer = node.create_timer(1.0 / s.rate_hz, self.publish_state,
                                        callback_group=MutuallyExclusiveCallbackGroup())

    def finger_joint(self, report: GripperReport | None) -> tuple[str, float] | None:
        """(name, opening [m]) of the finger joint for ``/joint_states``; None while the width is unknown."""
        if report is None or report.state is None:
            return None
        return self.settings.joint_name, float(report.state.width_m)

    def _service(self, name: str) -> Callable:
        def handle(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
            response.success, response.message = self.command(name)
            return response

        return handle

    def command(self, name: str) -> tuple[bool, str]:
        """One manual command through the source; (success, what happened), logged and kept for the status."""
        ok, text = self.source.gripper_command(name)
        with self._lock:
            self._last_command, self._last_result = name, text
        # One call site per severity: rclpy refuses a severity change at the same call site.
        if ok:
            self.node.get_logger().info(text)
        else:
            self.node.get_logger().warning(text)
        self.publish_state()
        return ok, text

    def publish_state(self) -> None:
        stamp = self.node.get_clock().now().nanoseconds * 1e-9
        report = self.source.gripper_report()
        state = report.state
        with self._lock:
            last = {"last_command": self._last_command, "last_result": self._last_result}
        if state is None:
            level, values = DiagnosticStatus.WARN, {"reachable": "false"}
        else:
            level = DiagnosticStatus.ERROR if state.fault else (
                DiagnosticStatus.OK if state.activated else DiagnosticStatus.WARN)
            values = {"reachable": "true", "width_m": f"{state.width_m:.4f}",
                      "object_detected": str(state.object_detected).lower(), "moving": str(state.moving).lower(),
                      "activated": str(state.activated).lower(), "fault": state.fault,
                      "senses_object": str(report.senses_object).lower()}
        diag = DiagnosticArray(status=[DiagnosticStatus(
            level=level, name=STATUS_NAME, message=report.message, hardware_id=report.endpoint,
            values=[KeyValue(key=k, value=v) for k, v in {**values, **last}.items()],
        )])
        diag.header = make_header(stamp, "")
        self._status_pub.publish(diag)
        self._diag_pub.publish(diag)

    def close(self) -> None:
        """Stop publishing (the gripper itself is the worker's to release)."""
        self.node.destroy_timer(self._timer)
