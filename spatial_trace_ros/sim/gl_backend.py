"""Pick MuJoCo's offscreen OpenGL backend before MuJoCo is imported.

MuJoCo reads ``MUJOCO_GL`` once, at import. A robot PC or CI box has no display, so the choice is
EGL (Mesa renders on the CPU when there is no GPU) and, where libEGL is missing, OSMesa. A value the
user set is always kept.
"""

from __future__ import annotations

import ctypes.util
import os

from spatial_trace_ros.errors import CameraError


def select_gl_backend() -> str:
    """Set ``MUJOCO_GL`` to egl or osmesa unless already set; returns the backend in use."""
    chosen = os.environ.get("MUJOCO_GL", "").strip().lower()
    if chosen:
        return chosen
    if ctypes.util.find_library("EGL"):
        chosen = "egl"
    elif ctypes.util.find_library("OSMesa"):
        chosen = "osmesa"
    else:
        raise CameraError(
            "no offscreen OpenGL library for the simulated camera: install libegl1 (or libosmesa6 and set "
            "MUJOCO_GL=osmesa)"
        )
    os.environ["MUJOCO_GL"] = chosen
    return chosen


def gl_failure_hint(err: BaseException) -> str:
    """A sentence for a renderer that failed to start, naming the backend and the way out."""
    backend = os.environ.get("MUJOCO_GL", "")
    other = "osmesa (apt-get install libosmesa6)" if backend != "osmesa" else "egl (apt-get install libegl1)"
    return f"MuJoCo could not open an offscreen {backend or 'OpenGL'} context ({err}); try MUJOCO_GL={other}"
