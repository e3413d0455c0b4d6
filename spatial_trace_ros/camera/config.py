"""``camera_node``'s settings as one typed model: ROS parameters, ``config/camera.yaml`` and docs agree.

Topic names and frame ids follow realsense-ros (``/<camera_namespace>/<camera_name>/color/image_raw``,
``<camera_name>_color_optical_frame``), so the stack runs unchanged on either driver.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from spatial_trace_ros.camera.filters import DepthFilterSettings
from spatial_trace_ros.camera.profiles import ProfileRequest
from spatial_trace_ros.camera.realsense import RealSenseSource, RecordingSource
from spatial_trace_ros.camera.source import FrameSource, make_frame_source

_RO = {"read_only": True}


class CameraNodeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Literal["realsense", "replay", "sim"] = Field(
        "realsense", description="where frames come from: a live RealSense camera, a recording file, or the "
        "MuJoCo simulation (sim_options_json)", json_schema_extra=_RO)
    sim_options_json: str = Field(
        "{}", description="sim: the simulated camera's and cell's options as a JSON object, e.g. "
        "{\"robot\": \"ur5e\", \"scene_seed\": 0, \"fps\": 15} (docs/simulation.md)", json_schema_extra=_RO)
    serial_number: str = Field(
        "", description="serial number of the RealSense to open; empty = the first one found", json_schema_extra=_RO)
    color_profile: str = Field(
        "", description="color stream [WIDTHxHEIGHTxFPS], e.g. 1280x720x30; empty = device default / as recorded",
        json_schema_extra=_RO)
    depth_profile: str = Field(
        "", description="depth stream [WIDTHxHEIGHTxFPS], e.g. 848x480x30; empty = device default / as recorded",
        json_schema_extra=_RO)
    global_time_enabled: bool = Field(
        True, description="live camera: map the camera clock onto the host clock (librealsense global time)",
        json_schema_extra=_RO)
    timestamp_source: Literal["device", "system"] = Field(
        "device", description="message stamps: the frame's device/recorded timestamp, or host time at arrival",
        json_schema_extra=_RO)
    recording_path: str = Field(
        "", description="replay: path of the .db3 recording to play", json_schema_extra=_RO)
    playback_real_time: bool = Field(
        True, description="replay: pace frames as recorded (false = as fast as they are processed)",
        json_schema_extra=_RO)
    loop_recording: bool = Field(
        False, description="replay: start again at the end instead of stopping", json_schema_extra=_RO)
    spatial_filter: bool = Field(False, description="apply librealsense's spatial depth filter",
                                 json_schema_extra=_RO)
    temporal_filter: bool = Field(False, description="apply librealsense's temporal depth filter",
                                  json_schema_extra=_RO)
    hole_filling_filter: bool = Field(False, description="fill depth holes (librealsense hole-filling filter)",
                                      json_schema_extra=_RO)
    hole_filling_mode: Literal["fill_from_left", "farthest_from_around", "nearest_from_around"] = Field(
        "farthest_from_around", description="which neighbour fills a depth hole", json_schema_extra=_RO)
    camera_namespace: str = Field("camera", description="first topic namespace, as realsense-ros",
                                  json_schema_extra=_RO)
    camera_name: str = Field("camera", description="second topic namespace and frame id prefix, as realsense-ros",
                             json_schema_extra=_RO)
    qos_reliability: Literal["reliable", "best_effort"] = Field(
        "reliable", description="image QoS: reliable, or best_effort as realsense-ros publishes",
        json_schema_extra=_RO)
    read_timeout_s: float = Field(
        1.0, ge=0.05, le=30.0, description="[s] with no frame for this long the camera counts as lost",
        json_schema_extra=_RO)
    reconnect_backoff_initial_s: float = Field(
        0.25, ge=0.01, le=10.0, description="[s] first wait before reopening a missing camera (doubles each try)",
        json_schema_extra=_RO)
    reconnect_backoff_max_s: float = Field(
        5.0, ge=0.01, le=60.0, description="[s] longest wait between reconnection attempts", json_schema_extra=_RO)
    diagnostics_period_s: float = Field(
        1.0, ge=0.1, le=60.0, description="[s] period of the /diagnostics status", json_schema_extra=_RO)

    @field_validator("color_profile", "depth_profile")
    @classmethod
    def _profile_syntax(cls, value: str) -> str:
        ProfileRequest.parse(value)
        return value

    @field_validator("sim_options_json")
    @classmethod
    def _json_object(cls, value: str) -> str:
        try:
            parsed = json.loads(value or "{}")
        except json.JSONDecodeError as err:
            raise ValueError(f"not JSON ({err}); write an object like {{\"scene_seed\": 0}}") from None
        if not isinstance(parsed, dict):
            raise ValueError("must be a JSON object ({...})")
        return value or "{}"

    @field_validator("camera_namespace", "camera_name")
    @classmethod
    def _name_syntax(cls, value: str) -> str:
        if not all(c.isalnum() or c == "_" for c in value):
            raise ValueError("use letters, digits and underscores only")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CameraNodeConfig:
        if self.source == "replay" and not self.recording_path:
            raise ValueError("source 'replay' needs recording_path (a .db3 file)")
        if self.reconnect_backoff_max_s < self.reconnect_backoff_initial_s:
            raise ValueError("reconnect_backoff_max_s must be >= reconnect_backoff_initial_s")
        return self

    # -- derived names --------------------------------------------------------------------------
    @property
    def color_frame_id(self) -> str:
        """The color optical frame; aligned depth is published in it too."""
        return f"{self.camera_name}_color_optical_frame"

    def topic(self, suffix: str) -> str:
        """'/camera/camera/<suffix>' for the default names."""
        parts = [p for p in (self.camera_namespace, self.camera_name) if p]
        return "/" + "/".join([*parts, suffix])

    def make_source(self) -> FrameSource:
        if self.source == "sim":
            return make_frame_source("sim", **json.loads(self.sim_options_json))
        filters = DepthFilterSettings(self.spatial_filter, self.temporal_filter, self.hole_filling_filter,
                                      self.hole_filling_mode)
        common = dict(color_profile=self.color_profile, depth_profile=self.depth_profile, filters=filters,
                      timestamp_source=self.timestamp_source, frame_id=self.color_frame_id)
        if self.source == "replay":
            return RecordingSource(self.recording_path, self.playback_real_time, self.loop_recording, **common)
        return RealSenseSource(self.serial_number, global_time_enabled=self.global_time_enabled, **common)
