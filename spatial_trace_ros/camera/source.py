"""The ``FrameSource`` contract every camera backend implements, and the lazy registry of backends.

A source yields ``RgbdFrame``s: color rgb8 with depth aligned to it, the color camera's intrinsics and
the frame's capture time. The camera node only ever talks to this interface, so a RealSense, a
recording and the simulator feed the rest of the stack identically.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from spatial_trace_ros.errors import CameraError
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics, RgbdFrame
from spatial_trace_ros.registry import load_registered


class EndOfRecordingError(CameraError):
    """A recording played to its end and is not set to loop."""


@dataclass
class SourceStats:
    """Counters a node publishes as diagnostics."""

    frames: int = 0
    drops: int = 0
    reconnects: int = 0
    state: str = "closed"  # closed | streaming | reconnecting | ended | failed
    detail: str = ""


class FrameSource(ABC):
    """Opens a device (or file, or scene), reads aligned RGB-D frames, closes it again."""

    stats: SourceStats

    @abstractmethod
    def open(self) -> None:
        """Connect and start streaming; raises ``CameraError`` naming what is available on bad settings."""

    @abstractmethod
    def read(self, timeout_s: float = 1.0) -> RgbdFrame:
        """The next new frame (never a stale one twice); ``CameraError`` on timeout or loss,
        ``EndOfRecordingError`` at the end of a non-looping recording."""

    @abstractmethod
    def close(self) -> None:
        """Stop streaming and release the device; safe to call twice."""

    @property
    @abstractmethod
    def intrinsics(self) -> CameraIntrinsics:
        """Intrinsics of the color stream (depth is aligned to it)."""

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# name -> "module:factory"; factory(**options) -> FrameSource. Imported lazily so that
# e.g. the sim source's MuJoCo import never burdens a robot PC that streams a RealSense.
SOURCES: dict[str, str] = {
    "realsense": "spatial_trace_ros.camera.realsense:RealSenseSource",
    "replay": "spatial_trace_ros.camera.realsense:RecordingSource",
    "sim": "spatial_trace_ros.sim.camera:SimFrameSource",
}


def make_frame_source(name: str, **options: Any) -> FrameSource:
    """Build the source registered under ``name``; unknown names are answered with the known ones."""
    return load_registered(SOURCES, name, "camera source", CameraError)(**options)
