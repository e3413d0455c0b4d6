"""Safety limits from ``config/safety.yaml``: one typed, validated model shared by the plan-time
filter and the run-time setpoint guard, so both enforce identical numbers.

All positions are in the robot model's base frame (UR: the controller's ``base`` frame, as RTDE).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from spatial_trace_ros.errors import ConfigError

Vec3 = tuple[float, float, float]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkspaceConfig(_Strict):
    """The box the TCP must stay in."""

    min_m: Vec3 = Field((-0.85, -0.85, 0.0), description="lower corner [m] of the TCP box, base frame")
    max_m: Vec3 = Field((0.85, 0.85, 1.0), description="upper corner [m] of the TCP box, base frame")
    clip_to_workspace: bool = Field(
        False, description="move waypoints that leave the box back onto its surface (ADJUSTED) instead of refusing"
    )
    max_clip_m: float = Field(
        0.05, ge=0.0, le=0.5, description="[m] waypoints further outside the box are refused even when clipping"
    )

    @model_validator(mode="after")
    def _ordered(self) -> WorkspaceConfig:
        if not all(lo < hi for lo, hi in zip(self.min_m, self.max_m)):
            raise ValueError(f"workspace min_m {list(self.min_m)} must be below max_m {list(self.max_m)} on every axis")
        return self


class TableConfig(_Strict):
    """A horizontal table plane nothing may go below."""

    enabled: bool = Field(True, description="check the table plane")
    z_m: float = Field(0.0, ge=-2.0, le=2.0, description="[m] height of the table surface in the base frame")
    tcp_clearance_m: float = Field(0.02, ge=0.0, le=0.5, description="[m] the TCP stays at least this far above it")
    check_links: bool = Field(True, description="also keep every link capsule (except the base column) above it")


class BoxZone(_Strict):
    """An axis-aligned box the TCP and the tool must not enter (nor pass through between waypoints)."""

    name: str
    shape: Literal["box"] = "box"
    min_m: Vec3
    max_m: Vec3
    check_links: bool = Field(False, description="keep every arm link out too, not only the TCP and the tool")

    @model_validator(mode="after")
    def _ordered(self) -> BoxZone:
        if not all(lo < hi for lo, hi in zip(self.min_m, self.max_m)):
            raise ValueError(f"keep-out box {self.name!r}: min_m must be below max_m on every axis")
        return self


class CylinderZone(_Strict):
    """A vertical cylinder the TCP and the tool must not enter (e.g. around the robot base, which the
    arm's own links always occupy: ``check_links`` stays off there)."""

    name: str
    shape: Literal["cylinder"] = "cylinder"
    center_m: tuple[float, float] = Field(description="[m] axis position (x, y) in the base frame")
    radius_m: float = Field(gt=0.0, le=5.0)
    z_min_m: float
    z_max_m: float
    check_links: bool = Field(False, description="keep every arm link out too, not only the TCP and the tool")

    @model_validator(mode="after")
    def _ordered(self) -> CylinderZone:
        if not self.z_min_m < self.z_max_m:
            raise ValueError(f"keep-out cylinder {self.name!r}: z_min_m must be below z_max_m")
        return self


KeepOutZone = Annotated[BoxZone | CylinderZone, Field(discriminator="shape")]


class MotionConfig(_Strict):
    max_tcp_speed_mps: float = Field(0.25, gt=0.0, le=2.0, description="[m/s] TCP linear speed ceiling")
    max_tcp_accel_mps2: float = Field(0.5, gt=0.0, le=10.0, description="[m/s^2] TCP acceleration ceiling")
    max_tool_angular_speed_radps: float = Field(1.0, gt=0.0, le=6.0, description="[rad/s] tool rotation ceiling")
    joint_speed_fraction: float = Field(
        0.5, gt=0.0, le=1.0, description="fraction of each joint's rated speed a plan may use"
    )
    max_step_m: float = Field(0.05, gt=0.0, le=0.5, description="[m] largest TCP step between waypoints")
    max_joint_step_rad: float = Field(
        0.3, gt=0.0, le=3.0, description="[rad] largest joint step between waypoints (catches branch flips)"
    )
    max_trace_step_m: float = Field(
        0.2, gt=0.0, le=2.0, description="[m] largest gap between consecutive trace points (catches depth outliers)"
    )


class JointLimitConfig(_Strict):
    margin_rad: float = Field(0.1, ge=0.0, le=0.5, description="[rad] stay this far inside every joint limit")


class SingularityConfig(_Strict):
    """Jacobian condition number thresholds (MoveIt Servo defaults)."""

    slow_down_condition: float = Field(17.0, ge=1.0, description="slow down from this condition number")
    stop_condition: float = Field(30.0, ge=1.0, description="refuse at this condition number")
    min_speed_scale: float = Field(
        0.2, gt=0.0, le=1.0, description="speed factor just below stop_condition (1.0 at slow_down_condition)"
    )

    @model_validator(mode="after")
    def _ordered(self) -> SingularityConfig:
        if not self.slow_down_condition < self.stop_condition:
            raise ValueError("singularity slow_down_condition must be below stop_condition")
        return self


class SelfCollisionConfig(_Strict):
    enabled: bool = Field(True, description="check link capsules against each other")
    margin_m: float = Field(0.005, ge=0.0, le=0.1, description="[m] extra clearance between link capsules")


class FreshnessConfig(_Strict):
    max_frame_age_s: float = Field(
        15.0, gt=0.0, le=600.0, description="[s] camera frame older than this at plan time is refused"
    )
    max_trace_age_s: float = Field(
        5.0, gt=0.0, le=600.0, description="[s] trace made longer ago than this is refused (its message's pose "
        "stamps; the frame's capture stamp when those are missing)"
    )
    max_clock_skew_s: float = Field(
        0.5, ge=0.0, le=10.0, description="[s] a frame or trace stamped further ahead of now is refused (CLOCK_SKEW)"
    )


class TraceQualityConfig(_Strict):
    min_points: int = Field(2, ge=2, le=1000, description="fewest valid trace points")
    min_depth_valid_fraction: float = Field(
        0.7, ge=0.0, le=1.0, description="fraction of trace points that must have valid depth"
    )
    min_model_agreement: float = Field(
        0.5, ge=0.0, le=1.0, description="agreement between samples (when several were drawn) below this is refused"
    )


class RuntimeGuardConfig(_Strict):
    speed_tolerance: float = Field(
        0.1, ge=0.0, le=0.5, description="run-time allowance over the plan-time speed limits for tracking corrections"
    )
    twist_horizon_s: float = Field(
        0.1, gt=0.0, le=1.0, description="[s] a speed command must keep the TCP safe for this long"
    )
    max_tracking_error_m: float = Field(
        0.03, gt=0.0, le=0.5, description="[m] the measured TCP further than this from the plan's path stops the run"
    )
    max_stale_periods: int = Field(
        3, ge=1, le=50, description="robot state that does not advance (RTDE timestamp, G1 tick) for this many "
        "control periods stops the run"
    )


class SafetyConfig(_Strict):
    """Every limit of the safety filter and setpoint guard (see ``config/safety.yaml``)."""

    workspace: WorkspaceConfig = WorkspaceConfig()
    table: TableConfig = TableConfig()
    keep_out_zones: tuple[KeepOutZone, ...] = (
        CylinderZone(name="robot_base", center_m=(0.0, 0.0), radius_m=0.2, z_min_m=-1.0, z_max_m=1.5),
    )
    motion: MotionConfig = MotionConfig()
    joint_limits: JointLimitConfig = JointLimitConfig()
    singularity: SingularityConfig = SingularityConfig()
    self_collision: SelfCollisionConfig = SelfCollisionConfig()
    freshness: FreshnessConfig = FreshnessConfig()
    trace_quality: TraceQualityConfig = TraceQualityConfig()
    runtime: RuntimeGuardConfig = RuntimeGuardConfig()

    @property
    def workspace_min(self) -> np.ndarray:
        return np.asarray(self.workspace.min_m, float)

    @property
    def workspace_max(self) -> np.ndarray:
        return np.asarray(self.workspace.max_m, float)


def safety_config_from_dict(data: dict, source: str = "safety config") -> SafetyConfig:
    """Validate a mapping; every problem is named with its path in the file."""
    try:
        return SafetyConfig.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in err.errors()
        )
        raise ConfigError(f"{source} is invalid: {problems}") from None


def load_safety_config(path: str | Path) -> SafetyConfig:
    """Load ``config/safety.yaml`` (or a lab's copy); missing sections take the defaults."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"safety config {path} not found; copy config/safety.yaml and adapt it to your cell")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of safety sections (workspace, table, motion, ...)")
    return safety_config_from_dict(data, source=str(path))
