"""Geometry vocabulary shared by every stage: camera model, rigid transforms, calibration, traces."""

from spatial_trace_ros.geometry.calibration import Calibration, camera_tf, load_calibration, write_calibration
from spatial_trace_ros.geometry.camera_model import (
    CameraIntrinsics,
    DepthSample,
    RgbdFrame,
    deproject,
    deproject_pixels_with_depth,
    project,
    sample_depth,
)
from spatial_trace_ros.geometry.path import (
    arc_length,
    path_length,
    resample_by_count,
    resample_by_spacing,
    smooth,
    spacing,
)
from spatial_trace_ros.geometry.trace import Trace
from spatial_trace_ros.geometry.transforms import Transform

__all__ = [
    "Calibration",
    "CameraIntrinsics",
    "DepthSample",
    "RgbdFrame",
    "Trace",
    "Transform",
    "arc_length",
    "camera_tf",
    "deproject",
    "deproject_pixels_with_depth",
    "load_calibration",
    "path_length",
    "project",
    "resample_by_count",
    "resample_by_spacing",
    "sample_depth",
    "smooth",
    "spacing",
    "write_calibration",
]
