"""Coordinate conventions of trace models: how the numbers in an answer map to image pixels.

Each model family writes points on its own scale. A convention names that scale, the axis order and
how many numbers a point may carry, so the parser can turn any answer into pixels (u right, v down)
and reject numbers that cannot belong to the convention (e.g. pixels from a 0-1000 model).

The mapping follows the TraceSpatial-Bench evaluation code: ``u = x / scale * width``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spatial_trace_ros.errors import ConfigError, format_choices

# A model depth beyond this is not a tabletop or room-scale trace; most likely millimetres.
MAX_MODEL_DEPTH_M = 20.0


@dataclass(frozen=True)
class Convention:
    """One model family's way of writing points.

    ``scale`` is the value that stands for the full image width/height (None: the numbers are
    pixels). ``y_first`` says the answer writes (y, x). ``max_arity`` is 3 where the model may add a
    metric depth as a third number. ``point_objects`` allows ``[{"point": [...]}, ...]`` answers.
    """

    name: str
    scale: float | None
    y_first: bool
    max_arity: int
    point_objects: bool
    description: str

    def axis_limits(self, width: int, height: int) -> tuple[float, float]:
        """Largest allowed x and y as the answer writes them (smallest is 0)."""
        if self.scale is None:
            return float(width), float(height)
        return self.scale, self.scale

    def to_pixels(self, xy: np.ndarray, width: int, height: int) -> np.ndarray:
        """(N, 2) x, y in this convention (already in x, y order) to (N, 2) pixels u, v."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        if self.scale is None:
            return xy.copy()
        return xy / self.scale * np.array([width, height], dtype=float)

    def from_pixels(self, uv: np.ndarray, width: int, height: int) -> np.ndarray:
        """(N, 2) pixels to x, y on this convention's scale (x, y order); the inverse of ``to_pixels``."""
        uv = np.asarray(uv, dtype=float).reshape(-1, 2)
        if self.scale is None:
            return uv.copy()
        return uv / np.array([width, height], dtype=float) * self.scale

    def format_points(self, uv: np.ndarray, width: int, height: int, depth_m: np.ndarray | None = None) -> str:
        """Pixels (and optional depths) written the way this model family answers, for fakes and oracles."""
        xy = self.from_pixels(uv, width, height)
        if self.y_first:
            xy = xy[:, ::-1]
        as_int = self.scale is not None and self.scale >= 255
        nums = [[round(float(v)) if as_int else round(float(v), 4) for v in row] for row in xy]
        if depth_m is not None:
            if self.max_arity < 3:
                raise ConfigError(f"the {self.name} convention has no depth; drop depth_m")
            nums = [[*row, round(float(d), 3)] for row, d in zip(nums, depth_m, strict=True)]
        if self.point_objects:
            return "[" + ", ".join(f'{{"point": {row}}}' for row in nums) + "]"
        return "[" + ", ".join("(" + ", ".join(str(v) for v in row) + ")" for row in nums) + "]"


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        Convention("robotracer", 1000.0, False, 3, False,
                   "x, y on a 0-1000 scale of the image width/height, optional depth d in metres"),
        Convention("roborefer", 1.0, False, 2, False, "x, y as 0-1 fractions of the image width/height"),
        Convention("robobrain", None, False, 3, False, "x, y in pixels, optional depth d in metres"),
        Convention("gemini", 1000.0, True, 2, True, '[{"point": [y, x]}] with y first, on a 0-1000 scale'),
        Convention("molmoact", 255.0, False, 2, False, "x, y on a 0-255 scale of the image width/height"),
    )
}


def get_convention(name: str | Convention) -> Convention:
    """The convention called ``name``; unknown names are answered with the known ones."""
    if isinstance(name, Convention):
        return name
    if name not in CONVENTIONS:
        raise ConfigError(format_choices("answer convention", name, list(CONVENTIONS)))
    return CONVENTIONS[name]
