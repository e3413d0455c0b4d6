"""The test acting as operator of a running ``controller_node``: its topics, services and parameters."""

from __future__ import annotations

import json
from collections.abc import Callable

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from spatial_trace_ros.planning.plan import Plan
from spatial_trace_ros.robots.plan_approval import APPROVAL_TOPIC
from spatial_trace_ros.ros.plan_msgs import plan_to_joint_trajectory
from spatial_trace_ros.ros.qos import COMMAND, LATCHED, STATE
from spatial_trace_ros.testing.processes import wait_for
from spatial_trace_ros.testing.ros_harness import RosHarness

NODE = "/controller_node"


class Operator:
    """Subscribes to the node's outputs and publishes / calls what an operator would."""

    def __init__(self, harness: RosHarness) -> None:
        self.h = harness
        self.statuses = harness.collect(String, "/spatial_trace/controller_status", LATCHED)
        self.joint_states = harness.collect(JointState, "/joint_states", STATE)
        self.diagnostics = harness.collect(DiagnosticArray, "/diagnostics", STATE)
        self.plan_pub = harness.publisher(JointTrajectory, "/spatial_trace/plan", LATCHED)
        self.estop_pub = harness.publisher(Bool, "/spatial_trace/estop", COMMAND)
        self.approval_pub = harness.publisher(String, APPROVAL_TOPIC, COMMAND)

    def status(self) -> dict:
        return json.loads(self.statuses[-1].data) if self.statuses else {}

    def wait_status(self, predicate: Callable[[dict], bool], what: str, timeout_s: float = 30.0) -> dict:
        wait_for(lambda: self.statuses and predicate(self.status()), timeout_s, what,
                 on_timeout=lambda: f"last status: {self.status()}")
        return self.status()

    def wait_connected(self, timeout_s: float = 60.0) -> None:
        self.wait_status(lambda s: s["reason"].startswith("connected"), "the node to connect", timeout_s)

    def send_plan(self, plan: Plan) -> None:
        self.plan_pub.publish(plan_to_joint_trajectory(plan))

    def approve(self, plan_id: str) -> dict:
        """Approve ``plan_id`` as an operator would; the controller's status once it answered."""
        self.h.wait_for_subscribers(self.approval_pub)
        n = len(self.statuses)
        self.approval_pub.publish(String(data=plan_id))
        wait_for(lambda: any(json.loads(m.data).get("approved_plan_id") == plan_id
                             or f"approval of {plan_id} refused" in json.loads(m.data)["reason"]
                             for m in self.statuses[n:]), 30.0, f"the controller's answer to approving {plan_id}",
                 on_timeout=lambda: f"last status: {self.status()}")
        return self.status()

    def approve_and_execute(self, plan: Plan) -> Trigger.Response:
        """Approve the held ``plan`` by its id, then call ~/execute."""
        self.wait_status(lambda s: s.get("plan_id") == plan.plan_id, f"plan {plan.plan_id} to be held")
        status = self.approve(plan.plan_id)
        assert status["approved_plan_id"] == plan.plan_id, status
        return self.call("execute")

    def call(self, service: str) -> Trigger.Response:
        return self.h.call(Trigger, f"{NODE}/{service}", Trigger.Request())

    def estop(self, engaged: bool) -> None:
        self.h.wait_for_subscribers(self.estop_pub)
        self.estop_pub.publish(Bool(data=engaged))

    def set_param(self, name: str, value: str) -> object:
        param = Parameter(name=name, value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value))
        request = SetParameters.Request(parameters=[param])
        return self.h.call(SetParameters, f"{NODE}/set_parameters", request).results[0]
