"""The trace drawn on the image the model saw, so an operator can judge it at a glance."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

START_RGB = (40, 200, 60)
END_RGB = (230, 40, 40)
PATH_RGB = (255, 200, 0)
FLAGGED_RGB = (255, 120, 0)
INVALID_RGB = (160, 160, 160)


def draw_trace_overlay(
    rgb: np.ndarray,
    pixels_uv: np.ndarray,
    valid: np.ndarray | None = None,
    flagged: Sequence[int] = (),
    label: str = "",
) -> np.ndarray:
    """A copy of ``rgb`` with the polyline through the points, the start (green) and end (red) marked,
    invalid points grey and depth-check failures ringed in orange; ``label`` is written top left."""
    out = np.ascontiguousarray(rgb, dtype=np.uint8).copy()
    uv = np.asarray(pixels_uv, dtype=float).reshape(-1, 2)
    ok = np.ones(len(uv), bool) if valid is None else np.asarray(valid, bool)
    h, w = out.shape[:2]
    scale = max(1, round(max(h, w) / 640))
    pts = np.rint(np.nan_to_num(uv, nan=-1.0)).astype(np.int32)
    good = pts[ok]
    if len(good) >= 2:
        cv2.polylines(out, [good.reshape(-1, 1, 2)], False, PATH_RGB, 2 * scale, cv2.LINE_AA)
    for k, (u, v) in enumerate(pts):
        color = PATH_RGB if ok[k] else INVALID_RGB
        cv2.circle(out, (int(u), int(v)), 3 * scale, color, -1, cv2.LINE_AA)
        if k in flagged:
            cv2.circle(out, (int(u), int(v)), 7 * scale, FLAGGED_RGB, 2 * scale, cv2.LINE_AA)
    if len(pts):
        cv2.circle(out, tuple(int(c) for c in pts[0]), 6 * scale, START_RGB, -1, cv2.LINE_AA)
        cv2.circle(out, tuple(int(c) for c in pts[-1]), 6 * scale, END_RGB, -1, cv2.LINE_AA)
    if label:
        text = label if len(label) <= 80 else label[:77] + "..."
        font_scale = 0.5 * scale
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, scale)
        cv2.rectangle(out, (0, 0), (min(w, tw + 8), th + base + 8), (0, 0, 0), -1)
        cv2.putText(out, text, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 255), scale, cv2.LINE_AA)
    return out
