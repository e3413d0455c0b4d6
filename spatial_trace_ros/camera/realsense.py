"""A live Intel RealSense camera as a ``FrameSource`` (and, for the registry, the recording player).

The device is picked by serial number (or the first one found), color and depth profiles are checked
against what it offers before streaming starts, and depth is aligned to color. With
``global_time_enabled`` librealsense maps the camera's hardware clock onto the host clock, so device
timestamps can be compared with ``time.time()``; without it they count from the camera's power-up.
"""

from __future__ import annotations

from typing import Any

import pyrealsense2 as rs

from spatial_trace_ros.camera.filters import NO_FILTERS, DepthFilterSettings
from spatial_trace_ros.camera.pipeline_source import COLOR_FRAME_ID, PipelineFrameSource
from spatial_trace_ros.camera.profiles import OfferedProfile, ProfileRequest, choose_profile, offered_profiles
from spatial_trace_ros.camera.recording import RecordingSource
from spatial_trace_ros.errors import CameraError, format_choices

__all__ = ["RealSenseSource", "RecordingSource", "connected_cameras", "find_camera", "resolve_streams"]

NO_CAMERA = (
    "(none: librealsense finds no RealSense camera on this computer; check the USB 3 cable, the udev "
    "rules (99-realsense-libusb.rules) and that no other process, e.g. realsense-ros, holds the camera)"
)


def connected_cameras() -> list[tuple[str, str]]:
    """(serial number, product name) of every RealSense camera librealsense can see now."""
    return [(d.get_info(rs.camera_info.serial_number), d.get_info(rs.camera_info.name))
            for d in rs.context().query_devices()]


def find_camera(serial_number: str) -> Any:
    """The connected ``rs.device`` with ``serial_number`` (any one if empty); ``CameraError`` listing the
    connected cameras otherwise, saying so plainly when there are none."""
    devices = list(rs.context().query_devices())
    if not devices:
        wanted = f" with serial number {serial_number!r}" if serial_number else ""
        raise CameraError(f"no RealSense camera{wanted} is connected; available: {NO_CAMERA}")
    if not serial_number:
        return devices[0]
    for device in devices:
        if device.get_info(rs.camera_info.serial_number) == serial_number:
            return device
    available = [f"{d.get_info(rs.camera_info.serial_number)} ({d.get_info(rs.camera_info.name)})" for d in devices]
    raise CameraError(format_choices("RealSense serial number", serial_number, available))


def resolve_streams(
    device: Any, color_request: ProfileRequest, depth_request: ProfileRequest
) -> tuple[OfferedProfile, OfferedProfile]:
    """The rgb8 color and z16 depth profiles of ``device`` matching the requests (``CameraSettingsError``
    listing what the device offers if one does not)."""
    sensors = device.query_sensors()
    where = f"RealSense {device.get_info(rs.camera_info.name)} {device.get_info(rs.camera_info.serial_number)}"
    color = choose_profile(offered_profiles(sensors, rs.stream.color), color_request, (rs.format.rgb8,),
                           "color_profile", where)
    depth = choose_profile(offered_profiles(sensors, rs.stream.depth), depth_request, (rs.format.z16,),
                           "depth_profile", where)
    return color, depth


def stream_config(serial_number: str, color: OfferedProfile, depth: OfferedProfile) -> Any:
    """An ``rs.config`` that streams exactly these two profiles from this camera."""
    config = rs.config()
    config.enable_device(serial_number)
    for p in (color, depth):
        config.enable_stream(p.stream, p.width, p.height, p.format, p.fps)
    return config


class RealSenseSource(PipelineFrameSource):
    """Aligned RGB-D frames from a connected RealSense camera."""

    def __init__(
        self,
        serial_number: str = "",
        color_profile: str = "",
        depth_profile: str = "",
        filters: DepthFilterSettings = NO_FILTERS,
        timestamp_source: str = "device",
        global_time_enabled: bool = True,
        frame_id: str = COLOR_FRAME_ID,
    ) -> None:
        super().__init__(filters, timestamp_source, frame_id)
        self.wanted_serial = serial_number
        self.global_time_enabled = global_time_enabled
        self._color_request = ProfileRequest.parse(color_profile, "color_profile")
        self._depth_request = ProfileRequest.parse(depth_profile, "depth_profile")

    def describe(self) -> str:
        if self.serial_number:
            return f"RealSense {self.device_name} {self.serial_number}"
        return f"RealSense {self.wanted_serial}" if self.wanted_serial else "RealSense camera"

    def open(self) -> None:
        device = find_camera(self.wanted_serial)
        color, depth = resolve_streams(device, self._color_request, self._depth_request)
        profile = self._start(stream_config(device.get_info(rs.camera_info.serial_number), color, depth))
        for sensor in profile.get_device().query_sensors():
            if sensor.supports(rs.option.global_time_enabled):
                sensor.set_option(rs.option.global_time_enabled, 1.0 if self.global_time_enabled else 0.0)

    def _check_alive(self) -> None:
        if self._device is not None and not self._device.is_connected():
            raise CameraError(f"{self.describe()} was disconnected")
