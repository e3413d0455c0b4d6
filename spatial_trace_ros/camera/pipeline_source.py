"""What a live RealSense and a recording share: a started ``rs.pipeline`` turned into ``RgbdFrame``s.

Each frameset goes through the enabled depth filters, then ``rs.align`` to the color stream, then
becomes an rgb8 image with uint16 depth on the same pixel grid. Three guards keep what comes out honest:

- pairing: a frameset whose depth is more than half a frame period away from its color is not used
  (librealsense's syncer sometimes pairs a color frame with the previous or next depth frame);
- freshness: a frameset repeating the color frame already delivered is skipped, so no frame comes out twice;
- drops: gaps in the color frame counter are counted (``stats.drops``).

Timestamps are the device's (``timestamp_source="device"``: the camera clock, or the recorded stamps
of a recording) or the host's wall clock when the frameset arrived (``"system"``). Device stamps that
jump backwards (a looping recording, a reset device clock) are shifted so published stamps only grow.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import numpy as np
import pyrealsense2 as rs

from spatial_trace_ros.camera.filters import DepthFilterSettings, build_depth_filters
from spatial_trace_ros.camera.frames import color_to_rgb8
from spatial_trace_ros.camera.source import FrameSource, SourceStats
from spatial_trace_ros.errors import CameraError, ConfigError, format_choices
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics, RgbdFrame

TIMESTAMP_SOURCES = ("device", "system")
COLOR_FRAME_ID = "camera_color_optical_frame"
_POLL_S = 0.1  # how often a waiting read() checks whether the device or recording is gone


class PipelineFrameSource(FrameSource):
    """Base of :class:`RealSenseSource` and :class:`RecordingSource`; subclasses build the ``rs.config``."""

    def __init__(
        self, filters: DepthFilterSettings, timestamp_source: str, frame_id: str = COLOR_FRAME_ID
    ) -> None:
        if timestamp_source not in TIMESTAMP_SOURCES:
            raise ConfigError(format_choices("timestamp source", timestamp_source, TIMESTAMP_SOURCES))
        self.stats = SourceStats()
        self.filter_settings = filters
        self.timestamp_source = timestamp_source
        self.frame_id = frame_id
        self.device_name = ""
        self.serial_number = ""
        self.timestamp_domain = ""
        self.unpaired = 0  # framesets skipped because depth and color were not from the same moment
        self._pipeline: Any = None
        self._device: Any = None
        self._align: Any = None
        self._filters: list[Any] = []
        self._intrinsics: CameraIntrinsics | None = None
        self._depth_scale_m = 0.001
        self._color_format = "rgb8"
        self._period_ms = 1000.0 / 30
        self._last_number: int | None = None
        self._last_color_ms: float | None = None
        self._last_raw_stamp_s: float | None = None
        self._stamp_offset_s = 0.0

    # -- subclass interface ---------------------------------------------------------------------
    def describe(self) -> str:
        """A few words naming the device or file, for messages."""
        return "RealSense pipeline"

    def _check_alive(self) -> None:
        """Raise ``CameraError`` (or ``EndOfRecordingError``) if frames will not come any more."""

    def _before_start(self, pipeline: Any, config: Any) -> None:
        """Set up the resolved device before its first frame (e.g. a recording's playback speed)."""

    def _before_wait(self) -> None:
        """Called right before each wait for a frameset (e.g. to let a paused recording play)."""

    # -- FrameSource ----------------------------------------------------------------------------
    @property
    def intrinsics(self) -> CameraIntrinsics:
        if self._intrinsics is None:
            raise CameraError(f"{self.describe()} is not open; call open() first")
        return self._intrinsics

    @property
    def depth_scale_m(self) -> float:
        return self._depth_scale_m

    def read(self, timeout_s: float = 1.0) -> RgbdFrame:
        if self._pipeline is None:
            raise CameraError(f"{self.describe()} is not open; call open() first")
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._check_alive()
                raise CameraError(
                    f"no frames from {self.describe()} for {timeout_s:.1f} s; is it still connected and streaming?"
                )
            self._before_wait()
            try:
                ok, frames = self._pipeline.try_wait_for_frames(max(1, int(1000 * min(remaining, _POLL_S))))
            except RuntimeError as err:
                raise CameraError(f"{self.describe()} stopped delivering frames: {err}") from None
            if not ok:
                self._check_alive()
                continue
            frame = self._to_rgbd(frames, time.time())
            if frame is not None:
                return frame

    def close(self) -> None:
        pipeline, self._pipeline = self._pipeline, None
        self._device = None
        if pipeline is not None:
            with contextlib.suppress(RuntimeError):  # already stopped by librealsense when the device went away
                pipeline.stop()
        if self.stats.state == "streaming":
            self.stats.state = "closed"

    # -- shared machinery -----------------------------------------------------------------------
    def _start(self, config: Any, keep_stamps: bool = False) -> Any:
        """Start a pipeline on ``config`` (closing one already running); read intrinsics, depth scale and
        device identity. ``keep_stamps`` carries the stamp shift over, so a restarted recording's stamps
        keep growing from where the last run left them."""
        self.close()
        pipeline = rs.pipeline()
        try:
            self._before_start(pipeline, config)
            profile = pipeline.start(config)
        except RuntimeError as err:
            raise CameraError(f"cannot start {self.describe()}: {err}") from None
        device = profile.get_device()
        color = profile.get_stream(rs.stream.color).as_video_stream_profile()
        self._intrinsics = CameraIntrinsics.from_realsense(color.get_intrinsics())
        self._color_format = str(color.format()).rsplit(".", 1)[-1]
        self._period_ms = 1000.0 / max(color.fps(), 1)
        self._depth_scale_m = float(device.first_depth_sensor().get_depth_scale())
        self.device_name = _info(device, rs.camera_info.name)
        self.serial_number = _info(device, rs.camera_info.serial_number)
        self._align = rs.align(rs.stream.color)
        self._filters = build_depth_filters(self.filter_settings)
        self._last_number = self._last_color_ms = None
        if not keep_stamps:
            self._last_raw_stamp_s, self._stamp_offset_s = None, 0.0
        self._pipeline, self._device = pipeline, device
        self.stats.state, self.stats.detail = "streaming", f"streaming from {self.describe()}"
        return profile

    def _to_rgbd(self, frames: Any, arrival_s: float) -> RgbdFrame | None:
        color, depth = frames.get_color_frame(), frames.get_depth_frame()
        if not color or not depth:
            self.unpaired += 1
            return None
        number, color_ms = color.get_frame_number(), color.get_timestamp()
        if number == self._last_number and color_ms == self._last_color_ms:
            return None  # the syncer re-sent the color frame already delivered, with another depth
        if abs(depth.get_timestamp() - color_ms) > 0.5 * self._period_ms:
            self.unpaired += 1
            return None
        if self._last_number is not None and number > self._last_number:
            self.stats.drops += number - self._last_number - 1
        self._last_number, self._last_color_ms = number, color_ms
        self.timestamp_domain = str(color.get_frame_timestamp_domain()).rsplit(".", 1)[-1]

        for block in self._filters:
            frames = block.process(frames).as_frameset()
        aligned = self._align.process(frames)
        color, depth = aligned.get_color_frame(), aligned.get_depth_frame()
        width, height = color.get_width(), color.get_height()
        rgb = color_to_rgb8(np.asanyarray(color.get_data()), self._color_format, width, height)
        depth_raw = np.array(depth.get_data(), dtype=np.uint16, copy=True)
        self.stats.frames += 1
        return RgbdFrame(rgb, depth_raw, self.intrinsics, self._depth_scale_m, self._stamp_s(color_ms, arrival_s),
                         self.frame_id)

    def _stamp_s(self, color_ms: float, arrival_s: float) -> float:
        if self.timestamp_source == "system":
            return arrival_s
        raw_s = color_ms / 1000.0
        if self._last_raw_stamp_s is not None and raw_s <= self._last_raw_stamp_s:
            self._stamp_offset_s += self._last_raw_stamp_s - raw_s + self._period_ms / 1000.0
        self._last_raw_stamp_s = raw_s
        return raw_s + self._stamp_offset_s


def _info(device: Any, field: Any) -> str:
    return device.get_info(field) if device.supports(field) else ""
