"""librealsense depth post-processing chosen by parameters: spatial, temporal and hole filling.

They run on the depth frame before alignment to color, in the order Intel recommends (spatial, then
temporal, then hole filling), with librealsense's own defaults for their strengths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyrealsense2 as rs

from spatial_trace_ros.errors import ConfigError, format_choices

# Hole-filling modes as librealsense numbers them.
HOLE_FILLING_MODES: dict[str, int] = {"fill_from_left": 0, "farthest_from_around": 1, "nearest_from_around": 2}


@dataclass(frozen=True)
class DepthFilterSettings:
    spatial: bool = False
    temporal: bool = False
    hole_filling: bool = False
    hole_filling_mode: str = "farthest_from_around"

    def __post_init__(self) -> None:
        if self.hole_filling_mode not in HOLE_FILLING_MODES:
            raise ConfigError(format_choices("hole filling mode", self.hole_filling_mode, list(HOLE_FILLING_MODES)))

    @property
    def any(self) -> bool:
        return self.spatial or self.temporal or self.hole_filling

    def names(self) -> list[str]:
        return [n for n, on in (("spatial", self.spatial), ("temporal", self.temporal),
                                ("hole_filling", self.hole_filling)) if on]


NO_FILTERS = DepthFilterSettings()


def build_depth_filters(settings: DepthFilterSettings) -> list[Any]:
    """The enabled ``rs.filter`` objects in processing order (fresh ones: the temporal filter has state)."""
    chain: list[Any] = []
    if settings.spatial:
        chain.append(rs.spatial_filter())
    if settings.temporal:
        chain.append(rs.temporal_filter())
    if settings.hole_filling:
        chain.append(rs.hole_filling_filter(HOLE_FILLING_MODES[settings.hole_filling_mode]))
    return chain
