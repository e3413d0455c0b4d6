"""Frames as files for RoboTracer's spatial-encoder API, which reads images from the model server's disk.

That API (``POST /query`` with ``image_paths``, ``depth_z_paths``, ``intrinsics``, ``enable_spatial``,
``text``) takes paths, not pixels, so a frame must first be written where the model server can read it:
by the relay on the GPU host (``spatial-trace serve --backend robotracer-relay``), or by the client into
a folder both machines mount. Files are written under a temporary name and renamed, so a reader never
sees half a file, and are removed after the request whatever its outcome.

Depth goes as a 16-bit PNG in millimetres (0 = no reading; TraceSpatial-Bench's own depth files) or
as a float32 ``.npy`` in metres (0 = no reading), chosen by ``depth_format``.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import cv2
import numpy as np

from spatial_trace_ros.errors import ConfigError, ModelError

DepthFileFormat = Literal["png16_mm", "npy_m"]
DEPTH_SUFFIXES: dict[str, str] = {"png16_mm": ".png", "npy_m": ".npy"}
_MAX_MM = 65535


@dataclass(frozen=True)
class SpooledFrame:
    """The files of one request: color image and optional depth, local paths."""

    image_path: Path
    depth_path: Path | None

    def paths(self) -> list[Path]:
        return [p for p in (self.image_path, self.depth_path) if p is not None]

    def remove(self) -> None:
        """Delete the files (those already gone are fine)."""
        for path in self.paths():
            path.unlink(missing_ok=True)


def check_spool_dir(spool_dir: Path, what: str) -> Path:
    """The folder, made if missing, after writing and removing a probe file (so a read-only or missing
    mount fails at start-up, not on the first request)."""
    spool_dir = Path(spool_dir).expanduser()
    try:
        spool_dir.mkdir(parents=True, exist_ok=True)
        probe = spool_dir / f".probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"{what} {spool_dir} is not a writable folder ({err.strerror or err}); "
                          "create it, or pick a folder this process may write") from None
    return spool_dir


def _write_atomic(path: Path, data: bytes | memoryview) -> None:
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def depth_png16_mm(depth_m: np.ndarray) -> bytes:
    """Metric depth (NaN or <= 0 = no reading) as a 16-bit PNG in millimetres (0 = no reading)."""
    mm = np.nan_to_num(np.asarray(depth_m, dtype=np.float32) * 1000.0, nan=0.0, posinf=0.0, neginf=0.0)
    mm = np.clip(np.rint(mm), 0, _MAX_MM).astype(np.uint16)
    ok, buf = cv2.imencode(".png", mm, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ModelError("OpenCV could not encode the depth image as PNG")
    return buf.tobytes()


def depth_npy_m(depth_m: np.ndarray) -> bytes:
    """Metric depth as a float32 ``.npy`` file's bytes in metres, 0 where there is no reading."""
    import io

    metres = np.nan_to_num(np.asarray(depth_m, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    metres[metres < 0] = 0.0
    out = io.BytesIO()
    np.save(out, metres, allow_pickle=False)
    return out.getbuffer()


def spool_frame(
    spool_dir: Path,
    color_bytes: bytes,
    color_suffix: str,
    depth_m: np.ndarray | None = None,
    depth_format: DepthFileFormat = "png16_mm",
    depth_png16_mm_bytes: bytes | None = None,
) -> SpooledFrame:
    """Write one frame into ``spool_dir`` under a fresh unique name.

    ``color_bytes`` is an encoded PNG or JPEG (written as it is, ``color_suffix`` ".png"/".jpg").
    Depth comes as metres (``depth_m``) or, for ``png16_mm``, as a ready 16-bit millimetre PNG
    (``depth_png16_mm_bytes``, written as it is). On any failure nothing is left behind.
    """
    stem = uuid.uuid4().hex
    image_path = Path(spool_dir) / f"{stem}_color{color_suffix}"
    has_depth = depth_m is not None or depth_png16_mm_bytes is not None
    depth_path = Path(spool_dir) / f"{stem}_depth{DEPTH_SUFFIXES[depth_format]}" if has_depth else None
    frame = SpooledFrame(image_path, depth_path)
    try:
        _write_atomic(image_path, color_bytes)
        if depth_path is not None:
            if depth_format == "png16_mm":
                data = depth_png16_mm_bytes if depth_png16_mm_bytes is not None else depth_png16_mm(depth_m)
            else:
                data = depth_npy_m(depth_m)
            _write_atomic(depth_path, data)
    except OSError as err:
        frame.remove()
        raise ModelError(f"cannot write the frame into the spool folder {spool_dir}: {err.strerror or err}; "
                         "check free space and permissions") from None
    return frame


def server_path(local: Path, spool_dir: Path, server_spool_dir: str) -> str:
    """``local`` (a file in ``spool_dir``) as the model server sees it: under ``server_spool_dir`` when
    the shared folder is mounted elsewhere there, else the local absolute path."""
    if not server_spool_dir:
        return str(Path(local).resolve())
    return str(PurePosixPath(server_spool_dir) / Path(local).relative_to(spool_dir).as_posix())


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> list[list[float]]:
    """The 3x3 pinhole matrix as RoboTracer's request writes it."""
    return [[float(fx), 0.0, float(cx)], [0.0, float(fy), float(cy)], [0.0, 0.0, 1.0]]


def spatial_request(
    image_path: str, depth_path: str | None, intrinsics: list[list[float]] | None, enable_spatial: bool, prompt: str
) -> dict[str, Any]:
    """The spatial-encoder API's JSON body: lists of one path, null where a mode sends nothing."""
    return {
        "image_paths": [image_path],
        "depth_z_paths": [depth_path] if depth_path is not None else None,
        "intrinsics": intrinsics,
        "enable_spatial": int(enable_spatial),
        "text": prompt,
    }
