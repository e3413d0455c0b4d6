"""The demo's settings, and the ROS parameters of each node that follow from them.

The camera, the oracle and the robot driver are told the same world options (robot, scene seed), so
they simulate the same cell: the camera and the oracle share one ``World`` in the demo process, and
the controller's real-time worker process builds an identical one (the arm it drives). The planner
gets the simulated camera's true extrinsics as its calibration file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from spatial_trace_ros.errors import format_choices
from spatial_trace_ros.policies.base import available_policies

DEMO_BACKENDS = ("oracle", "openai", "robotracer", "http")


class DemoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    robot: Literal["ur5", "ur5e"] = Field("ur5e", description="simulated arm")
    seed: int = Field(0, ge=0, description="scene generator seed")
    instructions: tuple[str, ...] = Field((), description="instructions to run; empty: chosen from the scene")
    backend: Literal["oracle", "openai", "robotracer", "http"] = Field(
        "oracle", description="trace model: the simulation oracle, or a real model server")
    backend_url: str = Field("", description="model server address (openai, robotracer, http backends)")
    backend_model: str = Field("", description="model name the openai backend asks for")
    api_key_env: str = Field("", description="environment variable holding the server's bearer token")
    policy: str = Field("servo_stream", description="control policy the controller executes plans with")
    out_dir: Path = Field(Path("demo_out"), description="where the results are written")
    short: bool = Field(False, description="fewer instructions (tests, CI)")
    record: bool = Field(True, description="record every topic into an MCAP bag")
    camera_fps: float = Field(5.0, gt=0.0, le=30.0, description="simulated camera rate [Hz]")
    control_period_s: float = Field(
        0.008, gt=0.0, le=0.1, description="control period of the simulated arm [s] (0.008 = 125 Hz, kind to "
        "small CPUs; the real UR5e runs 0.002)")
    trace_timeout_s: float = Field(60.0, gt=0.0, description="wait for a trace at most [s] (model latency included)")
    stage_timeout_s: float = Field(20.0, gt=0.0, description="wait for each other stage's answer at most [s]")

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, value: str) -> str:
        installed = available_policies()
        if value not in installed:
            raise ValueError(format_choices("control policy", value, list(installed)))
        return value

    @field_validator("instructions")
    @classmethod
    def _non_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not text.strip() for text in value):
            raise ValueError("an instruction is empty; say what the robot should do")
        return tuple(text.strip() for text in value)

    @model_validator(mode="after")
    def _backend_needs_url(self) -> DemoConfig:
        if self.backend != "oracle" and not self.backend_url:
            raise ValueError(f"backend {self.backend!r} needs --backend-url (the model server's address)")
        return self

    # -- what the nodes are told ----------------------------------------------------------------------------
    def world_options(self) -> dict[str, Any]:
        """The options that define the simulated cell; equal options share one ``World``."""
        return {"robot": self.robot, "scene_seed": self.seed}

    @property
    def calibration_path(self) -> Path:
        return self.out_dir / "calibration.yaml"

    def camera_parameters(self) -> dict[str, Any]:
        # The first offscreen render (GL context, shaders) can take seconds on a busy CPU.
        return {"source": "sim", "sim_options_json": json.dumps({**self.world_options(), "fps": self.camera_fps}),
                "read_timeout_s": 10.0}

    def trace_parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = {"backend": self.backend, "qos_reliability": "reliable"}
        if self.backend == "oracle":
            params["backend_options_json"] = json.dumps(self.world_options())
            # Ground truth needs no check against the sensor, and its object-centric points may lie behind
            # what the camera sees (the arm, a bowl's rim), which the default depth check would drop.
            params["depth_check_threshold_m"] = 0.0
        else:
            params.update(base_url=self.backend_url, model=self.backend_model, api_key_env=self.api_key_env)
        return params

    def planner_parameters(self) -> dict[str, Any]:
        return {"robot": self.robot, "calibration_file": str(self.calibration_path.resolve()), "tool": "default"}

    def controller_parameters(self) -> dict[str, Any]:
        """The simulated arm with its gripper (the robot's default tool), in one simulated cell."""
        driver = {**self.world_options(), "period_s": self.control_period_s}
        return {"robot": self.robot, "driver": "sim", "driver_options_json": json.dumps(driver),
                "control_policy": self.policy, "tool": "default", "gripper": "sim",
                "gripper_options_json": json.dumps(self.world_options())}
