"""Stream profiles ("1280x720x30") and choosing one among what a RealSense device or recording offers.

A request names width, height and frame rate, or is empty for "the device's default" (for a recording:
"as recorded"). When nothing matches, the error lists every profile the device has for that stream, so
the fix is a copy-paste away.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pyrealsense2 as rs

from spatial_trace_ros.errors import CameraError, ConfigError

_PROFILE_RE = re.compile(r"^\s*(\d+)\s*[x,]\s*(\d+)\s*[x,]\s*(\d+)\s*$")


class CameraSettingsError(CameraError, ConfigError):
    """The device is there but cannot do what the parameters ask (e.g. an unsupported profile);
    retrying will not help, changing the parameter will."""


@dataclass(frozen=True, order=True)
class ProfileRequest:
    """Width x height at a frame rate; zeros mean "whatever the device offers by default"."""

    width: int = 0
    height: int = 0
    fps: int = 0

    @classmethod
    def parse(cls, text: str, name: str = "profile") -> ProfileRequest:
        """'1280x720x30' (or realsense-ros style '1280,720,30'); '' means the device default."""
        if not text.strip():
            return cls()
        m = _PROFILE_RE.match(text)
        if not m:
            raise ConfigError(f"{name} {text!r} is not WIDTHxHEIGHTxFPS (e.g. '1280x720x30'), or '' for the default")
        return cls(*(int(g) for g in m.groups()))

    @property
    def is_default(self) -> bool:
        return self.width == 0 and self.height == 0 and self.fps == 0

    def __str__(self) -> str:
        return "default" if self.is_default else f"{self.width}x{self.height}x{self.fps}"


@dataclass(frozen=True)
class OfferedProfile:
    """One video profile a sensor offers, with the pyrealsense2 objects needed to request it."""

    stream: rs.stream
    width: int
    height: int
    fps: int
    format: rs.format
    is_default: bool

    @property
    def format_name(self) -> str:
        return str(self.format).rsplit(".", 1)[-1]

    def __str__(self) -> str:
        return f"{self.width}x{self.height}x{self.fps} {self.format_name}"


def offered_profiles(sensors: Iterable[Any], stream: rs.stream) -> list[OfferedProfile]:
    """Every video profile of ``stream`` across ``sensors`` (a device's ``query_sensors()``)."""
    out = []
    for sensor in sensors:
        for profile in sensor.get_stream_profiles():
            if profile.stream_type() != stream or not profile.is_video_stream_profile():
                continue
            video = profile.as_video_stream_profile()
            out.append(OfferedProfile(stream, video.width(), video.height(), profile.fps(), profile.format(),
                                      profile.is_default()))
    return out


def describe_offered(profiles: Sequence[OfferedProfile]) -> str:
    """'1280x720x30 rgb8, 640x480x30 rgb8, ...' without duplicates, largest first."""
    seen = dict.fromkeys(str(p) for p in sorted(profiles, key=lambda p: (-p.width, -p.height, -p.fps)))
    return ", ".join(seen) or "(none)"


def choose_profile(
    offered: Sequence[OfferedProfile], request: ProfileRequest, formats: Sequence[rs.format], param: str, where: str
) -> OfferedProfile:
    """The offered profile matching ``request`` in the first available of ``formats`` (in order of
    preference); the default one (or the first) for an empty request. Raises ``CameraSettingsError``
    listing what is offered when none matches."""
    if not offered:
        raise CameraSettingsError(f"{where} has no stream for {param}")
    for fmt in formats:
        candidates = [p for p in offered if p.format == fmt]
        if request.is_default:
            candidates.sort(key=lambda p: not p.is_default)
        else:
            candidates = [p for p in candidates if (p.width, p.height, p.fps) == (request.width, request.height,
                                                                                  request.fps)]
        if candidates:
            return candidates[0]
    stream_name = str(offered[0].stream).rsplit(".", 1)[-1]
    wanted = "/".join(str(f).rsplit(".", 1)[-1] for f in formats)
    raise CameraSettingsError(
        f"{param} {str(request)!r} ({wanted}) is not available from {where}; available {stream_name} profiles: "
        f"{describe_offered(offered)}; set {param} to one of them, or to '' for the default"
    )
