"""The whole graph in one process: camera_node, trace_node, planner_node and controller_node (the same
node classes ``ros2 launch`` starts) on one MultiThreadedExecutor, plus any helper nodes.

The simulated demo and tests use it; each node gets its parameters as overrides, exactly as from a
launch file. The controller still drives the robot from its real-time worker process (by design:
see ``robots/worker.py``).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from spatial_trace_ros.ros.dds import use_large_message_profile

STACK_ORDER = ("controller_node", "planner_node", "trace_node", "camera_node")  # the worker starts first


def parameter_overrides(values: dict[str, Any]) -> list[Parameter]:
    return [Parameter(name, value=value) for name, value in values.items()]


class InProcessStack:
    """Start with ``start()``, stop with ``close()`` (also on errors; safe to call twice)."""

    def __init__(self, parameters: dict[str, dict[str, Any]], threads: int = 8, log_level: str = "info") -> None:
        unknown = set(parameters) - set(STACK_ORDER)
        if unknown:
            raise ValueError(f"no node named {sorted(unknown)} in the stack; nodes: {', '.join(STACK_ORDER)}")
        self.parameters = parameters
        self.context = Context()
        self.executor: MultiThreadedExecutor | None = None
        self.nodes: dict[str, Node] = {}
        self._threads = threads
        self._log_level = log_level
        self._spin_thread: threading.Thread | None = None

    def start(self) -> None:
        use_large_message_profile()  # as run_node does: RViz in another process gets every camera frame
        rclpy.init(args=["--ros-args", "--log-level", self._log_level], context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=self._threads, context=self.context)
        try:
            for name in STACK_ORDER:
                self.add_node(self._make(name))
        except BaseException:
            self.close()
            raise
        self._spin_thread = threading.Thread(target=self._spin, name="stack-executor", daemon=True)
        self._spin_thread.start()

    def _make(self, name: str) -> Node:
        kwargs = {"context": self.context,
                  "parameter_overrides": parameter_overrides(self.parameters.get(name, {}))}
        if name == "camera_node":
            from spatial_trace_ros.nodes.camera_node import CameraNode

            return CameraNode(**kwargs)
        if name == "trace_node":
            from spatial_trace_ros.nodes.trace_node import TraceNode

            return TraceNode(**kwargs)
        if name == "planner_node":
            from spatial_trace_ros.nodes.planner_node import PlannerNode

            return PlannerNode(**kwargs)
        from spatial_trace_ros.nodes.controller_node import ControllerNode

        return ControllerNode(**kwargs)

    def add_node(self, node: Node) -> Node:
        """Spin another node (a recorder, an operator client) on the stack's executor."""
        assert self.executor is not None, "start() the stack first"
        self.nodes[node.get_name()] = node
        self.executor.add_node(node)
        return node

    def helper_node(self, name: str) -> Node:
        return self.add_node(Node(name, context=self.context))

    def _spin(self) -> None:
        with contextlib.suppress(Exception):  # the context is shut down under it at close()
            self.executor.spin()

    def close(self) -> None:
        """Stop the nodes (the controller stops the arm and its worker), then the executor and context."""
        for node in reversed(list(self.nodes.values())):
            close = getattr(node, "close", None)
            if callable(close):
                with contextlib.suppress(Exception):
                    close()
        if self.executor is not None:
            self.executor.shutdown(timeout_sec=2.0)
        for node in list(self.nodes.values()):
            with contextlib.suppress(Exception):
                node.destroy_node()
        self.nodes.clear()
        rclpy.try_shutdown(context=self.context)
        if self._spin_thread is not None:
            self._spin_thread.join(timeout=2.0)
            self._spin_thread = None
