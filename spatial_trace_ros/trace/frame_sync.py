"""Keep the recent color, depth and camera-info messages and hand out the newest time-matched set.

Color and aligned depth arrive on separate topics; a trace must be computed from a depth image taken
at the same moment as the color image the model saw. This holds a short history of each stream and,
on request, returns the newest color frame that has a depth frame within ``max_sync_skew_s``, or a
refusal that says exactly what is missing or stale. Messages are kept as opaque objects (the node
stores ROS messages and converts only the chosen set).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from spatial_trace_ros.errors import CameraError


class NoFrameError(CameraError):
    """No usable frame set right now; the message says why and what to check."""


@dataclass(frozen=True)
class MatchedFrame:
    color: Any
    depth: Any | None
    info: Any
    stamp_s: float
    skew_s: float


class FrameSynchronizer:
    """Thread-safe store of the last ``history`` color and depth messages (with their stamps)."""

    def __init__(self, topics: dict[str, str], history: int = 8) -> None:
        self._topics = topics
        self._color: deque[tuple[float, Any]] = deque(maxlen=history)
        self._depth: deque[tuple[float, Any]] = deque(maxlen=history)
        self._info: Any | None = None
        self._lock = threading.Lock()
        self.counts = {"color": 0, "depth": 0, "info": 0}

    def add_color(self, stamp_s: float, msg: Any) -> None:
        with self._lock:
            self._color.append((stamp_s, msg))
            self.counts["color"] += 1

    def add_depth(self, stamp_s: float, msg: Any) -> None:
        with self._lock:
            self._depth.append((stamp_s, msg))
            self.counts["depth"] += 1

    def set_info(self, msg: Any) -> None:
        with self._lock:
            self._info = msg
            self.counts["info"] += 1

    def latest(self, now_s: float, max_age_s: float, max_skew_s: float, need_depth: bool,
               max_clock_skew_s: float = math.inf) -> MatchedFrame:
        """The newest color frame (with its closest depth frame when ``need_depth``) no older than
        ``max_age_s``; raises ``NoFrameError`` otherwise, also when that frame is stamped more than
        ``max_clock_skew_s`` ahead of ``now_s`` (the camera's clock is ahead: its age cannot be trusted)."""
        with self._lock:
            colors = list(self._color)
            depths = list(self._depth)
            info = self._info
        if not colors:
            raise NoFrameError(f"no color image received yet on {self._topics['color']}; is the camera running?")
        if info is None:
            raise NoFrameError(f"no camera_info received yet on {self._topics['info']}; the intrinsics are needed")
        newest_stamp = max(s for s, _ in colors)
        age_s = now_s - newest_stamp
        if -age_s > max_clock_skew_s:
            raise NoFrameError(
                f"clock skew: the newest color image is stamped {-age_s:.2f} s in the future (max_clock_skew_s = "
                f"{max_clock_skew_s:g}); synchronise the camera PC's clock with this one (chrony/PTP)"
            )
        if age_s > max_age_s:
            raise NoFrameError(
                f"the newest color image is {age_s:.2f} s old (max_frame_age_s = {max_age_s:g}); is the camera "
                f"still publishing on {self._topics['color']}, and are the clocks in sync?"
            )
        if not need_depth:
            stamp, color = max(colors, key=lambda sc: sc[0])
            return MatchedFrame(color, None, info, stamp, 0.0)
        if not depths:
            raise NoFrameError(
                f"no aligned depth image received yet on {self._topics['depth']}; enable the aligned depth stream "
                "(sensor depth checks or replaces the model's depth)"
            )
        best_skew = float("inf")
        for stamp, color in sorted(colors, key=lambda sc: -sc[0]):
            if now_s - stamp > max_age_s:
                break
            d_stamp, depth = min(depths, key=lambda sd: abs(sd[0] - stamp))
            skew = abs(d_stamp - stamp)
            if skew <= max_skew_s:
                return MatchedFrame(color, depth, info, stamp, skew)
            best_skew = min(best_skew, skew)
        raise NoFrameError(
            f"no depth image within max_sync_skew_s = {max_skew_s:g} s of a recent color image (closest "
            f"{best_skew:.3f} s); are {self._topics['color']} and {self._topics['depth']} from the same camera "
            "with aligned depth?"
        )
