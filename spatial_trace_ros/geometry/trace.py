"""A spatial trace: the ordered 3D points a model says the end effector (or object) should follow."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from spatial_trace_ros.geometry import path as pathlib
from spatial_trace_ros.geometry.transforms import Transform


@dataclass(frozen=True, eq=False)
class Trace:
    """N x 3 points in ``frame_id`` with per-point validity and where they came from.

    ``pixels_uv`` keeps the image coordinates the points were deprojected from (for overlays);
    ``source_text`` keeps the model's raw answer (for logs and status messages).
    """

    points: np.ndarray
    frame_id: str
    stamp_s: float = 0.0
    source_text: str = ""
    valid: np.ndarray | None = None
    pixels_uv: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        pts = np.asarray(self.points, dtype=float)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise ValueError(f"trace points must have shape (N, 3), got {pts.shape}")
        object.__setattr__(self, "points", pts)
        valid = np.ones(len(pts), bool) if self.valid is None else np.asarray(self.valid, bool)
        if valid.shape != (len(pts),):
            raise ValueError(f"valid must have one flag per point ({len(pts)}), got shape {valid.shape}")
        object.__setattr__(self, "valid", valid & np.all(np.isfinite(pts), axis=1))
        if self.pixels_uv is not None:
            uv = np.asarray(self.pixels_uv, dtype=float)
            if uv.shape != (len(pts), 2):
                raise ValueError(f"pixels_uv must have shape ({len(pts)}, 2), got {uv.shape}")
            object.__setattr__(self, "pixels_uv", uv)

    def __len__(self) -> int:
        return len(self.points)

    @property
    def valid_fraction(self) -> float:
        return float(np.mean(self.valid)) if len(self.valid) else 0.0

    @property
    def length_m(self) -> float:
        pts = self.points[self.valid]
        return pathlib.path_length(pts) if len(pts) else 0.0

    def transformed(self, parent_T_frame: Transform) -> Trace:
        """The same trace expressed in ``parent_T_frame.parent``; the frames must match."""
        if parent_T_frame.child and parent_T_frame.child != self.frame_id:
            raise ValueError(
                f"trace is in {self.frame_id!r} but the transform maps from {parent_T_frame.child!r}"
            )
        return replace(self, points=parent_T_frame.apply(self.points), frame_id=parent_T_frame.parent)

    def only_valid(self) -> Trace:
        keep = self.valid
        uv = None if self.pixels_uv is None else self.pixels_uv[keep]
        return replace(self, points=self.points[keep], valid=None, pixels_uv=uv)
