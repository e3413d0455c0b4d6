"""Lazy name -> implementation registries (camera sources, trace backends, robot models, drivers,
server backends): each maps a name to ``"module:attribute"``, imported only when that name is used, so
an optional dependency (MuJoCo, cyclonedds, transformers) costs nothing to those who never ask for it."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from spatial_trace_ros.errors import ConfigError, SpatialTraceError, format_choices


def load_registered(
    registry: Mapping[str, str], name: str, what: str, error: type[SpatialTraceError] = ConfigError
) -> Any:
    """The object registered under ``name``; an unknown name raises ``error`` listing the known ones."""
    if name not in registry:
        raise error(format_choices(what, name, list(registry)))
    module_name, _, attr = registry[name].partition(":")
    return getattr(importlib.import_module(module_name), attr)
