"""Settings of the G1 arm_sdk driver (``config/g1.yaml``), validated all at once.

The defaults here are the values ``config/g1.yaml`` ships with (a test keeps them equal). Driver
options (node parameters) override single fields of the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.robots.g1.kinematics import LEFT_ARM_CHAIN, RIGHT_ARM_CHAIN, WAIST_LIMITS_RAD
from spatial_trace_ros.robots.g1.motors import ARM_SDK_JOINTS

# The URDF's limits of every joint arm_sdk commands: configured limits may only be tighter.
URDF_LIMITS_RAD: dict[str, tuple[float, float]] = {
    **WAIST_LIMITS_RAD,
    **{j.name: (j.lower_rad, j.upper_rad) for j in LEFT_ARM_CHAIN + RIGHT_ARM_CHAIN},
}


class G1ArmConfig(BaseModel):
    """How the driver talks to the robot and the limits it keeps."""

    model_config = ConfigDict(extra="forbid")

    network_interface: str = Field(
        "", description="Network interface on the robot's network (e.g. eth0, enp3s0); 'lo' for a simulated "
        "robot on this PC; '' leaves it to CYCLONEDDS_URI / Cyclone's defaults")
    dds_domain_id: int = Field(0, ge=0, le=232, description="DDS domain of the robot (the G1 uses 0)")
    rate_hz: float = Field(50.0, ge=1.0, le=1000.0, description="Command rate on rt/arm_sdk [Hz]")
    kp: float = Field(60.0, ge=0.0, le=500.0, description="Joint position stiffness [N m/rad]")
    kd: float = Field(1.5, ge=0.0, le=50.0, description="Joint damping [N m s/rad]")
    max_velocity_radps: float = Field(
        0.5, gt=0.0, le=3.0, description="Fastest any commanded joint position may move [rad/s]")
    weight_ramp_s: float = Field(
        2.0, ge=0.1, le=10.0, description="Time to ramp the arm_sdk weight 0->1 (take over) or 1->0 (release) [s]")
    lowstate_timeout_s: float = Field(
        0.1, gt=0.0, le=5.0, description="rt/lowstate silent for longer than this is a fault [s]")
    connect_timeout_s: float = Field(
        3.0, gt=0.0, le=60.0, description="How long connect waits for the first rt/lowstate [s]")
    check_lowstate_crc: bool = Field(
        True, description="Use only rt/lowstate samples whose crc matches their contents (others are counted "
        "and dropped); false only for firmware that leaves the crc empty")
    limit_tolerance_rad: float = Field(
        0.02, ge=0.0, le=0.2, description="A measured joint this far past its limit is a fault [rad]")
    joint_limits_rad: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: dict(URDF_LIMITS_RAD),
        description="[lower, upper] of every joint arm_sdk commands (waist and both arms) [rad]")

    @model_validator(mode="after")
    def _limits(self) -> G1ArmConfig:
        missing = [n for n in ARM_SDK_JOINTS if n not in self.joint_limits_rad]
        unknown = [n for n in self.joint_limits_rad if n not in URDF_LIMITS_RAD]
        if missing or unknown:
            raise ValueError(
                f"joint_limits_rad must name exactly the arm_sdk joints; missing {missing}, unknown {unknown}")
        for name, (lower, upper) in self.joint_limits_rad.items():
            urdf_lower, urdf_upper = URDF_LIMITS_RAD[name]
            if not lower < upper:
                raise ValueError(f"joint_limits_rad.{name}: lower {lower} must be below upper {upper}")
            if lower < urdf_lower - 1e-9 or upper > urdf_upper + 1e-9:
                raise ValueError(
                    f"joint_limits_rad.{name}: [{lower}, {upper}] is wider than the robot's "
                    f"[{urdf_lower}, {urdf_upper}]; configured limits may only be tighter")
        return self


def load_g1_config(path: str | Path | None = None, **overrides: Any) -> G1ArmConfig:
    """The file's settings (or the defaults when ``path`` is None) with ``overrides`` applied."""
    data: dict[str, Any] = {}
    source = "G1 driver options"
    if path:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"G1 config {path} not found; pass the path of config/g1.yaml (or leave it empty)")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path} is not valid YAML: {err}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} must hold a mapping of G1 driver settings")
        data.update(loaded)
        source = str(path)
    unknown = [k for k in overrides if k not in G1ArmConfig.model_fields]
    if unknown:
        raise ConfigError(
            f"unknown G1 driver option(s) {unknown}; available: {', '.join(sorted(G1ArmConfig.model_fields))}")
    data.update(overrides)
    try:
        return G1ArmConfig.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'} = {e.get('input')!r}: {e['msg']}"
            for e in err.errors()
        )
        raise ConfigError(f"{source} is invalid: {problems}") from None
