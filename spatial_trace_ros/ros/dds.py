"""Fast DDS settings every node starts with, so camera-sized messages reach other processes intact.

Fast DDS's default shared-memory segment (512 KiB) is smaller than one 640x480 color image. A node
that publishes a color image and its aligned depth back to back recycles the color image's fragments
before a subscriber in another process has read them; reliable repair comes too late for a KEEP_LAST
history that has moved on, and the subscriber silently misses frames (measured here: 11-27 of 30
color frames per second, depth unaffected; best effort loses both). The packaged profile keeps Fast
DDS's default transports with a 16 MiB segment, and every frame arrives, reliable or best effort.
(``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA`` does not help on one host: it keeps the small segment.)
A profile, transport set or RMW the user chose always wins.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from importlib import resources
from pathlib import Path

# Fast DDS 3 (Kilted on) reads the first name, Fast DDS 2 (Humble, Jazzy) the second; Kilted still
# reads the old one too, with a deprecation warning, so only the one the distro expects is set.
PROFILE_ENV_VARS = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
FAST_DDS_2_DISTROS = ("humble", "iron", "jazzy")
USER_TRANSPORTS_ENV_VAR = "FASTDDS_BUILTIN_TRANSPORTS"  # a profile's transports would override it
FAST_DDS_RMWS = ("", "rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp")  # "" = the distro default
LARGE_MESSAGE_SEGMENT_BYTES = 16 * 1024 * 1024


def large_message_profile() -> Path:
    """The packaged Fast DDS profile with the large shared-memory segment."""
    return Path(str(resources.files("spatial_trace_ros.ros") / "fastdds_large_messages.xml"))


def use_large_message_profile(environ: MutableMapping[str, str] = os.environ) -> Path | None:
    """Point Fast DDS at the packaged profile before ``rclpy.init``; returns it, or None where the user
    already set a profile file or built-in transports, or picked another RMW (their choice is kept)."""
    if environ.get("RMW_IMPLEMENTATION", "") not in FAST_DDS_RMWS:
        return None
    if any(environ.get(name) for name in (*PROFILE_ENV_VARS, USER_TRANSPORTS_ENV_VAR)):
        return None
    profile = large_message_profile()
    environ[profile_env_var(environ.get("ROS_DISTRO", ""))] = str(profile)
    return profile


def profile_env_var(ros_distro: str) -> str:
    """The variable this distro's Fast DDS reads its profile file from ('' = the Kilted wheels here)."""
    return PROFILE_ENV_VARS[1] if ros_distro.lower() in FAST_DDS_2_DISTROS else PROFILE_ENV_VARS[0]
