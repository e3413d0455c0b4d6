"""The G1 arm_sdk path against the fake G1 over loopback Cyclone DDS. Prints one JSON object.

1. ``crc``: microseconds per CRC of a ``LowCmd_`` and a ``LowState_`` (pack + table-driven CRC).
2. ``publish``: commands per second one thread sustains doing what the driver does each period (fill
   the 17 arm_sdk joints and the weight, CRC, ``DataWriter.write``) with the fake G1 subscribed and
   checking every CRC; ``headroom_at_500hz`` is that rate over 500.
3. ``driver_500hz``: the driver's own command thread at 500 Hz for a few seconds: periods, missed
   periods, and what the fake accepted (bad CRCs must be 0).
4. ``tracking_<rate>hz``: one planned 10 cm arc executed by the controller's execution loop
   (servo_stream in joint space) with the driver commanding at 50 and 500 Hz; errors of the measured
   TCP against the plan at the same instant (lag included) and against the path (no lag), and of the
   joints. The fake tracks with a first-order lag of ``--tau-s``.

    .venv/bin/python bench/bench_g1.py [--publish-s 3] [--driver-s 3] [--tau-s 0.03]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np
from cyclonedds.pub import DataWriter
from cyclonedds.topic import Topic

from spatial_trace_ros.geometry.calibration import load_calibration
from spatial_trace_ros.geometry.trace import Trace
from spatial_trace_ros.planning.planner import Planner, PlannerConfig
from spatial_trace_ros.planning.safety import SetpointGuard
from spatial_trace_ros.planning.safety_config import load_safety_config
from spatial_trace_ros.policies.base import load_policy_class
from spatial_trace_ros.robots.driver import driver_factory
from spatial_trace_ros.robots.execution import ExecutionLoop
from spatial_trace_ros.robots.g1 import idl
from spatial_trace_ros.robots.g1.crc import low_cmd_crc, low_state_crc
from spatial_trace_ros.robots.g1.kinematics import head_camera_extrinsic
from spatial_trace_ros.robots.g1.motors import ARM_SDK_JOINTS, ARM_SDK_WEIGHT_SLOT, LEFT_ARM_JOINTS, slots
from spatial_trace_ros.robots.model import make_robot_model
from spatial_trace_ros.testing.fake_g1 import FakeG1Process
from spatial_trace_ros.testing.processes import ProcessGroup, wait_for

REPO = Path(__file__).resolve().parents[1]
MODEL = make_robot_model("g1_left_arm")
READY = dict(zip(LEFT_ARM_JOINTS, (-0.6, 0.3, 0.0, -0.3, 0.0, 0.0, 0.0)))


def bench_crc(n: int = 2000) -> dict:
    cmd, state = idl.LowCmd_(), idl.LowState_()
    t = time.perf_counter()
    for _ in range(n):
        low_cmd_crc(cmd)
    cmd_us = (time.perf_counter() - t) / n * 1e6
    t = time.perf_counter()
    for _ in range(n // 4):
        low_state_crc(state)
    state_us = (time.perf_counter() - t) / (n // 4) * 1e6
    return {"low_cmd_us": round(cmd_us, 1), "low_state_us": round(state_us, 1),
            "cpu_fraction_at_500hz": round(cmd_us * 500 / 1e6, 4)}


def bench_publish(domain_id: int, fake: FakeG1Process, seconds: float) -> dict:
    participant = idl.join_domain(domain_id, "lo")
    writer = DataWriter(participant, Topic(participant, idl.ARM_SDK_TOPIC, idl.LowCmd_))
    msg = idl.LowCmd_()
    sdk_slots = slots(ARM_SDK_JOINTS)
    q = np.array(fake.status()["q"])[sdk_slots]
    msg.crc = low_cmd_crc(msg)
    wait_for(lambda: writer.write(msg) or fake.status()["commands"] > 0, 10.0, "the fake to hear commands")
    before = fake.status()["commands"]
    sent = 0
    t0 = time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        for slot, value in zip(sdk_slots, q):  # weight 0: the fake checks but does not move
            m = msg.motor_cmd[slot]
            m.mode, m.q, m.dq, m.tau, m.kp, m.kd = 1, float(value), 0.0, 0.0, 60.0, 1.5
        msg.motor_cmd[ARM_SDK_WEIGHT_SLOT].q = 0.0
        msg.crc = low_cmd_crc(msg)
        writer.write(msg)
        sent += 1
    rate = sent / elapsed
    time.sleep(0.3)
    status = fake.status()
    return {"commands_per_s": round(rate, 1), "headroom_at_500hz": round(rate / 500.0, 2),
            "sent": sent, "accepted_by_fake": status["commands"] - before, "bad_crc": status["bad_crc"]}


def bench_driver(domain_id: int, fake: FakeG1Process, seconds: float) -> dict:
    driver = driver_factory("g1_arm_sdk")(MODEL, network_interface="lo", dds_domain_id=domain_id, rate_hz=500.0,
                                          weight_ramp_s=0.5, lowstate_timeout_s=2.0)
    before = fake.status()["commands"]
    driver.connect()
    driver.prepare_motion()  # take the arm: the command stream runs only while it is held
    periods0, missed0 = driver.stats.periods, driver.stats.missed_periods
    time.sleep(seconds)
    periods, missed = driver.stats.periods - periods0, driver.stats.missed_periods - missed0
    driver.disconnect()
    time.sleep(0.3)
    status = fake.status()
    return {"rate_hz": 500.0, "seconds": seconds, "periods": periods, "missed_periods": missed,
            "accepted_by_fake": status["commands"] - before, "bad_crc": status["bad_crc"]}


def arc_plan(q_now: np.ndarray) -> object:
    planner = Planner(
        MODEL, load_calibration(REPO / "config" / "calibration.g1_head.yaml"),
        PlannerConfig(orientation_policy="keep_current", approach_offset_m=0.0, retreat_offset_m=0.0),
        load_safety_config(REPO / "config" / "safety.g1.yaml"),
    )
    start = MODEL.fk(q_now)[:3, 3]
    s = np.linspace(0.0, 1.0, 12)
    points = start + np.stack([0.05 * s, 0.08 * s, 0.04 * np.sin(np.pi * s)], axis=1)
    cam = head_camera_extrinsic()
    plan, report = planner.plan(Trace(cam.inverse().apply(points), cam.child, stamp_s=time.time()), q_now,
                                now_s=time.time())
    if plan is None:
        raise SystemExit(f"planning the benchmark arc failed: {report.summary()}")
    return plan


def bench_tracking(domain_id: int, rate_hz: float) -> dict:
    driver = driver_factory("g1_arm_sdk")(MODEL, network_interface="lo", dds_domain_id=domain_id, rate_hz=rate_hz,
                                          weight_ramp_s=0.5, lowstate_timeout_s=2.0)
    driver.connect()
    try:
        plan = arc_plan(driver.read_state().q)
        policy = load_policy_class("servo_stream")(MODEL, period_s=driver.period_s, driver_supports=driver.supports)
        guard = SetpointGuard(load_safety_config(REPO / "config" / "safety.g1.yaml"), MODEL)
        joints: list[tuple[float, np.ndarray]] = []

        def on_period(report: object) -> None:
            joints.append((report.t_s, report.state.q.copy()))

        loop = ExecutionLoop(driver, policy, guard, on_period=on_period)
        result = loop.run(plan)
    finally:
        driver.disconnect()
    times, tcp = result.times_s, result.tcp_positions_m
    in_plan = times <= plan.duration_s
    reference = np.array([plan.pose_at(t)[:3, 3] for t in times])
    timed = np.linalg.norm(tcp - reference, axis=1)[in_plan]
    q_err = np.array([np.abs(q - plan.joints_at(t)).max() for t, q in joints if t <= plan.duration_s])
    return {
        "rate_hz": rate_hz, "outcome": result.outcome, "plan_duration_s": round(plan.duration_s, 3),
        "path_deviation_max_mm": round(result.max_tracking_error_m * 1000, 2),
        "timed_error_rms_mm": round(float(np.sqrt(np.mean(timed**2))) * 1000, 2),
        "timed_error_max_mm": round(float(timed.max()) * 1000, 2),
        "joint_error_max_rad": round(float(q_err.max()), 4),
        "final_error_mm": round(float(np.linalg.norm(tcp[-1] - plan.positions[-1])) * 1000, 2),
        "periods": result.periods, "missed_periods": result.missed_periods,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publish-s", type=float, default=3.0, help="publish throughput window [s]")
    parser.add_argument("--driver-s", type=float, default=3.0, help="driver at 500 Hz window [s]")
    parser.add_argument("--tau-s", type=float, default=0.03, help="fake G1 tracking time constant [s]")
    args = parser.parse_args()
    out: dict = {"crc": bench_crc()}
    domains = random.SystemRandom().sample(range(100, 230), 3)
    with tempfile.TemporaryDirectory() as tmp, ProcessGroup(Path(tmp) / "procs") as procs:
        fake = FakeG1Process(procs, Path(tmp), domains[0], q0=READY, tau_s=args.tau_s, log_commands=False)
        out["publish"] = bench_publish(domains[0], fake, args.publish_s)
        out["driver_500hz"] = bench_driver(domains[0], fake, args.driver_s)
        for domain, rate in zip(domains[1:], (50.0, 500.0)):
            FakeG1Process(procs, Path(tmp), domain, q0=READY, tau_s=args.tau_s, log_commands=False)
            out[f"tracking_{rate:.0f}hz"] = bench_tracking(domain, rate)
    out["fake_tau_s"] = args.tau_s
    out["load_average_1min"] = round(os.getloadavg()[0], 2)
    out["cpu_count"] = os.cpu_count()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
