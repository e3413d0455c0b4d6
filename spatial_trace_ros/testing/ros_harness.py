"""An rclpy node spinning in a background thread with its own context, for tests and benchmarks.

It subscribes, publishes and calls services on behalf of a test, while the nodes under test run in
other processes (or in the same process on their own executor).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile

from spatial_trace_ros.ros.qos import COMMAND
from spatial_trace_ros.testing.processes import wait_for


class RosHarness:
    def __init__(self, name: str = "test_harness") -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = Node(name, context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()
        self._lock = threading.Lock()

    def _spin(self) -> None:
        # The context is shut down under the executor at teardown; that ends the spin.
        with contextlib.suppress(Exception):
            self.executor.spin()

    def collect(self, msg_type: Any, topic: str, qos: QoSProfile = COMMAND) -> list[Any]:
        """Subscribe and return the live list that received messages are appended to."""
        received: list[Any] = []

        def on_msg(msg: Any) -> None:
            with self._lock:
                received.append(msg)

        self.node.create_subscription(msg_type, topic, on_msg, qos)
        return received

    def publisher(self, msg_type: Any, topic: str, qos: QoSProfile = COMMAND) -> Any:
        return self.node.create_publisher(msg_type, topic, qos)

    def wait_for_subscribers(self, publisher: Any, count: int = 1, timeout_s: float = 10.0) -> None:
        wait_for(lambda: publisher.get_subscription_count() >= count, timeout_s,
                 f"{count} subscriber(s) on {publisher.topic_name}")

    def call(self, srv_type: Any, name: str, request: Any, timeout_s: float = 10.0) -> Any:
        client = self.node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout_s):
                raise TimeoutError(f"service {name} not available after {timeout_s} s")
            future = client.call_async(request)
            wait_for(future.done, timeout_s, f"reply from {name}")
            return future.result()
        finally:
            self.node.destroy_client(client)

    @staticmethod
    def wait(predicate: Callable[[], object], timeout_s: float, what: str) -> object:
        return wait_for(predicate, timeout_s, what)

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=2.0)

    def __enter__(self) -> RosHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
