"""CaptureLoop around real recordings: reconnecting with backoff while a camera is absent, carrying on
after a loss mid-stream, stopping at the end of a recording or on settings retrying cannot fix, and
never handing on a stale frame."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from spatial_trace_ros.camera.capture import CaptureLoop
from spatial_trace_ros.camera.realsense import RecordingSource
from spatial_trace_ros.camera.source import FrameSource
from spatial_trace_ros.errors import CameraError, ConfigError
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics, RgbdFrame
from spatial_trace_ros.testing.processes import wait_for
from spatial_trace_ros.testing.realsense_recording import (
    SyntheticRecordingSpec,
    frame_index_of,
    write_synthetic_recording,
)

SPEC = SyntheticRecordingSpec(width=320, height=240, fx=300.0, fy=300.0, cx=160.0, cy=120.0, n_frames=10)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_recording(tmp_path_factory.mktemp("rec") / "short.db3", SPEC)


class Collector:
    """What the loop hands on, and the states it reports, in order."""

    def __init__(self) -> None:
        self.frames: list[RgbdFrame] = []
        self.states: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def on_frame(self, frame: RgbdFrame) -> None:
        with self.lock:
            self.frames.append(frame)

    def on_state(self, state: str, detail: str) -> None:
        with self.lock:
            self.states.append((state, detail))


class UnpluggableCamera(FrameSource):
    """A recording that behaves like a camera on a flaky cable: after ``unplug_after`` frames it goes
    away (read raises, like a lost USB device) and cannot be opened for ``absent_opens`` attempts."""

    def __init__(self, path: Path, unplug_after: int, absent_opens: int) -> None:
        self.inner = RecordingSource(path, real_time=False, loop=True)
        self.stats = self.inner.stats
        self.unplug_after = unplug_after
        self.absent_opens = absent_opens
        self.plugged = True
        self.frames_read = 0
        self.failed_opens = 0

    @property
    def intrinsics(self) -> CameraIntrinsics:
        return self.inner.intrinsics

    def open(self) -> None:
        if not self.plugged:
            if self.failed_opens < self.absent_opens:
                self.failed_opens += 1
                raise CameraError("RealSense 123 is not connected")
            self.plugged = True
        self.inner.open()

    def read(self, timeout_s: float = 1.0) -> RgbdFrame:
        if self.frames_read == self.unplug_after:
            self.plugged = False
            self.frames_read += 1
            raise CameraError("RealSense 123 was disconnected")
        frame = self.inner.read(timeout_s)
        self.frames_read += 1
        return frame

    def close(self) -> None:
        self.inner.close()


class RepeatingCamera(RecordingSource):
    """A recording whose every frame is read twice, as a broken driver might deliver it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, real_time=False)
        self._pending: RgbdFrame | None = None

    def read(self, timeout_s: float = 1.0) -> RgbdFrame:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        self._pending = super().read(timeout_s)
        return self._pending


def run_loop(source: FrameSource, **kwargs: float) -> tuple[CaptureLoop, Collector]:
    sink = Collector()
    loop = CaptureLoop(source, sink.on_frame, on_state=sink.on_state, **kwargs)
    loop.start()
    return loop, sink


def test_recording_plays_to_the_end_then_the_loop_stops(recording: Path) -> None:
    loop, sink = run_loop(RecordingSource(recording, real_time=False))
    try:
        assert loop.wait(30.0), "the loop ends by itself at the end of a recording"
    finally:
        loop.stop()
    assert [frame_index_of(f.color) for f in sink.frames] == list(range(SPEC.n_frames))
    status = loop.status()
    assert (status.state, status.frames, status.drops, status.reconnects) == ("ended", SPEC.n_frames, 0, 0)
    assert [s for s, _ in sink.states] == ["streaming", "ended"]


def test_absent_recording_is_retried_with_growing_backoff_until_it_appears(recording: Path, tmp_path: Path) -> None:
    target = tmp_path / "later.db3"
    loop, sink = run_loop(RecordingSource(target, real_time=False), backoff_initial_s=0.02, backoff_max_s=0.08)
    try:
        wait_for(lambda: len(sink.states) >= 3, 10.0, "three reconnection attempts")
        assert loop.status().state == "reconnecting" and not sink.frames
        details = [d for _, d in sink.states[:3]]  # a repeated status is reported once
        assert all(f"recording {target} not found" in d for d in details)
        assert [d.rsplit("next try in ", 1)[1] for d in details] == ["0.02 s)", "0.04 s)", "0.08 s)"]
        shutil.copy(recording, target)
        assert loop.wait(30.0)
    finally:
        loop.stop()
    assert len(sink.frames) == SPEC.n_frames and loop.status().state == "ended"


def test_camera_lost_mid_stream_is_reported_and_reconnected_without_stale_frames(recording: Path) -> None:
    camera = UnpluggableCamera(recording, unplug_after=4, absent_opens=3)
    loop, sink = run_loop(camera, backoff_initial_s=0.01, backoff_max_s=0.02)
    try:
        wait_for(lambda: len(sink.frames) >= 12, 30.0, "frames after the reconnection")
    finally:
        loop.stop()
    states = [s for s, _ in sink.states]
    assert states[:2] == ["streaming", "reconnecting"]
    assert "camera lost: RealSense 123 was disconnected" in sink.states[1][1]
    # three failed opens, retried after 0.01, 0.02 and 0.02 s (a repeated status is reported once)
    assert states[2:] == ["reconnecting", "reconnecting", "streaming"]
    assert [d.rsplit("next try in ", 1)[1] for _, d in sink.states[2:4]] == ["0.01 s)", "0.02 s)"]
    assert camera.failed_opens == 3 and loop.status().reconnects == 1
    # Nothing was handed on while the camera was away: the 5th frame delivered is the first one read
    # after reconnecting (the recording starts again at frame 0), not a repeat of the last one.
    assert [frame_index_of(f.color) for f in sink.frames[:6]] == [0, 1, 2, 3, 0, 1]
    assert loop.status().state == "closed"


def test_a_frame_read_twice_is_handed_on_once(recording: Path) -> None:
    loop, sink = run_loop(RepeatingCamera(recording))
    try:
        assert loop.wait(30.0)
    finally:
        loop.stop()
    assert [frame_index_of(f.color) for f in sink.frames] == list(range(SPEC.n_frames))
    assert loop.status().stale_skipped == SPEC.n_frames


def test_settings_error_fails_at_once_without_retrying(recording: Path) -> None:
    loop, sink = run_loop(RecordingSource(recording, depth_profile="1280x720x90"), backoff_initial_s=0.01)
    try:
        assert loop.wait(30.0)
    finally:
        loop.stop()
    assert [s for s, _ in sink.states] == ["failed"]
    assert "available depth profiles: 320x240x30 z16" in sink.states[0][1]
    assert not sink.frames


def test_backoff_settings_are_checked(recording: Path) -> None:
    with pytest.raises(ConfigError, match="0 < initial"):
        CaptureLoop(RecordingSource(recording), lambda f: None, backoff_initial_s=2.0, backoff_max_s=1.0)
