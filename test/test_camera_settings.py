"""Camera settings without a camera: profile requests and choices, pixel formats, the node's config
model, config/camera.yaml and docs/camera.md kept in step with it, and the diagnostic summary."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyrealsense2 as rs
import pytest
import yaml

from spatial_trace_ros.camera.capture import CaptureStatus, summarize
from spatial_trace_ros.camera.config import CameraNodeConfig
from spatial_trace_ros.camera.frames import color_to_rgb8, depth_to_millimetres
from spatial_trace_ros.camera.profiles import (
    CameraSettingsError,
    OfferedProfile,
    ProfileRequest,
    choose_profile,
    describe_offered,
)
from spatial_trace_ros.camera.realsense import RealSenseSource, RecordingSource
from spatial_trace_ros.errors import CameraError, ConfigError

REPO = Path(__file__).resolve().parents[1]


def offered(*specs: tuple[int, int, int, rs.format, bool]) -> list[OfferedProfile]:
    return [OfferedProfile(rs.stream.color, w, h, fps, fmt, default) for w, h, fps, fmt, default in specs]


D435_COLOR = offered(
    (1920, 1080, 30, rs.format.rgb8, False), (1280, 720, 30, rs.format.rgb8, False),
    (640, 480, 30, rs.format.rgb8, True), (640, 480, 30, rs.format.yuyv, False), (640, 480, 15, rs.format.rgb8, False),
)


@pytest.mark.parametrize(("text", "expected"), [
    ("1280x720x30", ProfileRequest(1280, 720, 30)),
    ("640,480,15", ProfileRequest(640, 480, 15)),
    (" 848 x 480 x 60 ", ProfileRequest(848, 480, 60)),
    ("", ProfileRequest()),
])
def test_profile_requests_parse(text: str, expected: ProfileRequest) -> None:
    assert ProfileRequest.parse(text) == expected


@pytest.mark.parametrize("text", ["1280x720", "hd", "1280x720x30x2", "-1x720x30"])
def test_malformed_profile_requests_name_the_format(text: str) -> None:
    with pytest.raises(ConfigError, match="is not WIDTHxHEIGHTxFPS"):
        ProfileRequest.parse(text, "color_profile")


def test_choose_profile_picks_the_exact_match_in_the_preferred_format() -> None:
    chosen = choose_profile(D435_COLOR, ProfileRequest(640, 480, 30), (rs.format.rgb8,), "color_profile", "cam")
    assert (chosen.width, chosen.height, chosen.fps, chosen.format) == (640, 480, 30, rs.format.rgb8)
    chosen = choose_profile(D435_COLOR, ProfileRequest(640, 480, 30), (rs.format.bgr8, rs.format.yuyv), "c", "cam")
    assert chosen.format == rs.format.yuyv


def test_choose_profile_default_is_the_device_default() -> None:
    chosen = choose_profile(D435_COLOR, ProfileRequest(), (rs.format.rgb8,), "color_profile", "cam")
    assert str(chosen) == "640x480x30 rgb8"


def test_unsupported_profile_lists_every_offered_profile_largest_first() -> None:
    with pytest.raises(CameraSettingsError) as info:
        choose_profile(D435_COLOR, ProfileRequest(1280, 720, 90), (rs.format.rgb8,), "color_profile", "RealSense X")
    assert str(info.value) == (
        "color_profile '1280x720x90' (rgb8) is not available from RealSense X; available color profiles: "
        "1920x1080x30 rgb8, 1280x720x30 rgb8, 640x480x30 rgb8, 640x480x30 yuyv, 640x480x15 rgb8; "
        "set color_profile to one of them, or to '' for the default"
    )
    assert describe_offered([]) == "(none)"
    with pytest.raises(CameraSettingsError, match="has no stream for depth_profile"):
        choose_profile([], ProfileRequest(), (rs.format.z16,), "depth_profile", "recording a.db3")


def test_color_formats_become_rgb8() -> None:
    rgb = np.random.default_rng(3).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    np.testing.assert_array_equal(color_to_rgb8(rgb.reshape(-1), "rgb8", 8, 6), rgb)
    np.testing.assert_array_equal(color_to_rgb8(rgb[:, :, ::-1].copy(), "bgr8", 8, 6), rgb)
    bgra = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA)
    np.testing.assert_array_equal(color_to_rgb8(bgra, "bgra8", 8, 6), rgb)
    yuyv = np.full((6, 8, 2), 128, np.uint8)  # U = V = 128: no colour
    yuyv[:, :4, 0], yuyv[:, 4:, 0] = 16, 235  # video-range luma: black on the left, white on the right
    converted = color_to_rgb8(yuyv, "yuyv", 8, 6)
    assert converted.shape == (6, 8, 3)
    assert np.all(converted[:, :4] == 0) and np.all(converted[:, 4:] == 255)
    with pytest.raises(CameraError, match="color format 'mjpeg' is not supported; available: rgb8"):
        color_to_rgb8(rgb, "mjpeg", 8, 6)


def test_depth_becomes_millimetres() -> None:
    raw = np.array([[0, 1, 5000, 65535]], np.uint16)
    assert depth_to_millimetres(raw, 0.0010000000474974513) is raw
    np.testing.assert_array_equal(depth_to_millimetres(raw, 0.0001), [[0, 0, 500, 6554]])
    np.testing.assert_array_equal(depth_to_millimetres(raw, 0.01), [[0, 10, 50000, 65535]])


def test_node_config_defaults_follow_realsense_ros() -> None:
    cfg = CameraNodeConfig()
    assert cfg.topic("color/image_raw") == "/camera/camera/color/image_raw"
    assert cfg.topic("aligned_depth_to_color/camera_info") == "/camera/camera/aligned_depth_to_color/camera_info"
    assert cfg.color_frame_id == "camera_color_optical_frame"
    assert isinstance(cfg.make_source(), RealSenseSource)
    other = CameraNodeConfig(camera_namespace="", camera_name="wrist")
    assert (other.topic("color/image_raw"), other.color_frame_id) == ("/wrist/color/image_raw",
                                                                      "wrist_color_optical_frame")


def test_node_config_builds_a_recording_source_with_its_settings(tmp_path: Path) -> None:
    cfg = CameraNodeConfig(source="replay", recording_path=str(tmp_path / "a.db3"), playback_real_time=False,
                           loop_recording=True, hole_filling_filter=True, timestamp_source="system")
    source = cfg.make_source()
    assert isinstance(source, RecordingSource)
    assert (source.real_time, source.loop, source.timestamp_source) == (False, True, "system")
    assert source.filter_settings.names() == ["hole_filling"]


@pytest.mark.parametrize(("values", "problem"), [
    ({"source": "replay"}, "needs recording_path"),
    ({"color_profile": "1280*720"}, "is not WIDTHxHEIGHTxFPS"),
    ({"source": "usb"}, "Input should be 'realsense', 'replay' or 'sim'"),
    ({"source": "sim", "sim_options_json": "[1, 2]"}, "must be a JSON object"),
    ({"read_timeout_s": 0.0}, "greater than or equal to 0.05"),
    ({"reconnect_backoff_initial_s": 2.0, "reconnect_backoff_max_s": 1.0}, "reconnect_backoff_max_s must be >="),
    ({"camera_name": "my camera"}, "letters, digits and underscores"),
    ({"exposure": 3}, "Extra inputs are not permitted"),
])
def test_node_config_refuses_bad_values(values: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        CameraNodeConfig(**values)


def test_camera_yaml_is_a_valid_camera_node_parameter_file() -> None:
    data = yaml.safe_load((REPO / "config" / "camera.yaml").read_text())
    params = data["camera_node"]["ros__parameters"]
    assert set(params) == set(CameraNodeConfig.model_fields)
    cfg = CameraNodeConfig(**params)
    assert cfg.source == "realsense" and cfg.color_profile == "1280x720x30"


def test_docs_list_every_parameter_and_topic() -> None:
    text = (REPO / "docs" / "camera.md").read_text()
    missing = [name for name in CameraNodeConfig.model_fields if f"`{name}`" not in text]
    assert not missing, f"docs/camera.md does not describe: {missing}"
    for suffix in ("color/image_raw", "color/camera_info", "aligned_depth_to_color/image_raw",
                   "aligned_depth_to_color/camera_info"):
        assert f"/camera/camera/{suffix}" in text


def status(state: str, detail: str = "", rate: float = 30.0) -> CaptureStatus:
    return CaptureStatus(state, detail, frames=10, drops=0, reconnects=0, stale_skipped=0, rate_hz=rate,
                         since_last_frame_s=0.01, handling_ms=2.0)


def test_diagnostic_summary_levels() -> None:
    assert summarize(status("streaming"), 0) == ("ok", "streaming at 30.0 Hz")
    assert summarize(status("streaming"), 3) == (
        "warn", "streaming at 30.0 Hz; 3 frame(s) dropped since the last report")
    assert summarize(status("ended", "recording x ended"), 0) == ("warn", "recording x ended")
    assert summarize(status("reconnecting", "gone"), 0) == ("error", "reconnecting: gone")
    assert summarize(status("failed", "bad profile"), 0) == ("error", "failed: bad profile")
