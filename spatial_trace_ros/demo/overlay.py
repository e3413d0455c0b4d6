"""Saves trace_node's overlay image with the instruction's fate written under it (verdict, outcome)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

BANNER_LINE_PX = 20
FONT, FONT_SCALE = cv2.FONT_HERSHEY_SIMPLEX, 0.45
GREEN, RED, AMBER = (40, 150, 40), (200, 40, 40), (200, 140, 0)


def banner_colour(verdict: str, outcome: str) -> tuple[int, int, int]:
    if verdict == "REJECT" or outcome in ("aborted", "stopped"):
        return RED
    if outcome == "succeeded":
        return GREEN
    return AMBER


def wrap(text: str, width_px: int) -> list[str]:
    """``text`` broken at spaces into lines that fit ``width_px`` in the banner's font."""
    lines: list[str] = []
    for word in text.split(" "):
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and cv2.getTextSize(candidate, FONT, FONT_SCALE, 1)[0][0] <= width_px:
            lines[-1] = candidate
        else:
            lines.append(word)
    return lines


def with_banner(image_rgb: np.ndarray, texts: list[str], colour: tuple[int, int, int]) -> np.ndarray:
    """The image with a coloured strip below it holding ``texts`` (the image itself is not covered)."""
    width = image_rgb.shape[1]
    lines = [line for text in texts for line in wrap(text, width - 12)]
    strip = np.empty((BANNER_LINE_PX * len(lines) + 8, width, 3), np.uint8)
    strip[:] = colour
    for i, text in enumerate(lines):
        cv2.putText(strip, text, (6, BANNER_LINE_PX * (i + 1) - 2), FONT, FONT_SCALE, (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([image_rgb, strip])


def save_png(image_rgb: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"could not write {path}")
    return path
