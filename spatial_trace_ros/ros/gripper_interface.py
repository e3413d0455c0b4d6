"""The ROS face of a ``Gripper``: its state on ``/joint_states`` and a status topic, and manual
open/close/activate services for the operator.

Given a node and a connected ``Gripper``, this publishes at ``rate_hz``

- ``/joint_states`` (sensor_msgs/JointState): one finger joint, ``joint_name``, whose position is the
  opening between the fingers [m] (a prismatic "width" joint; the velocity is left empty);
- ``status_topic`` and ``/diagnostics`` (diagnostic_msgs/DiagnosticArray): level (OK, WARN while
  not activated or unreachable, ERROR on a fault), a sentence, and the values width_m,
  object_detected, moving, activated, fault, last_command, last_result;

and serves ``~/gripper_open``, ``~/gripper_close`` and ``~/gripper_activate`` (std_srvs/Trigger),
refused while ``arm_moving()`` is true, each answering what the gripper actually did. Commands run
on their own callback group so state keeps flowing while the fingers move (the node needs a
multi-threaded executor).
"""

from __future__ import annotations

import inspect
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.ros.conversions import make_header
from spatial_trace_ros.ros.qos import STATE
from spatial_trace_ros.tools.gripper import Gripper, GripperError, GripperState, gripper_factory

STATUS_NAME = "spatial_trace/gripper"


@dataclass(frozen=True)
class GripperInterfaceSettings:
    """How the operator's manual commands move the fingers, and where state goes."""

    joint_name: str = "gripper_finger_joint"
    status_topic: str = "/spatial_trace/gripper_status"
    joint_states_topic: str = "/joint_states"
    rate_hz: float = 10.0
    speed_fraction: float = 0.3  # of the gripper's speed range, for manual open/close
    force_fraction: float = 0.3  # of its force range: a firm but gentle grip
    timeout_s: float = 5.0
    reconnect_interval_s: float = 5.0


def describe(state: GripperState, senses_object: bool = True) -> str:
    """One sentence an operator reads: what the fingers are doing or holding."""
    width = f"{state.width_m * 1000:.1f} mm"
    if state.fault:
        return state.fault
    if not state.activated:
        return "not activated (call ~/gripper_activate)"
    if state.moving:
        return f"moving, at {width}"
    if state.object_detected:
        return f"holding an object at {width}"
    return f"at {width}, nothing held" if senses_object else f"at {width} (no object sensor)"


class GripperInterface:
    def __init__(self, node: Node, gripper: Gripper, arm_moving: Callable[[], bool],
                 settings: GripperInterfaceSettings | None = None) -> None:
        self.node, self.gripper, self.arm_moving = node, gripper, arm_moving
        self.settings = s = settings or GripperInterfaceSettings()
        self._last_command = self._last_result = ""
        self._lock = threading.Lock()
        self._connected = False
        self._connect_error = ""
        self._last_connect_s = -float("inf")
        self.connect()
        self._joint_pub = node.create_publisher(JointState, s.joint_states_topic, STATE)
        self._status_pub = node.create_publisher(DiagnosticArray, s.status_topic, STATE)
        self._diag_pub = node.create_publisher(DiagnosticArray, "/diagnostics", STATE)
        commands = MutuallyExclusiveCallbackGroup()
        for name, action in (("open", self._open), ("close", self._close), ("activate", self._activate)):
            node.create_service(Trigger, f"~/gripper_{name}", self._service(name, action), callback_group=commands)
        self._timer = node.create_timer(1.0 / s.rate_hz, self.publish_state,
                                        callback_group=MutuallyExclusiveCallbackGroup())

    def connect(self) -> bool:
        """Connect the gripper (again); a failure is reported on the status topic, not raised."""
        self._last_connect_s = time.monotonic()
        try:
            self.gripper.connect()
        except GripperError as err:
            if str(err) != self._connect_error:  # once per distinct reason, not on every retry
                self.node.get_logger().error(f"gripper not connected: {err}")
            self._connect_error = str(err)
            return False
        if self._connect_error:
            self.node.get_logger().info(f"gripper connected: {self.gripper.endpoint}")
        self._connected, self._connect_error = True, ""
        return True

    # -- commands ------------------------------------------------------------------------------------------
    def _manual_speed_force(self) -> tuple[float, float]:
        (v0, v1), (f0, f1) = self.gripper.speed_range_mps, self.gripper.force_range_n
        return v0 + self.settings.speed_fraction * (v1 - v0), f0 + self.settings.force_fraction * (f1 - f0)

    def _open(self) -> GripperState:
        return self.gripper.open(*self._manual_speed_force(), self.settings.timeout_s)

    def _close(self) -> GripperState:
        return self.gripper.close(*self._manual_speed_force(), self.settings.timeout_s)

    def _activate(self) -> GripperState:
        return self.gripper.activate(self.settings.timeout_s)

    def _service(self, name: str, action: Callable[[], GripperState]) -> Callable:
        def handle(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
            response.success, response.message = self.command(name, action)
            return response

        return handle

    def command(self, name: str, action: Callable[[], GripperState]) -> tuple[bool, str]:
        """Run one manual command unless the arm moves; (success, what happened)."""
        if self.arm_moving():
            outcome = (False, f"gripper {name} refused: the arm is moving; stop it or wait until it is at rest")
        else:
            try:
                state = action()
                verb = {"open": "opened", "close": "closed", "activate": "activated"}[name]
                if name == "close" and self.gripper.senses_object and not state.object_detected:
                    outcome = (True, f"closed on nothing: {describe(state, self.gripper.senses_object)}")
                else:
                    outcome = (True, f"{verb}: {describe(state, self.gripper.senses_object)}")
            except GripperError as err:
                outcome = (False, f"gripper {name} failed: {err}")
        with self._lock:
            self._last_command, self._last_result = name, outcome[1]
        # One call site per severity: rclpy refuses a severity change at the same call site.
        if outcome[0]:
            self.node.get_logger().info(outcome[1])
        else:
            self.node.get_logger().warning(outcome[1])
        self.publish_state()
        return outcome

    # -- state -----------------------------------------------------------------------------------------------
    def publish_state(self) -> None:
        stamp = self.node.get_clock().now().nanoseconds * 1e-9
        if not self._connected and time.monotonic() - self._last_connect_s >= self.settings.reconnect_interval_s:
            self.connect()
        state: GripperState | None = None
        if not self._connected:
            message = self._connect_error
        else:
            try:
                state = self.gripper.read_state()
                message = describe(state, self.gripper.senses_object)
            except GripperError as err:
                message = str(err)
                self._connected = False  # connect() again on a later tick: reopens a dropped link, keeps a live one
        if state is not None:
            joints = JointState(name=[self.settings.joint_name], position=[float(state.width_m)])
            joints.header = make_header(stamp, "")
            self._joint_pub.publish(joints)
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
                      "senses_object": str(self.gripper.senses_object).lower()}
        diag = DiagnosticArray(status=[DiagnosticStatus(
            level=level, name=STATUS_NAME, message=message, hardware_id=self.gripper.endpoint,
            values=[KeyValue(key=k, value=v) for k, v in {**values, **last}.items()],
        )])
        diag.header = make_header(stamp, "")
        self._status_pub.publish(diag)
        self._diag_pub.publish(diag)

    def close(self) -> None:
        """Stop publishing and release the gripper; the fingers stay as they are."""
        self.node.destroy_timer(self._timer)
        self.gripper.disconnect()


def attach_gripper(node: Node, kind: str, options_json: str, robot_ip: str, arm_moving: Callable[[], bool],
                   settings: GripperInterfaceSettings | None = None) -> GripperInterface | None:
    """The controller node's hook: a gripper of ``kind`` ("none": no gripper) built from the options
    (a JSON object; the robot's address goes to factories that take ``host`` unless given), wired to
    ``node``. A gripper that cannot be reached yet is retried, and reported meanwhile."""
    if kind == "none":
        return None
    factory = gripper_factory(kind)
    try:
        options: Any = json.loads(options_json or "{}")
    except json.JSONDecodeError:
        options = None
    if not isinstance(options, dict):
        raise ConfigError(f"gripper_options_json {options_json!r} is not a JSON object; write one like "
                          "{\"port\": 63352}")
    if robot_ip and "host" in inspect.signature(factory).parameters:
        options.setdefault("host", robot_ip)
    try:
        gripper = factory(None, **options)
    except TypeError as err:
        raise ConfigError(f"gripper_options_json does not fit the {kind} gripper ({err}); see docs/tools.md") from None
    except GripperError as err:
        raise ConfigError(f"gripper {kind}: {err}") from None
    return GripperInterface(node, gripper, arm_moving, settings)
