"""Records every topic of the ROS graph into an MCAP bag, like ``ros2 bag record -a``, without rosbag2.

Topics are discovered on a timer; each is subscribed raw (the CDR bytes as they travelled, no
deserialization) with a QoS adapted to its publishers, as rosbag2 does: reliable only if every
publisher is reliable, transient-local only if every publisher is, so latched results recorded late
still arrive and best-effort camera streams still match.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Iterable
from typing import Any

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.ros.bag_writer import McapBagWriter
from spatial_trace_ros.ros.msgdefs import split_type_name

RECORD_DEPTH = 10


def message_class(type_name: str) -> Any:
    """The Python class of ``pkg/msg/Type`` (its package must be installed)."""
    package, name = split_type_name(type_name)
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError):
        raise ConfigError(f"cannot record {type_name}: the Python package {package} is not installed") from None


def adapted_qos(publisher_qos: list[QoSProfile]) -> QoSProfile:
    """A subscription QoS that matches every one of these publishers."""
    reliable = bool(publisher_qos) and all(q.reliability == ReliabilityPolicy.RELIABLE for q in publisher_qos)
    latched = bool(publisher_qos) and all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in publisher_qos)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=RECORD_DEPTH,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


class BagRecorder:
    """Subscribes ``node`` to every topic (but ``exclude``) that has a publisher, writing into ``writer``."""

    def __init__(self, node: Node, writer: McapBagWriter, exclude: Iterable[str] = (),
                 discovery_period_s: float = 0.25) -> None:
        self.node = node
        self.writer = writer
        self.exclude = set(exclude)
        self._lock = threading.Lock()
        self._subscriptions: dict[str, Any] = {}
        self.skipped: dict[str, str] = {}  # topic -> why it is not recorded
        self._record_group = ReentrantCallbackGroup()
        self._closed = False
        self.discover()
        node.create_timer(discovery_period_s, self.discover, callback_group=MutuallyExclusiveCallbackGroup())

    @property
    def topics(self) -> list[str]:
        with self._lock:
            return sorted(self._subscriptions)

    def discover(self) -> None:
        """Subscribe to topics that appeared since the last look."""
        if self._closed:
            return
        for topic, types in self.node.get_topic_names_and_types():
            with self._lock:
                known = topic in self._subscriptions or topic in self.skipped
            if known or topic in self.exclude:
                continue
            if len(types) != 1:
                self.skipped[topic] = f"published with several types {types}"
                continue
            publishers = self.node.get_publishers_info_by_topic(topic)
            if not publishers:
                continue  # only subscribers so far: look again later
            self._subscribe(topic, types[0], adapted_qos([p.qos_profile for p in publishers]))

    def _subscribe(self, topic: str, type_name: str, qos: QoSProfile) -> None:
        try:
            cls = message_class(type_name)
            self.writer.add_topic(topic, type_name)
        except ConfigError as err:
            self.skipped[topic] = str(err)
            self.node.get_logger().warning(f"not recording {topic}: {err}")
            return

        def on_message(data: bytes) -> None:
            self.writer.write(topic, type_name, data, time.time_ns())

        sub = self.node.create_subscription(cls, topic, on_message, qos, raw=True,
                                            callback_group=self._record_group)
        with self._lock:
            self._subscriptions[topic] = sub

    def close(self) -> None:
        """Stop recording (the writer is closed by its owner)."""
        self._closed = True
        with self._lock:
            subs, self._subscriptions = list(self._subscriptions.values()), {}
        for sub in subs:
            self.node.destroy_subscription(sub)
