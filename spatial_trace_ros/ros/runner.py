"""``main()`` for every node: init, spin on a multi-threaded executor, clean shutdown, clear errors."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

from spatial_trace_ros.errors import SpatialTraceError
from spatial_trace_ros.ros.dds import use_large_message_profile


def run_node(make_node: Callable[[], Node], args: list[str] | None = None, threads: int | None = None) -> int:
    """Run one node until Ctrl-C or external shutdown. A configuration error is printed as one line
    (what is wrong and how to fix it) with exit code 2, never a traceback."""
    profile = use_large_message_profile()
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        if profile is not None:
            node.get_logger().info(f"Fast DDS profile for camera-sized messages: {profile}")
        executor = MultiThreadedExecutor(num_threads=threads)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except SpatialTraceError as err:
        logging.getLogger("spatial_trace_ros").error("%s", err)
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if callable(close):
                close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
