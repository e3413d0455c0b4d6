"""RecordingSource and RealSenseSource through the real pyrealsense2 pipeline, on synthetic recordings
whose every pixel, stamp and intrinsic is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyrealsense2 as rs
import pytest

from spatial_trace_ros.camera.filters import DepthFilterSettings
from spatial_trace_ros.camera.frames import depth_to_millimetres
from spatial_trace_ros.camera.profiles import CameraSettingsError
from spatial_trace_ros.camera.realsense import RealSenseSource, RecordingSource
from spatial_trace_ros.camera.source import EndOfRecordingError, make_frame_source
from spatial_trace_ros.errors import CameraError, ConfigError
from spatial_trace_ros.geometry.camera_model import RgbdFrame
from spatial_trace_ros.testing.realsense_recording import (
    SyntheticRecordingSpec,
    expected_color,
    expected_depth_m,
    expected_depth_raw,
    frame_index_of,
    frame_stamp_s,
    write_synthetic_recording,
)

SPEC = SyntheticRecordingSpec(n_frames=12, lost_frames=(5, 6))


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_recording(tmp_path_factory.mktemp("rec") / "synthetic.db3", SPEC)


def read_all(source: RecordingSource, limit: int = 1000) -> list[RgbdFrame]:
    frames: list[RgbdFrame] = []

    def read_until_the_end() -> None:
        while len(frames) < limit:
            frames.append(source.read(timeout_s=5.0))

    with pytest.raises(EndOfRecordingError, match=r"ended after \d+ frames; set loop_recording"):
        read_until_the_end()
    return frames


def assert_depth_matches(depth_raw: np.ndarray, expected_raw: np.ndarray, tolerance: int) -> None:
    """rs.align leaves a few pixels empty where rounding maps no depth pixel onto them; every depth it
    does write must be the recorded one (or a neighbour's on the ramp)."""
    rows, cols = SPEC.hole()
    outside = np.ones(expected_raw.shape, bool)
    outside[rows.start - 2:rows.stop + 2, cols.start - 2:cols.stop + 2] = False
    written = outside & (depth_raw > 0)
    assert written.sum() > 0.9 * outside.sum()
    diff = np.abs(depth_raw.astype(int) - expected_raw.astype(int))
    assert diff[written].max() <= tolerance
    assert np.mean(depth_raw[rows, cols] == 0) > 0.9  # the hole stays a hole without filters


def test_registry_builds_the_recording_source(recording: Path) -> None:
    source = make_frame_source("replay", path=recording, real_time=False)
    assert isinstance(source, RecordingSource)


def test_every_recorded_frame_comes_back_exactly_once(recording: Path) -> None:
    with RecordingSource(recording, real_time=False) as source:
        intr = source.intrinsics
        frames = read_all(source)
    recorded = [i for i in range(SPEC.n_frames) if i not in SPEC.lost_frames]
    assert [frame_index_of(f.color) for f in frames] == recorded
    assert (intr.width, intr.height) == (SPEC.width, SPEC.height)
    np.testing.assert_allclose(intr.K, SPEC.intrinsics.K, rtol=1e-6)
    np.testing.assert_allclose(intr.D, SPEC.distortion_coeffs, rtol=1e-6, atol=1e-9)
    assert intr.ros_distortion_model == "plumb_bob"
    expected_raw = expected_depth_raw(SPEC)
    for index, frame in zip(recorded, frames, strict=True):
        np.testing.assert_array_equal(frame.color, expected_color(SPEC, index))
        assert frame.stamp_s == pytest.approx(frame_stamp_s(SPEC, index), abs=1e-6)
        assert frame.depth.dtype == np.uint16 and frame.depth_scale_m == pytest.approx(SPEC.depth_units_m)
        assert frame.frame_id == "camera_color_optical_frame"
        assert_depth_matches(frame.depth, expected_raw, tolerance=3)
    assert source.serial_number == SPEC.serial_number and source.device_name == SPEC.device_name
    assert source.timestamp_domain == "hardware_clock"
    assert (source.stats.frames, source.stats.drops, source.stats.state) == (len(recorded), 2, "ended")


def test_depth_in_other_units_becomes_millimetres(tmp_path: Path) -> None:
    spec = SyntheticRecordingSpec(n_frames=2, depth_units_m=0.0001, near_m=0.4, far_m=2.0)
    with RecordingSource(write_synthetic_recording(tmp_path / "d405.db3", spec), real_time=False) as source:
        frame = source.read(timeout_s=5.0)
    assert frame.depth_scale_m == pytest.approx(0.0001)
    mm = depth_to_millimetres(frame.depth, frame.depth_scale_m)
    expected_mm = np.nan_to_num(expected_depth_m(spec) * 1000.0)
    written = mm > 0
    assert written.mean() > 0.85
    assert np.abs(mm[written] - expected_mm[written]).max() <= 8  # the ramp rises 2.5 mm per pixel


def test_looping_recording_keeps_stamps_growing(recording: Path) -> None:
    n_recorded = SPEC.n_frames - len(SPEC.lost_frames)
    with RecordingSource(recording, real_time=False, loop=True) as source:
        frames = [source.read(timeout_s=5.0) for _ in range(2 * n_recorded + 3)]
    stamps = np.array([f.stamp_s for f in frames])
    assert np.all(np.diff(stamps) > 0)
    indices = [frame_index_of(f.color) for f in frames]
    recorded = [i for i in range(SPEC.n_frames) if i not in SPEC.lost_frames]
    assert indices == 2 * recorded + recorded[:3]  # every frame of every pass, none lost at the jump back
    assert source.passes == 3
    assert source.stats.state == "closed"


def test_hole_filling_filter_fills_the_hole(recording: Path) -> None:
    rows, cols = SPEC.hole()
    filters = DepthFilterSettings(spatial=True, temporal=True, hole_filling=True)
    with RecordingSource(recording, real_time=False, filters=filters) as source:
        frame = source.read(timeout_s=5.0)
    filled = frame.depth[rows, cols]
    assert np.mean(filled > 0) > 0.8
    near_raw = expected_depth_raw(SPEC)[rows, cols.stop + 5].max()
    assert filled[filled > 0].max() <= near_raw + 10  # filled from the surroundings, not invented


def test_system_timestamps_are_arrival_times(recording: Path) -> None:
    import time

    before = time.time()
    with RecordingSource(recording, real_time=False, timestamp_source="system") as source:
        frame = source.read(timeout_s=5.0)
    assert before <= frame.stamp_s <= time.time()


def test_missing_recording_says_so(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match=r"recording .*absent\.db3 not found; set recording_path"):
        RecordingSource(tmp_path / "absent.db3").open()


def test_corrupt_recording_says_so(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db3"
    bad.write_text("not a database")
    with pytest.raises(CameraError, match="cannot read recording"):
        RecordingSource(bad).open()


def test_unsupported_profile_lists_what_the_recording_has(recording: Path) -> None:
    with pytest.raises(CameraSettingsError) as info:
        RecordingSource(recording, color_profile="1280x720x30").open()
    message = str(info.value)
    assert "color_profile '1280x720x30'" in message and "available color profiles: 640x480x30 rgb8" in message
    assert isinstance(info.value, ConfigError)  # retrying cannot fix it
    with pytest.raises(CameraSettingsError, match="available depth profiles: 640x480x30 z16"):
        RecordingSource(recording, depth_profile="848x480x30").open()


def test_matching_profile_is_accepted(recording: Path) -> None:
    with RecordingSource(recording, real_time=False, color_profile="640x480x30", depth_profile="640,480,30") as s:
        assert s.read(timeout_s=5.0).color.shape == (480, 640, 3)


def test_read_before_open_is_an_error(recording: Path) -> None:
    with pytest.raises(CameraError, match="not open"):
        RecordingSource(recording).read()


def test_bad_settings_are_refused_before_opening(recording: Path) -> None:
    with pytest.raises(ConfigError, match="color_profile '1280x720' is not WIDTHxHEIGHTxFPS"):
        RealSenseSource(color_profile="1280x720")
    with pytest.raises(ConfigError, match="unknown timestamp source 'gps'; available: device, system"):
        RecordingSource(recording, timestamp_source="gps")
    with pytest.raises(ConfigError, match="unknown hole filling mode 'magic'"):
        DepthFilterSettings(hole_filling_mode="magic")


@pytest.mark.skipif(len(rs.context().query_devices()) > 0, reason="a RealSense camera is attached")
def test_unknown_serial_without_any_camera_says_none_is_attached() -> None:
    with pytest.raises(CameraError) as info:
        RealSenseSource(serial_number="123456").open()
    message = str(info.value)
    assert "no RealSense camera with serial number '123456' is connected" in message
    assert "available: (none: librealsense finds no RealSense camera on this computer" in message
    assert not isinstance(info.value, ConfigError)  # a camera may still be plugged in: worth retrying
