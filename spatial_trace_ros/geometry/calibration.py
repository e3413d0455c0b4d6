"""Camera extrinsics from a calibration YAML: eye-to-hand or eye-in-hand.

Eye-to-hand: the camera is fixed in the cell and the file gives ``base_T_camera``.
Eye-in-hand: the camera rides on the tool and the file gives ``tool_T_camera``; the camera pose in
the base frame is then ``base_T_tool(t) @ tool_T_camera`` with the TCP pose at the frame's capture
time. See ``config/calibration.example.yaml`` for the format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from spatial_trace_ros.errors import CalibrationError, ConfigError
from spatial_trace_ros.geometry.transforms import Transform

MAX_PLAUSIBLE_OFFSET_M = 5.0


class RotationSpec(BaseModel):
    """Exactly one of the accepted rotation encodings."""

    model_config = ConfigDict(extra="forbid")
    quaternion_xyzw: list[float] | None = None
    rotation_matrix: list[list[float]] | None = None
    rpy_rad: list[float] | None = None
    rotvec_rad: list[float] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> RotationSpec:
        given = [k for k, v in self.model_dump().items() if v is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of quaternion_xyzw, rotation_matrix, rpy_rad, rotvec_rad"
                f" (got {given or 'none'})"
            )
        return self


class CalibrationFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["eye_to_hand", "eye_in_hand"]
    parent_frame: str
    camera_frame: str = "camera_color_optical_frame"
    translation_m: list[float]
    rotation: RotationSpec

    @field_validator("translation_m")
    @classmethod
    def _translation(cls, v: list[float]) -> list[float]:
        if len(v) != 3 or not all(np.isfinite(v)):
            raise ValueError(f"must be 3 finite numbers [x, y, z] in metres, got {v}")
        if max(abs(x) for x in v) > MAX_PLAUSIBLE_OFFSET_M:
            raise ValueError(
                f"{v} is more than {MAX_PLAUSIBLE_OFFSET_M} m from the parent frame; "
                "the file must be in metres (millimetres divided by 1000)"
            )
        return v


class Calibration:
    """Where the camera is: fixed (eye-to-hand) or on the tool (eye-in-hand)."""

    def __init__(self, mode: str, transform: Transform) -> None:
        if mode not in ("eye_to_hand", "eye_in_hand"):
            raise ConfigError(f"unknown calibration mode {mode!r}; available: eye_to_hand, eye_in_hand")
        self.mode = mode
        self.transform = transform  # base_T_camera or tool_T_camera

    @property
    def camera_frame(self) -> str:
        return self.transform.child

    def base_T_camera(self, base_T_tool: Transform | None = None) -> Transform:
        """The camera pose in the base frame; eye-in-hand needs the TCP pose at capture time."""
        if self.mode == "eye_to_hand":
            return self.transform
        if base_T_tool is None:
            raise ConfigError(
                "eye-in-hand calibration needs the TCP pose at the frame's capture time; "
                "is the controller publishing its TCP pose?"
            )
        return base_T_tool @ self.transform

    @classmethod
    def from_dict(cls, data: dict, source: str = "calibration") -> Calibration:
        try:
            spec = CalibrationFile.model_validate(data)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in err.errors()
            )
            raise CalibrationError(f"{source} is invalid: {problems}") from None
        rot = spec.rotation
        parent, child = spec.parent_frame, spec.camera_frame
        t = spec.translation_m
        try:
            if rot.quaternion_xyzw is not None:
                tf = Transform.from_quaternion_xyzw(t, rot.quaternion_xyzw, parent, child)
            elif rot.rotation_matrix is not None:
                tf = Transform.from_rotation_translation(np.array(rot.rotation_matrix), t, parent, child)
            elif rot.rpy_rad is not None:
                tf = Transform.from_rpy(t, rot.rpy_rad, parent, child)
            else:
                tf = Transform.from_rotvec(t, rot.rotvec_rad, parent, child)
        except ConfigError as err:
            raise CalibrationError(f"{source}: {err}") from None
        return cls(spec.mode, tf)


def load_calibration(path: str | Path) -> Calibration:
    """Load and validate a calibration YAML; every problem is reported with the file's name."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(
            f"calibration file {path} not found; copy config/calibration.example.yaml and fill in your "
            "hand-eye calibration"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise CalibrationError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise CalibrationError(f"{path} must hold a mapping (mode, parent_frame, translation_m, rotation)")
    return Calibration.from_dict(data, source=str(path))
