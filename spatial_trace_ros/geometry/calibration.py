"""Camera extrinsics from a calibration YAML: eye-to-hand or eye-in-hand.

Eye-to-hand: the camera is fixed in the cell and the file gives ``base_T_camera``.
Eye-in-hand: the camera rides on the tool and the file gives ``tool_T_camera``; the camera pose in
the base frame is then ``base_T_tool(t) @ tool_T_camera`` with the TCP pose at the frame's capture
time. See ``config/calibration.example.yaml`` for the format.

A calibration file is the one place the camera pose lives: the planner reads it, and the node that
publishes the camera on TF asks ``camera_tf`` for the transform. Files written by
``spatial-trace calibrate`` also carry how they were made (``calibrated_at``, ``sample_count``,
``residuals``, ``source``, ``board``); files without those keys load as before.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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
    calibrated_at: str | None = None
    sample_count: int | None = None
    residuals: dict[str, float] | None = None
    source: str | None = None
    board: dict[str, Any] | None = None

    @field_validator("calibrated_at")
    @classmethod
    def _iso_date(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                datetime.datetime.fromisoformat(v)
            except ValueError:
                raise ValueError(f"{v!r} is not an ISO 8601 date (e.g. 2026-12-06T03:00:00+00:00)") from None
        return v

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


@dataclass(frozen=True)
class CalibrationRecord:
    """How a calibration was made; every field is optional (hand-written files have none)."""

    calibrated_at: str | None = None
    sample_count: int | None = None
    residuals: dict[str, float] = field(default_factory=dict)
    source: str | None = None
    # Where the calibration board was (``calibrate verify`` predicts it): its layout and its pose,
    # tool_T_board (eye-to-hand) or base_T_board (eye-in-hand), as parent_frame / translation_m /
    # quaternion_xyzw.
    board: dict[str, Any] = field(default_factory=dict)


class Calibration:
    """Where the camera is: fixed (eye-to-hand) or on the tool (eye-in-hand)."""

    def __init__(self, mode: str, transform: Transform, record: CalibrationRecord | None = None) -> None:
        if mode not in ("eye_to_hand", "eye_in_hand"):
            raise ConfigError(f"unknown calibration mode {mode!r}; available: eye_to_hand, eye_in_hand")
        self.mode = mode
        self.transform = transform  # base_T_camera or tool_T_camera
        self.record = record or CalibrationRecord()

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
        record = CalibrationRecord(spec.calibrated_at, spec.sample_count, dict(spec.residuals or {}), spec.source,
                                   dict(spec.board or {}))
        return cls(spec.mode, tf, record)

    def to_dict(self) -> dict[str, Any]:
        """The file's content: pose as translation and unit quaternion, then the record's fields."""
        tf = self.transform
        out: dict[str, Any] = {
            "mode": self.mode, "parent_frame": tf.parent, "camera_frame": tf.child,
            "translation_m": [round(float(v), 9) for v in tf.translation],
            "rotation": {"quaternion_xyzw": [round(float(v), 9) for v in tf.quaternion_xyzw]},
        }
        r = self.record
        if r.calibrated_at is not None:
            out["calibrated_at"] = r.calibrated_at
        if r.sample_count is not None:
            out["sample_count"] = int(r.sample_count)
        if r.residuals:
            out["residuals"] = {k: round(float(v), 6) for k, v in r.residuals.items()}
        if r.source is not None:
            out["source"] = r.source
        if r.board:
            out["board"] = r.board
        return out


def camera_tf(calibration: Calibration, base_T_tool: Transform | None = None) -> tuple[str, str, Transform]:
    """What to publish on TF for the camera: ``(parent_frame, child_frame, parent_T_child)``.

    Eye-to-hand: the fixed ``base_T_camera`` (publish once on ``/tf_static``); ``base_T_tool`` is not
    needed and ignored. Eye-in-hand: with ``base_T_tool`` (the TCP pose at the time to publish, its
    child the calibration's tool frame) the camera in the base frame, ``base_T_tool @ tool_T_camera``
    (publish on ``/tf`` with that pose's stamp); without it, the fixed ``tool_T_camera`` mount, for a
    TF tree in which the robot's own links (``robot_state_publisher``) already place the tool.
    """
    if calibration.mode == "eye_to_hand" or base_T_tool is None:
        tf = calibration.transform
    else:
        if base_T_tool.child and base_T_tool.child != calibration.transform.parent:
            raise ConfigError(
                f"the TCP pose is {base_T_tool.parent}_T_{base_T_tool.child}, the eye-in-hand calibration hangs the "
                f"camera off {calibration.transform.parent!r}; pass the pose of that frame")
        tf = calibration.base_T_camera(base_T_tool)
    return tf.parent, tf.child, tf


def write_calibration(calibration: Calibration, path: str | Path, comment: str = "") -> Path:
    """Write ``calibration`` as YAML (``comment`` lines first, as ``#`` comments); it loads back equal."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "".join(f"# {line}\n" if line else "#\n" for line in comment.splitlines())
    path.write_text(header + yaml.safe_dump(calibration.to_dict(), sort_keys=False))
    return path


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
