"""Write a real RealSense recording (.db3) of a synthetic scene whose every pixel is known.

A ``pyrealsense2.software_device`` with a depth and a color sensor is wrapped in ``rs.recorder``, and
frames are injected through the sensors, so the file is exactly what librealsense writes for a live
camera: playback through ``enable_device_from_file`` returns the intrinsics, depth units, serial number,
frame numbers and timestamps given here. Tests and benchmarks compare what the camera node publishes
with :func:`expected_color` / :func:`expected_depth_raw` / :func:`frame_stamp_s`.

Scene: depth is a horizontal ramp from ``near_m`` (left) to ``far_m`` (right) with a rectangular hole
(zeros, as a stereo camera reports no data); color is a smooth gradient with three solid landmark squares
and the frame index written into the top-left block, so a test can tell frames apart.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyrealsense2 as rs

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics

# Landmarks as (name, centre as a fraction of width/height, RGB colour); squares of LANDMARK_HALF_PX.
LANDMARKS: tuple[tuple[str, tuple[float, float], tuple[int, int, int]], ...] = (
    ("red", (0.25, 0.25), (255, 0, 0)),
    ("green", (0.75, 0.25), (0, 255, 0)),
    ("blue", (0.5, 0.75), (0, 0, 255)),
)
LANDMARK_HALF_PX = 12
INDEX_BLOCK_PX = 8  # the top-left INDEX_BLOCK_PX square holds the frame index (mod 256) in all channels


@dataclass(frozen=True)
class SyntheticRecordingSpec:
    """Everything that determines the recording's content."""

    width: int = 640
    height: int = 480
    fps: int = 30
    n_frames: int = 30
    fx: float = 612.5
    fy: float = 611.75
    cx: float = 319.25
    cy: float = 241.5
    distortion_coeffs: tuple[float, ...] = field(default=(0.03, -0.015, 0.0005, -0.0004, 0.002))
    depth_units_m: float = 0.001
    near_m: float = 0.5
    far_m: float = 1.5
    first_stamp_s: float = 1000.0
    serial_number: str = "SYNTH0001"
    device_name: str = "Synthetic D435"
    lost_frames: tuple[int, ...] = ()  # indices never written, as if lost on the USB link

    def __post_init__(self) -> None:
        if self.width < 64 or self.height < 64 or self.fps <= 0 or self.n_frames <= 0:
            raise ConfigError(f"synthetic recording needs >= 64x64 px, fps > 0 and frames > 0, got {self}")
        if not 0 < self.near_m < self.far_m or self.far_m / self.depth_units_m > 65535:
            raise ConfigError(
                f"depth ramp {self.near_m}-{self.far_m} m does not fit 16 bit at {self.depth_units_m} m per unit"
            )

    @property
    def intrinsics(self) -> CameraIntrinsics:
        """Intrinsics of both streams (depth shares the color lens, so alignment is near the identity)."""
        return CameraIntrinsics(self.width, self.height, self.fx, self.fy, self.cx, self.cy,
                                "brown_conrady", self.distortion_coeffs)

    def hole(self) -> tuple[slice, slice]:
        """Rows and columns of the depth hole: a band left of centre, clear of every landmark."""
        w, h = self.width, self.height
        return slice(int(0.45 * h), int(0.55 * h)), slice(int(0.05 * w), int(0.15 * w))


def landmark_pixels(spec: SyntheticRecordingSpec) -> dict[str, tuple[int, int, tuple[int, int, int]]]:
    """Landmark name -> (u, v, rgb) of its centre pixel."""
    return {name: (round(fu * spec.width), round(fv * spec.height), rgb) for name, (fu, fv), rgb in LANDMARKS}


def frame_stamp_s(spec: SyntheticRecordingSpec, index: int) -> float:
    """Recorded timestamp of frame ``index`` (both streams share it)."""
    return spec.first_stamp_s + index / spec.fps


def expected_color(spec: SyntheticRecordingSpec, index: int) -> np.ndarray:
    """The rgb8 image of frame ``index``."""
    u = np.arange(spec.width, dtype=np.float64)[None, :]
    v = np.arange(spec.height, dtype=np.float64)[:, None]
    img = np.empty((spec.height, spec.width, 3), np.uint8)
    img[..., 0] = (255 * u / (spec.width - 1)).astype(np.uint8)
    img[..., 1] = (255 * v / (spec.height - 1)).astype(np.uint8)
    img[..., 2] = ((u + v) % 64 * 2).astype(np.uint8)
    for cu, cv, rgb in landmark_pixels(spec).values():
        img[cv - LANDMARK_HALF_PX:cv + LANDMARK_HALF_PX + 1, cu - LANDMARK_HALF_PX:cu + LANDMARK_HALF_PX + 1] = rgb
    img[:INDEX_BLOCK_PX, :INDEX_BLOCK_PX] = index % 256
    return img


def frame_index_of(color: np.ndarray) -> int:
    """The frame index (mod 256) written into a received color image."""
    return int(np.median(color[:INDEX_BLOCK_PX, :INDEX_BLOCK_PX]))


def expected_depth_m(spec: SyntheticRecordingSpec) -> np.ndarray:
    """Depth in metres of every frame (NaN in the hole)."""
    ramp = np.linspace(spec.near_m, spec.far_m, spec.width)
    depth = np.repeat(ramp[None, :], spec.height, axis=0)
    rows, cols = spec.hole()
    depth[rows, cols] = np.nan
    return depth


def expected_depth_raw(spec: SyntheticRecordingSpec) -> np.ndarray:
    """The recorded uint16 depth in the recording's depth units (0 in the hole)."""
    depth = expected_depth_m(spec)
    return np.where(np.isnan(depth), 0, np.rint(np.nan_to_num(depth) / spec.depth_units_m)).astype(np.uint16)


def _rs_intrinsics(spec: SyntheticRecordingSpec) -> rs.intrinsics:
    intr = rs.intrinsics()
    intr.width, intr.height = spec.width, spec.height
    intr.fx, intr.fy, intr.ppx, intr.ppy = spec.fx, spec.fy, spec.cx, spec.cy
    intr.model = rs.distortion.brown_conrady
    intr.coeffs = list(spec.distortion_coeffs)
    return intr


def _video_stream(
    spec: SyntheticRecordingSpec, stream: rs.stream, fmt: rs.format, bpp: int, uid: int
) -> rs.video_stream:
    vs = rs.video_stream()
    vs.type, vs.index, vs.uid = stream, 0, uid
    vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = spec.width, spec.height, spec.fps, bpp, fmt
    vs.intrinsics = _rs_intrinsics(spec)
    return vs


def write_synthetic_recording(path: str | Path, spec: SyntheticRecordingSpec = SyntheticRecordingSpec()) -> Path:
    """Record ``spec.n_frames`` color + depth frames to ``path`` (must end in .db3); returns the path.

    Takes ``n_frames / fps`` seconds: frames are written at the frame rate so that real-time playback
    paces them as a camera would."""
    path = Path(path)
    if path.suffix != ".db3":
        raise ConfigError(f"librealsense records to .db3 files, got {path.name!r}; use a name ending in .db3")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)

    device = rs.software_device()
    depth_sensor = device.add_sensor("Stereo Module")
    color_sensor = device.add_sensor("RGB Camera")
    depth_profile = depth_sensor.add_video_stream(_video_stream(spec, rs.stream.depth, rs.format.z16, 2, 0), True)
    color_profile = color_sensor.add_video_stream(_video_stream(spec, rs.stream.color, rs.format.rgb8, 3, 1), True)
    depth_sensor.add_read_only_option(rs.option.depth_units, spec.depth_units_m)
    identity = rs.extrinsics()
    identity.rotation = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    identity.translation = [0.0, 0.0, 0.0]
    depth_profile.register_extrinsics_to(color_profile, identity)
    device.register_info(rs.camera_info.name, spec.device_name)
    device.register_info(rs.camera_info.serial_number, spec.serial_number)
    device.create_matcher(rs.matchers.default)

    recorder = rs.recorder(str(path), device)
    sensors = ((depth_sensor, depth_profile, 2), (color_sensor, color_profile, 3))
    for sensor, profile, _ in sensors:
        sensor.open(profile)
        sensor.start(lambda _frame: None)  # the recorder taps the stream; nothing else consumes it
    depth_raw = expected_depth_raw(spec)
    start = time.monotonic()
    try:
        for index in (i for i in range(spec.n_frames) if i not in spec.lost_frames):
            # Playback paces frames by when the recorder received them, not by their timestamps, so
            # frames are injected at the recording's frame rate.
            time.sleep(max(0.0, start + index / spec.fps - time.monotonic()))
            images = (depth_raw, expected_color(spec, index))
            for (sensor, profile, bpp), image in zip(sensors, images, strict=True):
                frame = rs.software_video_frame()
                frame.pixels = np.ascontiguousarray(image)
                frame.bpp, frame.stride = bpp, spec.width * bpp
                frame.timestamp = frame_stamp_s(spec, index) * 1000.0
                frame.domain = rs.timestamp_domain.hardware_clock
                frame.frame_number = index
                frame.profile = profile.as_video_stream_profile()
                if bpp == 2:
                    frame.depth_units = spec.depth_units_m
                sensor.on_video_frame(frame)
    finally:
        for sensor, _, _ in sensors:
            sensor.stop()
            sensor.close()
        del recorder  # flushes and closes the file
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic RealSense recording (.db3).")
    parser.add_argument("out", help="output .db3 path")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--frames", type=int, default=30)
    args = parser.parse_args(argv)
    spec = SyntheticRecordingSpec(width=args.width, height=args.height, fps=args.fps, n_frames=args.frames,
                                  fx=args.width * 0.96, fy=args.width * 0.96,
                                  cx=args.width / 2 - 0.5, cy=args.height / 2 - 0.5)
    print(write_synthetic_recording(args.out, spec))


if __name__ == "__main__":
    main()
