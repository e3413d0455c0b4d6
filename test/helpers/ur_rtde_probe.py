"""Drive a (fake) UR controller with the real ur_rtde client and print what happened as JSON.

Runs in its own process because ur_rtde's constructors can block forever holding the GIL; the test
runs it with a timeout. ``python -m helpers.ur_rtde_probe HOST SCENARIO``.
"""

from __future__ import annotations

import json
import os
import sys
import time

import dashboard_client
import numpy as np
import rtde_control
import rtde_receive

Control = rtde_control.RTDEControlInterface
Receive = rtde_receive.RTDEReceiveInterface


def _pose(r: Receive) -> np.ndarray:
    return np.array(r.getActualTCPPose())


def scenario_motions(host: str, c: Control, r: Receive) -> dict:
    """moveL, a servoL stream, a speedL stream and an async moveL path, each stopped cleanly."""
    out: dict = {"start": _pose(r).tolist()}
    target = _pose(r)
    target[2] += 0.03
    out["movel_ok"] = c.moveL(target.tolist(), 0.2, 1.0)
    out["movel_target"] = target.tolist()
    out["after_movel"] = _pose(r).tolist()

    start = _pose(r)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.6:
        period = c.initPeriod()
        p = start.copy()
        p[0] += 0.05 * (time.monotonic() - t0)
        try:
            c.servoL(p.tolist(), 0.5, 0.5, 0.008, 0.1, 300)
        except RuntimeError as err:  # on a busy machine servoL can meet the drop first: it reconnects and fails
            out.update(disconnected_after_s=time.monotonic() - t0, servo_error=str(err))
            break
        c.waitPeriod(period)
    out["servo_stop_ok"] = c.servoStop(2.0)
    out["servo_dx"] = float(_pose(r)[0] - start[0])

    start = _pose(r)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.5:
        period = c.initPeriod()
        c.speedL([0.0, 0.04, 0.0, 0.0, 0.0, 0.0], 0.5, 0.0)
        c.waitPeriod(period)
    out["speed_stop_ok"] = c.speedStop(2.0)
    out["speed_dy"] = float(_pose(r)[1] - start[1])

    start = _pose(r)
    path = []
    for dz in (0.01, 0.02, 0.03):
        p = start.copy()
        p[2] -= dz
        path.append([*p.tolist(), 0.1, 0.5, 0.0])
    out["path_ok"] = c.moveL(path, True)
    progress = set()
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        value = c.getAsyncOperationProgress()
        progress.add(value)
        if value < 0:
            break
        time.sleep(0.005)
    out["path_progress"] = sorted(progress)
    out["path_end"] = _pose(r).tolist()
    out["path_target"] = path[-1][:6]
    return out


def scenario_servo_until_fault(host: str, c: Control, r: Receive) -> dict:
    """Stream servoL for up to 3 s and report how the client sees the fault the test armed."""
    start = _pose(r)
    t0 = time.monotonic()
    out: dict = {"servo_rejected": False}
    while time.monotonic() - t0 < 3.0:
        period = c.initPeriod()
        if not (c.isConnected() and r.isConnected()):
            out["disconnected_after_s"] = time.monotonic() - t0
            break
        if r.isProtectiveStopped() or r.isEmergencyStopped():
            out["stopped_after_s"] = time.monotonic() - t0
            # The control interface reads its own RTDE stream, which may show the script stopping a packet
            # after the receive interface showed the stop bit.
            deadline = time.monotonic() + 1.0
            while c.isProgramRunning() and time.monotonic() < deadline:
                time.sleep(0.002)
            out["servo_rejected"] = not c.servoL(start.tolist(), 0.5, 0.5, 0.008, 0.1, 300)
            break
        p = start.copy()
        p[0] += 0.05 * (time.monotonic() - t0)
        try:
            c.servoL(p.tolist(), 0.5, 0.5, 0.008, 0.1, 300)
        except RuntimeError as err:  # on a busy machine servoL can meet the drop first: it reconnects and fails
            out.update(disconnected_after_s=time.monotonic() - t0, servo_error=str(err))
            break
        c.waitPeriod(period)
    out.update(protective=r.isProtectiveStopped(), emergency=r.isEmergencyStopped(),
               safety_status_bits=r.getSafetyStatusBits(), control_connected=c.isConnected(),
               receive_connected=r.isConnected(), program_running=c.isProgramRunning())
    return out


def scenario_watchdog(host: str, c: Control, r: Receive) -> dict:
    """Kicked, the watchdog keeps the program alive; silent for longer than its period, it stops it."""
    out = {"set_ok": c.setWatchdog(20.0)}
    for _ in range(15):
        c.kickWatchdog()
        time.sleep(0.02)
    out["running_while_kicked"] = c.isProgramRunning()
    time.sleep(0.3)
    out["running_after_silence"] = c.isProgramRunning()
    out["runtime_state"] = r.getRuntimeState()
    return out


def scenario_dashboard(host: str, c: Control, r: Receive) -> dict:
    """The dashboard queries ur_rtde makes, and unlocking a protective stop the test injected."""
    db = dashboard_client.DashboardClient(host)
    db.connect()
    out = {
        "version": db.polyscopeVersion(),
        "remote": db.isInRemoteControl(),
        "serial": db.getSerialNumber(),
        "safety_before": db.safetystatus(),
        "program": db.programState(),
        "robotmode": db.robotmode(),
    }
    deadline = time.monotonic() + 3.0
    while not r.isProtectiveStopped() and time.monotonic() < deadline:
        time.sleep(0.01)
    out["safety_stopped"] = db.safetystatus()
    try:  # a real controller refuses within 5 s of the stop
        db.unlockProtectiveStop()
        out["early_unlock"] = "accepted"
    except Exception as err:  # ur_rtde raises with the controller's answer
        out["early_unlock"] = str(err)
    time.sleep(5.2)
    db.unlockProtectiveStop()
    out["safety_after"] = db.safetystatus()
    db.disconnect()
    return out


def scenario_second_controller(host: str, c: Control, r: Receive) -> dict:
    """A second RTDEControlInterface while the first holds the input registers."""
    try:
        rtde_control.RTDEControlInterface(host)
    except RuntimeError as err:
        return {"second_refused": str(err), "first_running": c.isProgramRunning()}
    return {"second_refused": "", "first_running": c.isProgramRunning()}


def scenario_freedrive(host: str, c: Control, r: Receive) -> dict:
    """The stack's RtdeDriver turns hand-guiding on and off (the raw clients step aside first)."""
    from spatial_trace_ros.robots.model import make_robot_model
    from spatial_trace_ros.robots.ur.driver import RtdeDriver

    c.disconnect()
    r.disconnect()
    driver = RtdeDriver(make_robot_model("ur5"), robot_ip=host)
    driver.connect()
    driver.freedrive(True)
    on_ok = driver.read_state().ok
    driver.freedrive(False)
    out = {"ok_in_freedrive": on_ok, "ok_after": driver.read_state().ok}
    driver.disconnect()
    return out


SCENARIOS = {
    "freedrive": scenario_freedrive,
    "second_controller": scenario_second_controller,
    "dashboard": scenario_dashboard,
    "motions": scenario_motions,
    "servo_until_fault": scenario_servo_until_fault,
    "watchdog": scenario_watchdog,
}


def main() -> None:
    host, name = sys.argv[1], sys.argv[2]
    r = rtde_receive.RTDEReceiveInterface(host)
    c = rtde_control.RTDEControlInterface(host)
    result = SCENARIOS[name](host, c, r)
    print("RESULT " + json.dumps(result), flush=True)
    # Leave without the disconnect handshakes: after a dropped network they would only time out.
    os._exit(0)


if __name__ == "__main__":
    main()
