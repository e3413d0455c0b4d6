"""``spatial-trace record``: record a live RealSense (color + depth) to a .db3 file for later replay.

The recording holds the raw streams with the device's intrinsics and depth units; ``camera_node``
with ``source:=replay`` plays it back through the same alignment and filters as the live camera.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

HELP = "record color + depth from a connected RealSense to a .db3 file (replay it with camera_node)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="output file, ending in .db3")
    parser.add_argument("--duration-s", type=float, default=10.0, help="how long to record [s] (default 10)")
    parser.add_argument("--serial", default="", help="serial number of the camera (default: the first found)")
    parser.add_argument("--color-profile", default="1280x720x30", help="WIDTHxHEIGHTxFPS ('' = device default)")
    parser.add_argument("--depth-profile", default="848x480x30", help="WIDTHxHEIGHTxFPS ('' = device default)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")


def run(args: argparse.Namespace) -> int:
    import pyrealsense2 as rs

    from spatial_trace_ros.camera.profiles import ProfileRequest
    from spatial_trace_ros.camera.realsense import find_camera, resolve_streams, stream_config
    from spatial_trace_ros.errors import CameraError, ConfigError

    out: Path = args.out
    if out.suffix != ".db3":
        raise ConfigError(f"librealsense records to .db3 files; name the output like {out.with_suffix('.db3')}")
    if out.exists() and not args.force:
        raise ConfigError(f"{out} exists; pass --force to overwrite it or choose another name")
    if not args.duration_s > 0:
        raise ConfigError(f"--duration-s must be positive, got {args.duration_s}")
    color_request = ProfileRequest.parse(args.color_profile, "--color-profile")
    depth_request = ProfileRequest.parse(args.depth_profile, "--depth-profile")

    device = find_camera(args.serial)
    serial = device.get_info(rs.camera_info.serial_number)
    color, depth = resolve_streams(device, color_request, depth_request)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    config = stream_config(serial, color, depth)
    config.enable_record_to_file(str(out))
    pipeline = rs.pipeline()
    try:
        pipeline.start(config)
    except RuntimeError as err:
        raise CameraError(f"cannot start recording from RealSense {serial}: {err}") from None
    print(f"recording RealSense {serial}: color {color}, depth {depth} for {args.duration_s:.1f} s to {out}")
    framesets, color_numbers = 0, set()
    deadline = time.monotonic() + args.duration_s
    try:
        while time.monotonic() < deadline:
            ok, frames = pipeline.try_wait_for_frames(2000)
            if not ok:
                raise CameraError(f"RealSense {serial} stopped sending frames; {framesets} framesets were recorded")
            color_frame = frames.get_color_frame()
            if color_frame:
                color_numbers.add(color_frame.get_frame_number())
            framesets += 1
    finally:
        pipeline.stop()
    span = max(color_numbers) - min(color_numbers) + 1 if color_numbers else 0
    print(f"wrote {out}: {framesets} framesets, {span - len(color_numbers)} color frames dropped on the way")
    return 0
