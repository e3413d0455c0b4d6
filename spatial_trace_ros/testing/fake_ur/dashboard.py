"""The dashboard server's line protocol (port 29999): one command per line, one reply line each.

Replies use the wording ur_rtde's DashboardClient compares against ("Stopped", "Starting program",
"Protective stop releasing", ...) and the formats it parses (a version with four numbers, a serial
number that is a number, "true" for remote control).
"""

from __future__ import annotations

from typing import Protocol

WELCOME = "Connected: Universal Robots Dashboard Server"


class DashboardTarget(Protocol):
    """What the dashboard reads and changes on the fake controller."""

    polyscope_version: str
    serial_number: str
    model_label: str
    safety: str  # "NORMAL", "PROTECTIVE_STOP", "ROBOT_EMERGENCY_STOP"
    robot_mode_name: str
    program_state_name: str  # "PLAYING", "PAUSED", "STOPPED"

    def dashboard_stop(self) -> None: ...

    def dashboard_play(self) -> bool: ...

    def dashboard_pause(self) -> None: ...

    def unlock_protective_stop(self) -> bool: ...


def answer(line: str, target: DashboardTarget) -> tuple[str, bool]:
    """The reply to one command line and whether the server closes the connection afterwards."""
    cmd = line.strip()
    low = cmd.lower()
    fixed = {
        "polyscopeversion": f"URSoftware {target.polyscope_version}",
        "get serial number": target.serial_number,
        "get robot model": target.model_label,
        "is in remote control": "true",
        "robotmode": f"Robotmode: {target.robot_mode_name}",
        "safetymode": f"Safetymode: {target.safety}",
        "safetystatus": f"Safetystatus: {target.safety}",
        "programstate": f"{target.program_state_name} rtde_control",
        "running": f"Program running: {str(target.program_state_name == 'PLAYING').lower()}",
        "get loaded program": "Loaded program: <unnamed>",
        "isprogramsaved": "true <unnamed>",
        "close popup": "closing popup",
        "close safety popup": "closing safety popup",
        "power on": "Powering on",
        "power off": "Powering off",
        "brake release": "Brake releasing",
        "restart safety": "Restarting safety",
        "shutdown": "Shutting down",
    }
    if low in fixed:
        return fixed[low], False
    if low == "quit":
        return "Disconnected", True
    if low == "stop":
        target.dashboard_stop()
        return "Stopped", False
    if low == "play":
        return ("Starting program" if target.dashboard_play() else "Failed to execute: play"), False
    if low == "pause":
        target.dashboard_pause()
        return "Pausing program", False
    if low == "unlock protective stop":
        ok = target.unlock_protective_stop()
        return ("Protective stop releasing" if ok else "Cannot unlock protective stop until 5s after occurrence"), False
    if low.startswith("popup "):
        return "showing popup", False
    if low.startswith("addtolog "):
        return "Added log message", False
    if low.startswith("load "):
        return f"File not found: {cmd[5:]}", False
    return f"could not understand: '{cmd}'", False
