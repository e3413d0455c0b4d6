"""The operator's side of a running stack: send an instruction, follow it stage by stage, execute it.

Used by ``spatial-trace ask`` and by the simulated demo. It only uses the public interface
(docs/interfaces.md): ``/spatial_trace/instruction``, the latched ``trace_status``, ``safety``,
``waypoints`` and ``controller_status`` topics, the approval topic (the id of the plan the operator
approved) and the controller's ``~/execute`` service, so it works the same against a launched robot
stack and the in-process demo. Every wait has a time limit and
says which stage did not answer.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import Trigger

from spatial_trace_ros.errors import SpatialTraceError
from spatial_trace_ros.robots.plan_approval import APPROVAL_TOPIC
from spatial_trace_ros.ros.conversions import stamp_to_seconds
from spatial_trace_ros.ros.qos import COMMAND, LATCHED
from spatial_trace_ros.ros.safety_msgs import diagnostics_safety_values

TOPICS = {
    "instruction": "/spatial_trace/instruction",
    "trace_status": "/spatial_trace/trace_status",
    "safety": "/spatial_trace/safety",
    "waypoints": "/spatial_trace/waypoints",
    "controller_status": "/spatial_trace/controller_status",
}
EXECUTE_SERVICE = "/controller_node/execute"
STACK_NODES = ("trace_node", "planner_node", "controller_node")
FINAL_TRACE_STATES = ("ok", "refused", "error")
FINAL_RUN_STATES = ("succeeded", "aborted", "stopped")
STAMP_MATCH_S = 1e-3  # plan stamps travel as "%.6f" text and as JSON floats
LATCHED_SETTLE_S = 0.5


class NoStackError(SpatialTraceError):
    """No stack (or not all of it) is running where this process can see it."""


class StageTimeoutError(SpatialTraceError):
    """A stage of the stack did not answer in time; the message names the stage and what to check."""


@dataclass(frozen=True)
class SafetyVerdict:
    """The planner's verdict as published on ``/spatial_trace/safety``."""

    verdict: str
    codes: tuple[str, ...]
    message: str
    plan_stamp_s: float
    duration_s: float
    n_waypoints: int
    source: str
    plan_id: str = ""
    expires_s: float | None = None

    @property
    def accepted(self) -> bool:
        return self.verdict != "REJECT"

    @property
    def detail(self) -> str:
        """The reasons in words (``SafetyReport.summary`` without the leading verdict)."""
        head, sep, text = self.message.partition(": ")
        return text if sep and head == self.verdict else self.message if self.message != self.verdict else ""

    @classmethod
    def from_values(cls, values: dict[str, str]) -> SafetyVerdict:
        return cls(
            verdict=values.get("verdict", ""),
            codes=tuple(c for c in values.get("codes", "").split(",") if c),
            message=values.get("message", ""),
            plan_stamp_s=float(values.get("plan_stamp_s") or 0.0),
            duration_s=float(values.get("duration_s") or 0.0),
            n_waypoints=int(values.get("n_waypoints") or 0),
            source=values.get("source", ""),
            plan_id=values.get("plan_id", ""),
            expires_s=float(values["expires_s"]) if values.get("expires_s") else None,
        )


@dataclass(frozen=True)
class PlanExtent:
    """Where a plan goes: its TCP positions' bounding box and path length (robot base frame)."""

    frame_id: str
    min_m: np.ndarray
    max_m: np.ndarray
    length_m: float
    positions_m: np.ndarray

    @classmethod
    def from_pose_array(cls, msg: PoseArray) -> PlanExtent:
        pts = np.array([[p.position.x, p.position.y, p.position.z] for p in msg.poses], float).reshape(-1, 3)
        length = float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum()) if len(pts) > 1 else 0.0
        lo = pts.min(axis=0) if len(pts) else np.zeros(3)
        hi = pts.max(axis=0) if len(pts) else np.zeros(3)
        return cls(msg.header.frame_id, lo, hi, length, pts)


@dataclass
class Request:
    """One instruction in flight and the marks that separate its messages from older ones."""

    instruction: str
    last_request_id: int
    marks: dict[str, int]


class Inbox:
    """Messages of one topic in arrival order, with a condition to wait on."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.items: list[tuple[float, Any]] = []

    def put(self, item: Any) -> None:
        with self._cond:
            self.items.append((time.monotonic(), item))
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self.items)

    def wait(self, predicate: Callable[[Any], bool], start: int, timeout_s: float) -> tuple[float, Any] | None:
        """The first item from index ``start`` on that satisfies ``predicate``, or None at the deadline."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            index = start
            while True:
                while index < len(self.items):
                    t, item = self.items[index]
                    index += 1
                    if predicate(item):
                        return t, item
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)


def _json(msg: String) -> dict[str, Any] | None:
    try:
        value = json.loads(msg.data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class StackClient:
    """Talks to a stack through ``node`` (which someone else spins)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.inboxes = {name: Inbox() for name in ("trace_status", "safety", "waypoints", "controller_status")}
        node.create_subscription(String, TOPICS["trace_status"], self._on_json("trace_status"), LATCHED)
        node.create_subscription(String, TOPICS["controller_status"], self._on_json("controller_status"), LATCHED)
        node.create_subscription(DiagnosticArray, TOPICS["safety"], self._on_safety, LATCHED)
        node.create_subscription(PoseArray, TOPICS["waypoints"], self.inboxes["waypoints"].put, LATCHED)
        self._instruction_pub = node.create_publisher(String, TOPICS["instruction"], COMMAND)
        self._approval_pub = node.create_publisher(String, APPROVAL_TOPIC, COMMAND)
        self._execute = node.create_client(Trigger, EXECUTE_SERVICE)

    def _on_json(self, name: str) -> Callable[[String], None]:
        def on_msg(msg: String) -> None:
            value = _json(msg)
            if value is not None:
                self.inboxes[name].put(value)

        return on_msg

    def _on_safety(self, msg: DiagnosticArray) -> None:
        values = diagnostics_safety_values(msg)
        if values is not None:
            self.inboxes["safety"].put(SafetyVerdict.from_values(values))

    # -- is a stack there? --------------------------------------------------------------------------------
    def missing_nodes(self, timeout_s: float) -> list[str]:
        """The stack's nodes not (yet) visible after waiting up to ``timeout_s`` for discovery."""
        deadline = time.monotonic() + timeout_s
        while True:
            present = {name for name, _ns in self.node.get_node_names_and_namespaces()}
            missing = [n for n in STACK_NODES if n not in present]
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(0.05)

    def wait_for_stack(self, timeout_s: float) -> None:
        """Raise ``NoStackError`` naming what is missing unless the stack answers within ``timeout_s``."""
        missing = self.missing_nodes(timeout_s)
        if missing:
            raise NoStackError(
                f"no running stack found in ROS_DOMAIN_ID {self._domain()}: {', '.join(missing)} not seen after "
                f"{timeout_s:g} s. Start one with `ros2 launch spatial_trace_ros bringup.launch.xml` on the robot "
                "PC, or `spatial-trace demo --serve` for the simulation, in the same ROS_DOMAIN_ID"
            )
        deadline = time.monotonic() + timeout_s
        while (self._instruction_pub.get_subscription_count() < 1 or self._approval_pub.get_subscription_count() < 1
               or not self._execute.service_is_ready()):
            if time.monotonic() >= deadline:
                raise NoStackError(
                    f"the stack's nodes are visible but {TOPICS['instruction']} or {APPROVAL_TOPIC} has no subscriber "
                    f"or {EXECUTE_SERVICE} is not offered after {timeout_s:g} s; check the nodes' logs"
                )
            time.sleep(0.02)
        # Let the latched topics deliver their last message, so old results are not taken for new ones.
        time.sleep(LATCHED_SETTLE_S)

    def instruction_listeners(self) -> int:
        """Subscriptions matched to our instruction publisher (trace_node, recorders)."""
        return self._instruction_pub.get_subscription_count()

    def _domain(self) -> int:
        return int(self.node.context.get_domain_id())

    # -- one instruction --------------------------------------------------------------------------------------
    def send(self, instruction: str) -> Request:
        text = instruction.strip()
        previous = [item.get("request_id", -1) for _, item in self.inboxes["trace_status"].items]
        request = Request(text, max(previous, default=-1),
                          {name: len(box) for name, box in self.inboxes.items()})
        self._instruction_pub.publish(String(data=text))
        return request

    def wait_trace(self, request: Request, timeout_s: float) -> tuple[float, dict[str, Any]]:
        """(arrival time, the trace stage's final status for ``request``: state ok, refused or error)."""
        found = self.inboxes["trace_status"].wait(
            lambda s: (s.get("state") in FINAL_TRACE_STATES and s.get("instruction") == request.instruction
                       and int(s.get("request_id", -1)) > request.last_request_id),
            request.marks["trace_status"], timeout_s)
        if found is None:
            raise StageTimeoutError(
                f"trace stage: no result for {request.instruction!r} within {timeout_s:g} s; is the camera "
                "publishing and the model server reachable? (see trace_node's log and /diagnostics)"
            )
        return found

    def wait_verdict(self, request: Request, timeout_s: float) -> tuple[float, SafetyVerdict]:
        """(arrival time, the planner's verdict on the trace of ``request``: its first verdict after sending)."""
        found = self.inboxes["safety"].wait(lambda v: v.source == "planner", request.marks["safety"], timeout_s)
        if found is None:
            raise StageTimeoutError(
                f"planner stage: no safety verdict within {timeout_s:g} s of the trace; is planner_node running "
                "and receiving /joint_states? (see its log)"
            )
        return found

    def wait_waypoints(self, request: Request, verdict: SafetyVerdict, timeout_s: float) -> tuple[float, PlanExtent]:
        """(arrival time, the accepted plan's waypoints, matched by the plan's stamp)."""
        found = self.inboxes["waypoints"].wait(
            lambda m: abs(stamp_to_seconds(m.header.stamp) - verdict.plan_stamp_s) < STAMP_MATCH_S,
            request.marks["waypoints"], timeout_s)
        if found is None:
            raise StageTimeoutError(f"planner stage: the plan's waypoints did not arrive within {timeout_s:g} s")
        return found[0], PlanExtent.from_pose_array(found[1])

    def wait_controller_ready(
        self, request: Request, verdict: SafetyVerdict, timeout_s: float,
    ) -> tuple[float, dict[str, Any]]:
        """(arrival time, the controller's status once it holds the plan or has refused it)."""
        def ours(s: dict[str, Any]) -> bool:
            stamp_ok = (s.get("plan_id") == verdict.plan_id if verdict.plan_id
                        else abs(float(s.get("plan_stamp_s", 0.0)) - verdict.plan_stamp_s) < STAMP_MATCH_S)
            refused = s.get("state") == "idle" and str(s.get("reason", "")).startswith("plan refused")
            return (stamp_ok and s.get("state") in ("waiting_for_execute", "executing", *FINAL_RUN_STATES)) or refused

        found = self.inboxes["controller_status"].wait(ours, request.marks["controller_status"], timeout_s)
        if found is None:
            raise StageTimeoutError(
                f"controller stage: controller_node did not take the plan within {timeout_s:g} s; is it running "
                "and connected to the robot? (see /spatial_trace/controller_status)"
            )
        return found

    def approve(self, plan_id: str, timeout_s: float) -> tuple[bool, str]:
        """Approve the held plan ``plan_id`` and wait until the controller confirms it (or refuses)."""
        mark = len(self.inboxes["controller_status"])
        self._approval_pub.publish(String(data=plan_id))
        found = self.inboxes["controller_status"].wait(
            lambda s: (s.get("approved_plan_id") == plan_id
                       or str(s.get("reason", "")).startswith(f"approval of {plan_id} refused")),
            mark, timeout_s)
        if found is None:
            raise StageTimeoutError(
                f"controller stage: no answer to the approval of plan {plan_id} on {APPROVAL_TOPIC} within "
                f"{timeout_s:g} s; is controller_node running?"
            )
        status = found[1]
        if status.get("approved_plan_id") == plan_id:
            return True, str(status.get("reason", ""))
        return False, str(status.get("reason", ""))

    def execute(self, timeout_s: float) -> tuple[bool, str]:
        """Call ``/controller_node/execute``; (success, the controller's message)."""
        if not self._execute.wait_for_service(timeout_sec=timeout_s):
            raise StageTimeoutError(f"{EXECUTE_SERVICE} is not offered; is controller_node running?")
        future = self._execute.call_async(Trigger.Request())
        deadline = time.monotonic() + timeout_s
        while not future.done():
            if time.monotonic() >= deadline:
                raise StageTimeoutError(f"{EXECUTE_SERVICE} did not answer within {timeout_s:g} s")
            time.sleep(0.005)
        response = future.result()
        return bool(response.success), str(response.message)

    def wait_outcome(self, request: Request, verdict: SafetyVerdict, timeout_s: float) -> tuple[float, dict[str, Any]]:
        """(arrival time, the controller's final status for the plan: succeeded, aborted or stopped)."""
        found = self.inboxes["controller_status"].wait(
            lambda s: (s.get("state") in FINAL_RUN_STATES
                       and (s.get("plan_id") == verdict.plan_id if verdict.plan_id
                            else abs(float(s.get("plan_stamp_s", 0.0)) - verdict.plan_stamp_s) < STAMP_MATCH_S)),
            request.marks["controller_status"], timeout_s)
        if found is None:
            raise StageTimeoutError(
                f"controller stage: the run did not finish within {timeout_s:g} s; call /controller_node/stop "
                "if the arm is still moving"
            )
        return found
