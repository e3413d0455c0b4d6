"""Message definition text as ``ros2 bag`` stores it in MCAP files (schema encoding ``ros2msg``).

A recording is only readable without the producer's install (Foxglove, ``mcap`` tools, another
machine) if every channel's schema carries the full definition: the type's own ``.msg`` text, then
each type it uses, once, after a line of 80 ``=`` and ``MSG: pkg/Type``, depth first with the
dependencies of each type in sorted order (rosbag2's layout, so its readers and ours agree).
The ``.msg`` files come from the ``share/<package>/msg`` folders of the ROS install or the
virtual environment (the ROS wheels ship them), found on ``AMENT_PREFIX_PATH`` and ``sys.prefix``.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

from rosidl_adapter.parser import parse_message_string

from spatial_trace_ros.errors import ConfigError

SCHEMA_ENCODING = "ros2msg"
MESSAGE_ENCODING = "cdr"
SEPARATOR = "=" * 80


def split_type_name(type_name: str) -> tuple[str, str]:
    """``'sensor_msgs/msg/Image'`` or ``'sensor_msgs/Image'`` -> ``('sensor_msgs', 'Image')``."""
    parts = type_name.split("/")
    if len(parts) == 3 and parts[1] == "msg":
        return parts[0], parts[2]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise ConfigError(f"message type {type_name!r} is not of the form package/msg/Type")


def share_prefixes() -> list[Path]:
    """Install prefixes whose ``share/`` may hold message packages: AMENT_PREFIX_PATH, then this Python's."""
    prefixes = [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    prefixes.append(Path(sys.prefix))
    return prefixes


@lru_cache(maxsize=256)
def message_file_text(package: str, name: str) -> str:
    """The ``.msg`` file of ``package/msg/name`` as installed; ConfigError naming where it looked."""
    searched = []
    for prefix in share_prefixes():
        path = prefix / "share" / package / "msg" / f"{name}.msg"
        if path.is_file():
            return path.read_text()
        searched.append(str(path.parent))
    raise ConfigError(
        f"no definition of {package}/msg/{name} found (looked in {', '.join(searched)}); install the "
        f"{package} package or source your ROS setup so that AMENT_PREFIX_PATH includes it"
    )


def _dependencies(package: str, name: str, text: str) -> list[str]:
    """The non-primitive types a definition uses, as ``pkg/Type``, sorted and without repeats."""
    spec = parse_message_string(package, name, text)
    found = {f"{f.type.pkg_name or package}/{f.type.type}" for f in spec.fields if not f.type.is_primitive_type()}
    return sorted(found)


@lru_cache(maxsize=128)
def message_definition(type_name: str) -> str:
    """The concatenated definition of ``type_name`` (e.g. ``'sensor_msgs/msg/Image'``)."""
    package, name = split_type_name(type_name)
    seen: set[str] = set()

    def expand(pkg: str, msg: str) -> str:
        text = message_file_text(pkg, msg)
        out = text
        for dep in _dependencies(pkg, msg, text):
            if dep in seen:
                continue
            seen.add(dep)
            dep_pkg, dep_name = split_type_name(dep)
            out += f"\n{SEPARATOR}\nMSG: {dep}\n" + expand(dep_pkg, dep_name)
        return out

    return expand(package, name)
