"""Import an easy_handeye2 result (``~/.ros2/easy_handeye2/calibrations/NAME.calib``) as a calibration file.

easy_handeye2 writes YAML with ``parameters`` (``calibration_type``: ``eye_in_hand`` or ``eye_on_base``;
``robot_base_frame``, ``robot_effector_frame``, ``tracking_base_frame`` = the camera frame) and
``transform`` (``translation`` x/y/z, ``rotation`` x/y/z/w): the camera in the effector frame
(eye-in-hand) or in the robot base frame (eye-on-base). Its older releases wrote ``eye_on_hand: bool``
and a flat ``transformation`` (x, y, z, qx, qy, qz, qw); both are read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from spatial_trace_ros.errors import CalibrationError, ConfigError
from spatial_trace_ros.geometry.calibration import Calibration, CalibrationRecord
from spatial_trace_ros.geometry.transforms import Transform


def _number(data: dict[str, Any], key: str, where: str) -> float:
    try:
        return float(data[key])
    except (KeyError, TypeError, ValueError):
        raise CalibrationError(f"{where}.{key} is missing or not a number") from None


def calibration_from_easy_handeye(data: dict[str, Any], source: str = "easy_handeye2 file") -> Calibration:
    """The ``Calibration`` an easy_handeye2 result describes."""
    params = data.get("parameters") if isinstance(data, dict) else None
    if not isinstance(params, dict):
        raise CalibrationError(f"{source} has no 'parameters' mapping: is it an easy_handeye2 .calib file?")
    if "calibration_type" in params:
        kind = params["calibration_type"]
        if kind not in ("eye_in_hand", "eye_on_base"):
            raise CalibrationError(f"{source}: calibration_type {kind!r} is neither eye_in_hand nor eye_on_base")
        eye_in_hand = kind == "eye_in_hand"
    elif "eye_on_hand" in params:
        eye_in_hand = bool(params["eye_on_hand"])
    else:
        raise CalibrationError(f"{source}: parameters name neither calibration_type nor eye_on_hand")
    parent_key = "robot_effector_frame" if eye_in_hand else "robot_base_frame"
    parent, camera = params.get(parent_key), params.get("tracking_base_frame")
    if not parent or not camera:
        raise CalibrationError(f"{source}: parameters.{parent_key} and parameters.tracking_base_frame are needed")
    if isinstance(data.get("transform"), dict):
        tr, rot = data["transform"].get("translation") or {}, data["transform"].get("rotation") or {}
        t = [_number(tr, k, f"{source}: transform.translation") for k in "xyz"]
        q = [_number(rot, k, f"{source}: transform.rotation") for k in "xyzw"]
    elif isinstance(data.get("transformation"), dict):
        flat = data["transformation"]
        t = [_number(flat, k, f"{source}: transformation") for k in ("x", "y", "z")]
        q = [_number(flat, k, f"{source}: transformation") for k in ("qx", "qy", "qz", "qw")]
    else:
        raise CalibrationError(f"{source} has neither 'transform' nor 'transformation'")
    try:
        tf = Transform.from_quaternion_xyzw(t, q, str(parent), str(camera))
    except ConfigError as err:
        raise CalibrationError(f"{source}: {err}") from None
    name = params.get("name") or params.get("namespace") or Path(source).stem
    return Calibration("eye_in_hand" if eye_in_hand else "eye_to_hand", tf,
                       CalibrationRecord(source=f"easy_handeye2 {name}"))


def load_easy_handeye(path: str | Path) -> Calibration:
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"easy_handeye2 file {path} not found (look in ~/.ros2/easy_handeye2/calibrations/)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise CalibrationError(f"{path} is not valid YAML: {err}") from None
    return calibration_from_easy_handeye(data, str(path))
