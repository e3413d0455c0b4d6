"""Play a RealSense recording (.db3) through the real pyrealsense2 pipeline, as if it were the camera.

``enable_device_from_file`` gives a playback device with the recorded intrinsics, depth units, serial
number and timestamps, and the frames go through the same filters and ``rs.align`` as a live camera's.
Real-time playback paces frames as recorded; otherwise they come as fast as they are read (and none
are skipped). At the end, ``read`` raises ``EndOfRecordingError`` unless the recording loops.

A looping recording is played again by restarting the pipeline, not by librealsense's
``repeat_playback``: when repeated playback jumps back to the first frame, the pipeline's syncer still
holds the last frames of the previous pass and, under CPU load, drops the first color frame of the next
one. A fresh pipeline per pass plays every frame of every pass. Each pass starts paused and plays from
the first ``read``, so no frameset arrives before its reader waits for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyrealsense2 as rs

from spatial_trace_ros.camera.filters import NO_FILTERS, DepthFilterSettings
from spatial_trace_ros.camera.pipeline_source import COLOR_FRAME_ID, PipelineFrameSource
from spatial_trace_ros.camera.profiles import ProfileRequest, choose_profile, offered_profiles
from spatial_trace_ros.camera.source import EndOfRecordingError
from spatial_trace_ros.errors import CameraError

# A recording holds whatever format it was made with; all of these become rgb8.
RECORDED_COLOR_FORMATS = (rs.format.rgb8, rs.format.bgr8, rs.format.rgba8, rs.format.bgra8, rs.format.yuyv)


class RecordingSource(PipelineFrameSource):
    """Frames from a recording file. Profiles left empty play what was recorded; a profile that is
    set must be in the recording, or ``open`` lists what is."""

    def __init__(
        self,
        path: str | Path,
        real_time: bool = True,
        loop: bool = False,
        color_profile: str = "",
        depth_profile: str = "",
        filters: DepthFilterSettings = NO_FILTERS,
        timestamp_source: str = "device",
        frame_id: str = COLOR_FRAME_ID,
    ) -> None:
        super().__init__(filters, timestamp_source, frame_id)
        self.path = Path(path)
        self.real_time = real_time
        self.loop = loop
        self._color_request = ProfileRequest.parse(color_profile, "color_profile")
        self._depth_request = ProfileRequest.parse(depth_profile, "depth_profile")
        self._playback: Any = None
        self._paused_until_read = False  # the pass waits, paused, for the first read (see _before_start)
        self._profiles: tuple[Any, Any] | None = None  # (color, depth), chosen once in open()
        self.passes = 0  # how many times the recording started playing

    def describe(self) -> str:
        return f"recording {self.path}"

    def open(self) -> None:
        if not self.path.is_file():
            raise CameraError(
                f"recording {self.path} not found; set recording_path to a .db3 file written by "
                "`spatial-trace record` (or librealsense's recorder)"
            )
        self._profiles = self._choose_profiles()
        self.passes = 0
        self._play(keep_stamps=False)

    def _play(self, keep_stamps: bool) -> None:
        """Start one pass through the recording with the profiles ``open`` chose."""
        assert self._profiles is not None
        color, depth = self._profiles
        config = rs.config()
        config.enable_device_from_file(str(self.path), repeat_playback=False)
        config.enable_stream(rs.stream.color, color.width, color.height, color.format, color.fps)
        config.enable_stream(rs.stream.depth, depth.width, depth.height, depth.format, depth.fps)
        profile = self._start(config, keep_stamps)
        self._playback = profile.get_device().as_playback()
        self._paused_until_read = True
        self.passes += 1

    def _before_start(self, pipeline: Any, config: Any) -> None:
        # The speed must be set on the resolved playback device before the pipeline starts it, or the
        # first frames play in real time and are lost to a reader that expected every frame.
        # The pass also starts paused: the pipeline hands framesets over through a queue of one, and
        # until the reader waits on it the first two framesets of a pass can both arrive, the second
        # replacing the first (a lost first frame under CPU load). ``_before_wait`` lets it play.
        playback = config.resolve(pipeline).get_device().as_playback()
        playback.set_real_time(self.real_time)
        playback.pause()

    def _before_wait(self) -> None:
        if self._paused_until_read and self._playback is not None:
            self._paused_until_read = False
            self._playback.resume()

    def close(self) -> None:
        self._playback = None
        super().close()

    def _choose_profiles(self) -> tuple[Any, Any]:
        context = rs.context()
        try:
            device = context.load_device(str(self.path))
        except RuntimeError as err:
            raise CameraError(f"cannot read recording {self.path}: {err}") from None
        try:
            sensors = device.query_sensors()
            color = choose_profile(offered_profiles(sensors, rs.stream.color), self._color_request,
                                   RECORDED_COLOR_FORMATS, "color_profile", self.describe())
            depth = choose_profile(offered_profiles(sensors, rs.stream.depth), self._depth_request,
                                   (rs.format.z16,), "depth_profile", self.describe())
        finally:
            context.unload_device(str(self.path))
        return color, depth

    def _check_alive(self) -> None:
        playback = self._playback
        if playback is None or playback.current_status() != rs.playback_status.stopped:
            return
        if self.loop:
            self._play(keep_stamps=True)
            self.stats.detail = f"streaming from {self.describe()} (pass {self.passes})"
            return
        self.stats.state = "ended"
        self.stats.detail = (
            f"{self.describe()} ended after {self.stats.frames} frames; set loop_recording to play it again"
        )
        raise EndOfRecordingError(self.stats.detail)
