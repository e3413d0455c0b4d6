"""``controller_node``'s parameters, validated together, and what they become: the worker's driver
and safety settings, and the options every control policy receives.

Every driver is built as ``driver_factory(driver)(model, **options)`` with ``options`` =
``driver_options_json`` (a JSON object) plus ``robot_ip`` when that parameter is set, so the UR, G1
and simulated drivers plug in alike. Every policy is built as ``cls(model, **policy_options())``
plus ``period_s`` and ``driver_supports`` from the worker; a policy takes what it needs and ignores
the rest (so a lab's policy should accept ``**options``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from spatial_trace_ros.errors import format_choices
from spatial_trace_ros.planning.safety_config import SafetyConfig, load_safety_config
from spatial_trace_ros.policies.base import available_policies
from spatial_trace_ros.robots.driver import DEFAULT_DRIVER, DRIVERS
from spatial_trace_ros.robots.estop_latch import default_latch_path
from spatial_trace_ros.robots.worker import WorkerConfig
from spatial_trace_ros.tools.description import ToolDescription, resolve_tool

_RO = {"read_only": True}


class ControllerNodeConfig(BaseModel):
    robot: Literal["ur5", "ur5e", "g1_left_arm", "g1_right_arm"] = Field(
        "ur5e", description="robot model the plans are for", json_schema_extra=_RO
    )
    driver: str = Field(
        "", description="robot driver (ur_rtde, g1_arm_sdk, sim); empty = the robot's default", json_schema_extra=_RO
    )
    robot_ip: str = Field("", description="robot controller address, passed to the driver as robot_ip when set",
                          json_schema_extra=_RO)
    driver_options_json: str = Field(
        "{}", description="more driver options as a JSON object, e.g. {\"watchdog_min_hz\": 10}",
        json_schema_extra=_RO,
    )
    control_policy: str = Field(
        "servo_stream", description="control policy plugin (entry point group spatial_trace_ros.control_policies); "
        "changeable while no plan is executing"
    )
    lookahead_s: float = Field(0.1, ge=0.03, le=0.2, description="servo lookahead time [s] (servo_stream)")
    gain: float = Field(300.0, ge=100.0, le=2000.0, description="servo proportional gain (servo_stream)")
    blend_m: float = Field(0.005, ge=0.0, le=0.1, description="blend radius between path waypoints [m] (movel_path)")
    track_gain_per_s: float = Field(4.0, ge=0.1, le=20.0, description="pose error feedback gain [1/s] (speed_track)")
    max_tcp_speed_mps: float = Field(
        0.25, gt=0.0, le=1.0, description="TCP speed limit of the policies [m/s] (never above safety_file's)"
    )
    max_tcp_accel_mps2: float = Field(0.5, gt=0.0, le=5.0, description="TCP acceleration of the policies [m/s^2]")
    goal_tolerance_m: float = Field(
        0.01, ge=0.001, le=0.1, description="a run succeeds when the TCP ends within this of the last waypoint [m]"
    )
    start_tolerance_rad: float = Field(
        0.05, ge=0.001, le=0.5, description="a plan must start within this of the current joints [rad]"
    )
    start_tolerance_m: float = Field(
        0.01, ge=0.001, le=0.1, description="a plan must start within this of the current TCP position [m]"
    )
    plan_max_age_s: float = Field(
        60.0, gt=0.0, le=3600.0, description="refuse to start a plan whose frame was captured longer ago [s]"
    )
    max_clock_skew_s: float = Field(
        0.5, ge=0.0, le=10.0, description="refuse to start a plan whose frame is stamped further ahead of now [s]"
    )
    dry_run: bool = Field(False, description="run policy and guard against the robot's state but send no motion")
    auto_execute: bool = Field(False, description="execute accepted plans made after the node started without "
                               "waiting for an approval and ~/execute")
    safety_file: str = Field(
        "", description="safety limits YAML (config/safety.yaml); empty = the built-in defaults, identical to it",
        json_schema_extra=_RO,
    )
    state_rate_hz: float = Field(50.0, ge=1.0, le=250.0, description="/joint_states and TCP pose rate [Hz]",
                                 json_schema_extra=_RO)
    connect_timeout_s: float = Field(20.0, ge=1.0, le=120.0, description="give up connecting after this [s]",
                                     json_schema_extra=_RO)
    reconnect_interval_s: float = Field(5.0, ge=0.5, le=60.0, description="retry a lost connection every [s]")
    estop_latch_file: str = Field(
        "", description="file that keeps the e-stop latch across restarts; empty = "
        "$ROS_HOME/spatial_trace/estop_<robot>.json (ROS_HOME defaults to ~/.ros)", json_schema_extra=_RO,
    )
    estop_reset_note: str = Field(
        "", description="who releases the e-stop and why (e.g. 'alice: cell cleared'); ~/reset_estop needs it, "
        "logs it and clears it"
    )
    recover_timeout_s: float = Field(
        15.0, ge=6.0, le=120.0, description="longest ~/recover waits for the robot (UR: 5 s protective stop "
        "unlock delay, script upload) [s]", json_schema_extra=_RO,
    )
    tool: str = Field(
        "", description="tool description: empty = none (the flange follows the trace), 'default' = the robot's "
        "config/tool.<robot>_*.yaml, or a YAML path; a plan with tool actions needs one", json_schema_extra=_RO)
    gripper: str = Field(
        "", description="gripper kind driving the tool (tools.gripper.GRIPPERS); empty = the tool's own (none "
        "without a tool), 'none' = no gripper",
        json_schema_extra=_RO)
    gripper_options_json: str = Field(
        "{}", description="gripper options as a JSON object, e.g. {\"model\": \"2f140\"} (host defaults to "
        "robot_ip) or the sim cell's scene_seed", json_schema_extra=_RO)
    realtime_priority: int = Field(
        0, ge=0, le=99, description="SCHED_FIFO priority of the real-time loop process (1-99, needs CAP_SYS_NICE); "
        "0 = normal scheduling", json_schema_extra=_RO,
    )

    @field_validator("gripper")
    @classmethod
    def _known_gripper(cls, value: str) -> str:
        from spatial_trace_ros.tools.gripper import GRIPPERS  # the registry; no gripper module is imported

        if value not in ("", "none") and value not in GRIPPERS:
            raise ValueError(format_choices("gripper", value, ["none", *GRIPPERS]))
        return value

    @field_validator("driver")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if value and value not in DRIVERS:
            raise ValueError(format_choices("driver", value, list(DRIVERS)))
        return value

    @field_validator("driver_options_json", "gripper_options_json")
    @classmethod
    def _json_object(cls, value: str) -> str:
        try:
            parsed = json.loads(value or "{}")
        except json.JSONDecodeError as err:
            raise ValueError(f"driver_options_json is not JSON ({err}); write an object like {{\"key\": 1}}") from None
        if not isinstance(parsed, dict):
            raise ValueError("driver_options_json must be a JSON object ({...})")
        return value or "{}"

    @field_validator("control_policy")
    @classmethod
    def _known_policy(cls, value: str) -> str:
        installed = available_policies()
        if value not in installed:
            raise ValueError(format_choices("control_policy", value, list(installed)))
        return value

    # -- what the parameters become ------------------------------------------------------------------
    @property
    def driver_name(self) -> str:
        return self.driver or DEFAULT_DRIVER[self.robot]

    def driver_options(self) -> dict[str, Any]:
        options = json.loads(self.driver_options_json or "{}")
        if self.robot_ip:
            options["robot_ip"] = self.robot_ip
        return options

    def latch_path(self) -> Path:
        return Path(self.estop_latch_file).expanduser() if self.estop_latch_file else default_latch_path(self.robot)

    def safety(self) -> SafetyConfig:
        return load_safety_config(self.safety_file) if self.safety_file else SafetyConfig()

    def policy_options(self, safety: SafetyConfig) -> dict[str, Any]:
        motion = safety.motion
        return {
            "lookahead_s": self.lookahead_s,
            "gain": self.gain,
            "blend_m": self.blend_m,
            "track_gain_per_s": self.track_gain_per_s,
            "max_tcp_speed_mps": min(self.max_tcp_speed_mps, motion.max_tcp_speed_mps),
            "max_tcp_accel_mps2": min(self.max_tcp_accel_mps2, motion.max_tcp_accel_mps2),
            "max_tool_angular_speed_radps": motion.max_tool_angular_speed_radps,
            "goal_tolerance_m": self.goal_tolerance_m,
        }

    def worker_config(self) -> WorkerConfig:
        return WorkerConfig(
            robot=self.robot, driver=self.driver_name, driver_options=self.driver_options(),
            safety_file=self.safety_file, state_rate_hz=self.state_rate_hz, realtime_priority=self.realtime_priority,
            tool=self.tool, gripper=self.gripper, gripper_options=json.loads(self.gripper_options_json or "{}"),
        )

    def tool_description(self) -> ToolDescription | None:
        return resolve_tool(self.tool, self.robot)
