"""What ``spatial-trace ask`` does, stage by stage, against a running stack (launched or ``demo --serve``).

The operator sees the plan's id (a digest of the plan the controller holds) and its expiry, and approves
exactly that id; the controller then executes only that plan (``robots.plan_approval``).
"""

from __future__ import annotations

import textwrap
import threading
import time
from collections.abc import Callable

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from spatial_trace_ros.ros.stack_client import PlanExtent, SafetyVerdict, StackClient

Say = Callable[[str], None]
Confirm = Callable[[str], bool]

EXIT_DONE = 0  # executed and succeeded, or the operator chose not to execute
EXIT_REFUSED = 1  # the trace stage, the safety filter or the controller said no, or the run failed


def _format_m(v: np.ndarray) -> str:
    return "(" + ", ".join(f"{x:.3f}" for x in v) + ")"


def describe_verdict(verdict: SafetyVerdict) -> list[str]:
    lines = [f"safety verdict: {verdict.verdict}" + (f" ({', '.join(verdict.codes)})" if verdict.codes else "")]
    if verdict.detail:
        lines += textwrap.wrap(verdict.detail, width=100, initial_indent="  ", subsequent_indent="  ")
    return lines


def describe_plan(verdict: SafetyVerdict, extent: PlanExtent, now_s: float | None = None) -> str:
    text = (f"plan {verdict.plan_id or '(no id)'}: {verdict.n_waypoints} waypoints, {verdict.duration_s:.2f} s, "
            f"TCP path {extent.length_m:.3f} m within {_format_m(extent.min_m)} .. {_format_m(extent.max_m)} m "
            f"in frame {extent.frame_id!r}")
    if verdict.expires_s is not None and now_s is not None:
        text += f"; expires in {verdict.expires_s - now_s:.0f} s"
    return text


def ask(client: StackClient, instruction: str, execute: bool, confirm: Confirm, say: Say, timeout_s: float,
        discovery_timeout_s: float) -> int:
    """Send ``instruction``, report every stage, execute when told to or confirmed; returns the exit code."""
    client.wait_for_stack(discovery_timeout_s)
    request = client.send(instruction)
    say(f"sent {request.instruction!r}; waiting for the trace ...")
    _, status = client.wait_trace(request, timeout_s)
    if status["state"] != "ok":
        say(f"trace {status['state']}: {status.get('reason', '')}")
        return EXIT_REFUSED
    say(f"trace: {status.get('n_points', 0)} points from {status.get('backend', '?')} "
        f"{status.get('model', '')}".rstrip() + f" in {float(status.get('latency_s', 0.0)):.2f} s")
    _, verdict = client.wait_verdict(request, timeout_s)
    for line in describe_verdict(verdict):
        say(line)
    if not verdict.accepted:
        say("nothing will move.")
        return EXIT_REFUSED
    _, extent = client.wait_waypoints(request, verdict, timeout_s)
    say(describe_plan(verdict, extent, time.time()))
    _, ready = client.wait_controller_ready(request, verdict, timeout_s)
    if ready.get("state") != "waiting_for_execute":
        say(f"the controller did not take the plan: {ready.get('reason', '')}")
        return EXIT_REFUSED
    plan_id = str(ready.get("plan_id") or verdict.plan_id)
    if not execute and not confirm(f"approve plan {plan_id} and execute it on the robot? [y/N] "):
        say("not executed; the plan is discarded when the next one arrives (or call /controller_node/stop).")
        return EXIT_DONE
    ok, message = client.approve(plan_id, timeout_s)
    say(f"approve {plan_id}: {message}")
    if not ok:
        return EXIT_REFUSED
    ok, message = client.execute(timeout_s)
    say(f"execute: {message}")
    if not ok:
        return EXIT_REFUSED
    _, final = client.wait_outcome(request, verdict, verdict.duration_s * 1.5 + timeout_s)
    error = final.get("tracking_error_m")
    error_text = "" if error is None else f" (largest tracking error {float(error) * 1000:.1f} mm)"
    say(f"outcome: {final['state']}: {final.get('reason', '')}{error_text}")
    return EXIT_DONE if final["state"] == "succeeded" else EXIT_REFUSED


def run_ask(instruction: str, execute: bool, confirm: Confirm, say: Say, timeout_s: float,
            discovery_timeout_s: float) -> int:
    """``ask`` with its own ROS context and node, spun on a background thread; everything closed after."""
    context = Context()
    rclpy.init(context=context)
    node = Node("spatial_trace_ask", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    try:
        client = StackClient(node)
        spin.start()
        return ask(client, instruction, execute, confirm, say, timeout_s, discovery_timeout_s)
    finally:
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        if spin.is_alive():
            spin.join(timeout=1.0)
