"""A short history of timestamped TCP poses, so an eye-in-hand frame can be placed with the pose the
tool had when the frame was captured (not the pose it has when the trace arrives, seconds later)."""

from __future__ import annotations

import bisect
from collections import deque

import numpy as np
from scipy.spatial.transform import Rotation, Slerp


class PoseHistory:
    """Poses ``base_T_tool`` (4x4) by time; ``at(t)`` interpolates between the samples around ``t``."""

    def __init__(self, max_age_s: float = 30.0, max_gap_s: float = 0.2) -> None:
        self.max_age_s = max_age_s
        self.max_gap_s = max_gap_s
        self._stamps: deque[float] = deque()
        self._poses: deque[np.ndarray] = deque()

    def __len__(self) -> int:
        return len(self._stamps)

    def add(self, stamp_s: float, base_T_tool: np.ndarray) -> None:
        """Append a sample (out-of-order samples are dropped); samples older than ``max_age_s`` expire."""
        if self._stamps and stamp_s <= self._stamps[-1]:
            return
        self._stamps.append(float(stamp_s))
        self._poses.append(np.asarray(base_T_tool, float).copy())
        while self._stamps and self._stamps[0] < stamp_s - self.max_age_s:
            self._stamps.popleft()
            self._poses.popleft()

    def latest(self) -> tuple[float, np.ndarray] | None:
        return (self._stamps[-1], self._poses[-1]) if self._stamps else None

    def at(self, stamp_s: float, tolerance_s: float) -> np.ndarray | None:
        """The pose at ``stamp_s``: interpolated between samples no more than ``max_gap_s`` apart, or
        the nearest sample within ``tolerance_s``; None if the history does not cover that time."""
        stamps = list(self._stamps)
        if not stamps:
            return None
        k = bisect.bisect_left(stamps, stamp_s)
        if k < len(stamps) and stamps[k] == stamp_s:
            return self._poses[k].copy()
        if 0 < k < len(stamps) and stamps[k] - stamps[k - 1] <= self.max_gap_s:
            t0, t1 = stamps[k - 1], stamps[k]
            a, b = self._poses[k - 1], self._poses[k]
            w = (stamp_s - t0) / (t1 - t0)
            out = np.eye(4)
            out[:3, 3] = (1 - w) * a[:3, 3] + w * b[:3, 3]
            out[:3, :3] = Slerp([0.0, 1.0], Rotation.from_matrix([a[:3, :3], b[:3, :3]]))([w]).as_matrix()[0]
            return out
        near = min(range(max(k - 1, 0), min(k + 1, len(stamps))), key=lambda i: abs(stamps[i] - stamp_s))
        return self._poses[near].copy() if abs(stamps[near] - stamp_s) <= tolerance_s else None
