"""The UR controller against the fake UR (e-Series, 500 Hz) with the real ur_rtde client. Prints JSON.

1. ``servo_500hz``: servo_stream for ``--duration-s`` (default 30 s) at the controller's 500 Hz in the
   real-time worker process: periods, missed periods (work longer than a period), period jitter
   (|interval - 2 ms|) p50 / p99 / max, the worker's and the fake's CPU (% of one core), the largest
   distance of the fake arm's TCP from the planned path. ``servo_500hz_sched_fifo``: the same with the
   worker under SCHED_FIFO (``realtime_priority``), where the system allows it.
2. ``estop_worker`` (in each servo run): ``RealtimeWorker.stop()`` mid-run, repeated: from the request
   to the stop command leaving the worker (``stop_sent_after_s``), and to its arrival at the fake
   (same monotonic clock).
3. ``estop_node``: ``true`` published on /spatial_trace/estop to a running controller_node (its worker
   at ``--realtime-priority``) mid-run,
   repeated: from the node's e-stop callback to the stop command leaving the worker (pipe, wake-up,
   ur_rtde; reported by the node in /diagnostics ``last_stop_latency_ms``), and from the publish call
   to the stop command's arrival at the fake (DDS and the rclpy executor included). Target: within
   one control period (2 ms).
4. ``guard_cost_us`` (in this process, no robot): the run-time guard's full check per setpoint kind
   (servo pose with its IK, joint setpoint, speed command, servo pose with the tool and a held object
   (the task runner's case), plus the measured-state checks every period)
   p50 / p99 in microseconds and as a share of the 2 ms period (target < 10 %), a 40-waypoint moveL path
   (checked once, when sent), and the per-pose IK: the numpy closed form over eight branches against the
   scalar single-pose form the guard uses.
5. ``frozen_controller_{3,10}_periods``: the fake stopped with SIGSTOP (sockets open) mid-run,
   repeated: from the freeze to the run's result (target: ``max_stale_periods`` periods plus the time
   to notice), with the default limit (3) and with 10; runs that stopped as stale before the freeze
   (the fake's own pauses on a loaded machine) are counted.

    .venv/bin/python bench/bench_ur_controller.py [--duration-s 30] [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test"))

from helpers.plans import offset_plan  # noqa: E402
from spatial_trace_ros.planning.safety import SafetyConfig, SetpointGuard  # noqa: E402
from spatial_trace_ros.planning.tool_geometry import HeldEnvelope, ToolGeometry  # noqa: E402
from spatial_trace_ros.policies.tracking import PathTracker  # noqa: E402
from spatial_trace_ros.robots.model import make_robot_model  # noqa: E402
from spatial_trace_ros.robots.worker import RealtimeWorker, StateEvent, WorkerConfig  # noqa: E402
from spatial_trace_ros.testing.fake_ur.client import FakeUrClient, start_fake_ur  # noqa: E402
from spatial_trace_ros.testing.processes import ProcessGroup, ros_test_env, wait_for  # noqa: E402
from spatial_trace_ros.tools.description import default_tool  # noqa: E402

ROBOT = "ur5e"
MODEL = make_robot_model(ROBOT)
POLICY_OPTIONS = {"lookahead_s": 0.1, "gain": 300.0, "goal_tolerance_m": 0.01}
STOP_CODES = {"SERVO_STOP", "SPEED_STOP", "STOPL", "STOPJ"}


def percentile_ms(values: np.ndarray, q: float) -> float:
    return round(float(np.percentile(values, q)) * 1e3, 4) if len(values) else float("nan")


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def square_plan(fake: FakeUrClient, duration_s: float, laps: int):
    side = [(0.06, 0.0, 0.0), (0.06, 0.06, 0.0), (0.0, 0.06, 0.0), (0.0, 0.0, 0.0)]
    return offset_plan(MODEL, np.array(fake.state()["q"]), side * laps, duration_s, spacing_m=0.005)


def run(worker: RealtimeWorker, plan, policy: str = "servo_stream", stop_at: float | None = None) -> tuple:
    """Execute; optionally stop once progress passes ``stop_at``. Returns (result, stop request time)."""
    worker.execute(plan, policy, POLICY_OPTIONS, False)
    stop_request_s = None
    deadline = time.monotonic() + plan.duration_s + 30.0
    while time.monotonic() < deadline:
        for event in worker.events():
            if isinstance(event, StateEvent):
                if stop_at is not None and stop_request_s is None and event.executing and event.progress >= stop_at:
                    stop_request_s = worker.stop("benchmark stop")
            elif event[0] == "result":
                return event[1], stop_request_s
            elif event[0] == "failed":
                raise RuntimeError(event[1]["reason"])
        time.sleep(0.002)
    raise TimeoutError("no result")


def first_stop_after(fake: FakeUrClient, t0: float) -> float | None:
    for t, _, name in fake.commands()["transitions"]:
        if name in STOP_CODES and t >= t0:
            return t
    return None


def bench_servo(fake: FakeUrClient, worker: RealtimeWorker, duration_s: float) -> dict:
    plan = square_plan(fake, duration_s, laps=max(1, round(duration_s / 10)))
    fake.reset_log()
    fake_pid = fake.process.pid
    cpu0, fake_cpu0, wall0 = cpu_seconds(worker.pid), cpu_seconds(fake_pid), time.monotonic()
    result, _ = run(worker, plan)
    wall = time.monotonic() - wall0
    cpu, fake_cpu = cpu_seconds(worker.pid) - cpu0, cpu_seconds(fake_pid) - fake_cpu0
    period = 1.0 / 500.0
    intervals = np.diff(result.period_starts_s)
    jitter = np.abs(intervals - period)
    _, tcp = fake.tcp_log()
    tracker = PathTracker(plan.positions)
    off_path = max(tracker.locate(p)[1] for p in tcp[::10])
    state = fake.state()
    return {
        "outcome": result.outcome,
        "reason": result.reason,
        "planned_s": round(plan.duration_s, 3),
        "periods": result.periods,
        "expected_periods": round(result.times_s[-1] / period) + 1 if len(result.times_s) else 0,
        "missed_periods": result.missed_periods,
        "late_periods_over_1ms": int(np.sum(intervals - period > 1e-3)),
        "jitter_p50_ms": percentile_ms(jitter, 50),
        "jitter_p99_ms": percentile_ms(jitter, 99),
        "jitter_max_ms": round(float(jitter.max()) * 1e3, 3) if len(jitter) else None,
        "setpoints_sent": result.setpoints_sent,
        "worker_cpu_percent": round(100 * cpu / wall, 1),
        "fake_cpu_percent": round(100 * fake_cpu / wall, 1),
        "fake_late_ticks": state["late_ticks"],
        "max_off_path_mm": round(off_path * 1e3, 2),
        "max_tracking_error_mm": round(result.max_tracking_error_m * 1e3, 2),
    }


def bench_estop_worker(fake: FakeUrClient, worker: RealtimeWorker, repeats: int) -> dict:
    sent, arrived = [], []
    for _ in range(repeats):
        plan = offset_plan(MODEL, np.array(fake.state()["q"]), [(0.04, 0.0, 0.0)], 2.0)
        result, t_request = run(worker, plan, stop_at=0.3)
        if result.outcome != "stopped" or t_request is None:
            raise RuntimeError(f"stop run ended {result.outcome}: {result.reason}")
        t_fake = first_stop_after(fake, t_request)
        if t_fake is None:
            raise RuntimeError("no stop command reached the fake")
        sent.append(result.stop_sent_after_s)
        arrived.append(t_fake - t_request)
        fake.wait_until(lambda s: not s["moving"], 5.0, "rest")
    sent_a, arrived_a = np.array(sent), np.array(arrived)
    return {
        "repeats": repeats,
        "request_to_stop_sent_ms_p50": percentile_ms(sent_a, 50),
        "request_to_stop_sent_ms_max": percentile_ms(sent_a, 100),
        "request_to_fake_ms_p50": percentile_ms(arrived_a, 50),
        "request_to_fake_ms_max": percentile_ms(arrived_a, 100),
    }


def bench_estop_node(fake: FakeUrClient, group: ProcessGroup, repeats: int, priority: int) -> dict:
    domain = random.SystemRandom().randint(100, 200)
    os.environ.update(ros_test_env(domain))
    from diagnostic_msgs.msg import DiagnosticArray
    from std_msgs.msg import Bool, String
    from std_srvs.srv import Trigger
    from trajectory_msgs.msg import JointTrajectory

    from spatial_trace_ros.robots.plan_approval import APPROVAL_TOPIC
    from spatial_trace_ros.ros.plan_msgs import plan_to_joint_trajectory
    from spatial_trace_ros.ros.qos import COMMAND, LATCHED, STATE
    from spatial_trace_ros.testing.ros_harness import RosHarness

    params = Path(tempfile.mkdtemp(prefix="bench_ur_")) / "controller.yaml"
    params.write_text(json.dumps({"controller_node": {"ros__parameters": {
        "robot": ROBOT, "robot_ip": fake.host, "driver_options_json": json.dumps({"watchdog_min_hz": 5.0}),
        "realtime_priority": priority}}}))
    group.start_python("controller_node", "spatial_trace_ros.nodes.controller_node",
                       ["--ros-args", "--params-file", str(params)], env=ros_test_env(domain))
    latencies, in_process = [], []
    with RosHarness("bench_ur_estop") as h:
        statuses = h.collect(String, "/spatial_trace/controller_status", LATCHED)
        diagnostics = h.collect(DiagnosticArray, "/diagnostics", STATE)

        def stop_latency_ms(after: int) -> float | None:
            for msg in diagnostics[after:]:
                for st in msg.status:
                    values = {kv.key: kv.value for kv in st.values}
                    if st.name == "spatial_trace/controller" and values.get("last_outcome") == "stopped":
                        return float(values["last_stop_latency_ms"])
            return None

        plan_pub = h.publisher(JointTrajectory, "/spatial_trace/plan", LATCHED)
        estop_pub = h.publisher(Bool, "/spatial_trace/estop", COMMAND)
        approval_pub = h.publisher(String, APPROVAL_TOPIC, COMMAND)

        def status() -> dict:
            return json.loads(statuses[-1].data) if statuses else {}

        h.wait(lambda: status().get("reason", "").startswith("connected"), 60.0, "controller_node to connect")
        h.wait_for_subscribers(estop_pub)
        h.wait_for_subscribers(approval_pub)
        for _ in range(repeats):
            plan = offset_plan(MODEL, np.array(fake.state()["q"]), [(0.04, 0.0, 0.0)], 2.0, stamp_s=time.time())
            plan_pub.publish(plan_to_joint_trajectory(plan))
            h.wait(lambda p=plan: status().get("plan_id") == p.plan_id, 10.0, "the plan")
            approval_pub.publish(String(data=plan.plan_id))  # the operator approves exactly this plan
            h.wait(lambda p=plan: status().get("approved_plan_id") == p.plan_id, 10.0, "the approval")
            if not h.call(Trigger, "/controller_node/execute", Trigger.Request()).success:
                raise RuntimeError(f"execute refused: {status()}")
            h.wait(lambda: status().get("state") == "executing" and status().get("progress", 0) > 0.3, 10.0,
                   "progress")
            seen = len(diagnostics)
            t0 = time.monotonic()
            estop_pub.publish(Bool(data=True))
            h.wait(lambda: status().get("state") == "stopped", 10.0, "the stop")
            t_fake = first_stop_after(fake, t0)
            if t_fake is None:
                raise RuntimeError("no stop command reached the fake")
            latencies.append(t_fake - t0)
            in_process.append(h.wait(lambda after=seen: stop_latency_ms(after), 5.0, "the stop latency") / 1e3)
            estop_pub.publish(Bool(data=False))
            h.wait(lambda: "released" in status().get("reason", ""), 10.0, "the release")
            fake.wait_until(lambda s: not s["moving"], 5.0, "rest")
    lat, inner = np.array(latencies), np.array(in_process)
    return {"repeats": repeats, "realtime_priority": priority, "callback_to_stop_sent_ms_p50": percentile_ms(inner, 50),
            "callback_to_stop_sent_ms_max": percentile_ms(inner, 100),
            "publish_to_fake_ms_p50": percentile_ms(lat, 50), "publish_to_fake_ms_max": percentile_ms(lat, 100),
            "period_ms": 2.0}


def _timed_us(fn, n: int) -> np.ndarray:
    out = np.empty(n)
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out[i] = time.perf_counter() - t
    return out * 1e6


def bench_guard_cost(n: int) -> dict:
    """Every check on a moving arm (a new configuration each call, so no cache helps); the arm swings
    back and forth over 0.06 rad per joint, clear of every limit, so each call pays the full check."""
    config = SafetyConfig()
    guard = SetpointGuard(config, MODEL)
    tool = default_tool(ROBOT)
    with_tool = SetpointGuard(config, MODEL, tool=ToolGeometry(tool, config, MODEL))
    with_tool.held = HeldEnvelope.from_grasp(tool, 0.05, config.table.z_m)  # holding a 7.5 cm object
    q0 = np.array([0.3, -1.4, 1.5, -1.6, -1.5, 0.2])
    k = np.arange(n + 1)
    swing = np.where(k % 600 < 300, k % 600, 600 - k % 600) * 2e-4 + k * 1e-8
    qs = q0 + swing[:, None]
    poses = MODEL.fk_many(qs)
    period = 0.002
    twist = np.array([0.05, 0.0, 0.0, 0.0, 0.0, 0.0])
    kinds = {
        "servo_pose": lambda i: guard.check_pose(poses[i], poses[i + 1], period, qs[i], qs[i]),
        "servo_joints": lambda i: guard.check_joints(qs[i], qs[i + 1], period, qs[i]),
        "speed_tcp": lambda i: guard.check_twist(poses[i], twist, qs[i]),
        "measured_state": lambda i: guard.check_measured(poses[i]) or guard.check_tracking(0.001),
        "servo_pose_with_tool_and_held_object": lambda i: with_tool.check_pose(poses[i], poses[i + 1], period,
                                                                               qs[i], qs[i]),
    }
    for fn in kinds.values():  # every check passes on this motion: the full cost, no early refusal
        assert not any(fn(i) for i in range(0, n, 7)), "the benchmark motion must pass every check"
    out: dict = {"period_ms": period * 1e3}
    for name, fn in kinds.items():
        us = _timed_us(fn, n)
        out[name] = {"p50_us": round(float(np.percentile(us, 50)), 1), "p99_us": round(float(np.percentile(us, 99)), 1),
                     "p50_share_of_period_percent": round(float(np.percentile(us, 50)) / (period * 1e6) * 100, 1)}
    per_period = out["servo_pose"]["p50_us"] + out["measured_state"]["p50_us"]
    out["servo_pose_with_measured_state_share_percent"] = round(per_period / (period * 1e6) * 100, 1)
    per_period = out["servo_pose_with_tool_and_held_object"]["p50_us"] + out["measured_state"]["p50_us"]
    out["with_tool_and_measured_state_share_percent"] = round(per_period / (period * 1e6) * 100, 1)
    path = poses[:41:1]
    out["move_path_40_waypoints_ms"] = round(float(np.median(_timed_us(
        lambda i: guard.check_path(poses[0], path[1:], 0.1, qs[0]), max(5, n // 100)))) / 1e3, 2)
    out["ik_per_pose_us"] = {
        "numpy_eight_branches": round(float(np.median(_timed_us(
            lambda i: MODEL.ik_all_many(poses[i], q6_hint=qs[i, 5:6]), n))), 1),
        "scalar_single_pose": round(float(np.median(_timed_us(lambda i: MODEL._solve_one(poses[i], qs[i, 5]), n))), 1),
        "ik_nearest_total": round(float(np.median(_timed_us(lambda i: MODEL.ik(poses[i + 1], qs[i]), n))), 1),
    }
    return out


def bench_frozen_controller(fake: FakeUrClient, worker: RealtimeWorker, repeats: int) -> dict:
    """SIGSTOP the fake mid-run; the time from the freeze until the run's result reaches this process."""
    delays, reasons, early = [], set(), 0
    for _ in range(repeats):
        plan = offset_plan(MODEL, np.array(fake.state()["q"]), [(0.04, 0.0, 0.0)], 2.0)
        worker.execute(plan, "servo_stream", POLICY_OPTIONS, False)
        frozen_at = None
        deadline = time.monotonic() + 20.0
        result = None
        while result is None and time.monotonic() < deadline:
            for event in worker.events():
                if isinstance(event, StateEvent):
                    if frozen_at is None and event.executing and event.progress >= 0.3:
                        os.kill(fake.process.pid, signal.SIGSTOP)
                        frozen_at = time.monotonic()
                elif event[0] == "result":
                    result = event[1]
                    done_at = time.monotonic()
            time.sleep(0.0005)
        os.kill(fake.process.pid, signal.SIGCONT)
        if result is None:
            raise RuntimeError("no result from a frozen run")
        if frozen_at is None:  # the staleness check fired before the freeze: a false alarm, counted
            early += 1
            fake.wait_until(lambda s: not s["moving"], 10.0, "rest")
            continue
        delays.append(done_at - frozen_at)
        reasons.add(result.reason.split(":")[0])
        fake.wait_until(lambda s: not s["moving"], 10.0, "rest")
    d = np.array(delays) if delays else np.array([np.nan])
    return {"repeats": repeats, "stopped_stale_before_the_freeze": early,
            "freeze_to_result_ms_p50": percentile_ms(d, 50),
            "freeze_to_result_ms_max": percentile_ms(d, 100),
            "freeze_to_result_periods_p50": round(float(np.median(d)) / 0.002, 1), "reasons": sorted(reasons)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration-s", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--realtime-priority", type=int, default=50,
                        help="SCHED_FIFO priority for a second servo run (0: skip it)")
    parser.add_argument("--quick", action="store_true",
                        help="under a minute: 3 s servo run, 2 repeats, no SCHED_FIFO run, no node e-stop")
    args = parser.parse_args()
    if args.quick:
        args.duration_s, args.repeats, args.realtime_priority = 3.0, 2, 0
    out: dict = {"machine": {"cpus": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 2)}}
    out["guard_cost_us"] = bench_guard_cost(500 if args.quick else 5000)
    relaxed = str(Path(tempfile.mkdtemp(prefix="bench_safety_")) / "safety.yaml")
    Path(relaxed).write_text(json.dumps({"runtime": {"max_stale_periods": 25}}))  # JSON is YAML
    with ProcessGroup() as group:
        fake = start_fake_ur(group, ROBOT)
        runs = [("servo_500hz", 0)] + ([("servo_500hz_sched_fifo", args.realtime_priority)]
                                       if args.realtime_priority > 0 else [])
        for name, priority in runs:
            worker = RealtimeWorker(WorkerConfig(robot=ROBOT, driver="ur_rtde", realtime_priority=priority,
                                                 driver_options={"robot_ip": fake.host, "watchdog_min_hz": 5.0},
                                                 safety_file=relaxed))
            worker.start()
            try:
                info = worker.wait_ready(60.0)
                out[name] = {"scheduling": info["scheduling"], **bench_servo(fake, worker, args.duration_s)}
                out[name]["estop_worker"] = bench_estop_worker(fake, worker, args.repeats)
            finally:
                worker.close()
            wait_for(lambda: fake.state()["rtde_clients"] == 0, 10.0, "the worker to disconnect")
        # The frozen controller with the default limit (3 periods) and with 10: the fake is a Python process
        # on a shared machine whose stream pauses by itself, which the default may take for a freeze.
        for periods in (3, 10):
            limits = Path(tempfile.mkdtemp(prefix="bench_safety_")) / "safety.yaml"
            limits.write_text(json.dumps({"runtime": {"max_stale_periods": periods}}))
            worker = RealtimeWorker(WorkerConfig(robot=ROBOT, driver="ur_rtde", safety_file=str(limits),
                                                 driver_options={"robot_ip": fake.host, "watchdog_min_hz": 5.0}))
            worker.start()
            try:
                worker.wait_ready(60.0)
                out[f"frozen_controller_{periods}_periods"] = bench_frozen_controller(fake, worker,
                                                                                      max(args.repeats, 3))
            finally:
                worker.close()
            wait_for(lambda: fake.state()["rtde_clients"] == 0, 10.0, "the worker to disconnect")
        if not args.quick:
            out["estop_node"] = bench_estop_node(fake, group, args.repeats, args.realtime_priority)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
