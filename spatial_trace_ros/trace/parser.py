"""Turn a trace model's raw text answer into pixel coordinates (and depth where the model gives it).

Real answers are not clean lists: they carry reasoning, ``<think>``/``<answer>`` tags, code fences and
intermediate coordinates. The rule is that the *final* list of points counts:

1. Reasoning is dropped: text up to the last ``</think>``; inside the last ``<answer>...</answer>``
   if there is one.
2. Every bracketed value in what is left is read with a small tolerant grammar (``answer_grammar``: JSON lists, Python
   tuples, JSON objects). A *candidate* is a list whose items are all points (2-3 numbers) or
   ``{"point": [...]}`` objects. Lone points such as ``[600, 520]`` are intermediate coordinates.
3. The last candidate inside a closed code fence wins; without fences, the last candidate.
4. The winner is checked (arity, finite numbers, at least 2 points, the convention's range, depth)
   and converted to pixels. Anything wrong raises :class:`TraceParseError` quoting the offending text.

Input of any size or shape gives either a ``ParsedAnswer`` or a ``TraceParseError``; the scan is
linear in the answer's length.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from spatial_trace_ros.errors import ConfigError, TraceParseError
from spatial_trace_ros.trace.answer_grammar import Obj, Seq, is_number, scan_values
from spatial_trace_ros.trace.conventions import MAX_MODEL_DEPTH_M, Convention, get_convention

# Real answers, reasoning included, run to a few thousand characters (4096 tokens is ~16k).
MAX_ANSWER_CHARS = 50_000
_SNIPPET_CHARS = 160

_THINK_CLOSE_RE = re.compile(r"</think\s*>", re.IGNORECASE)
_THINK_OPEN_RE = re.compile(r"<think\s*>", re.IGNORECASE)
_ANSWER_OPEN_RE = re.compile(r"<answer\s*>", re.IGNORECASE)
_ANSWER_CLOSE_RE = re.compile(r"</answer\s*>", re.IGNORECASE)


@dataclass(frozen=True, eq=False)
class ParsedAnswer:
    """The final point list of an answer, in pixels.

    ``uv``: (N, 2) float pixels (u right, v down). ``depth_m``: (N,) metres along the optical axis,
    NaN where the model gave none. ``values``: the numbers as the answer wrote them (N x arity).
    ``snippet``: the text of the list that was used.
    """

    uv: np.ndarray
    depth_m: np.ndarray
    convention: str
    snippet: str
    values: np.ndarray = field(repr=False)

    @property
    def has_depth(self) -> bool:
        return bool(np.all(np.isfinite(self.depth_m))) and len(self.depth_m) > 0

    def __len__(self) -> int:
        return len(self.uv)


# -- scoping ----------------------------------------------------------------------------------------


def _excerpt(text: str, limit: int = _SNIPPET_CHARS) -> str:
    text = text.strip()
    if len(text) <= limit:
        return text
    half = (limit - 5) // 2
    return f"{text[:half]} ... {text[-half:]}"


def _final_answer_scope(text: str) -> tuple[str, str]:
    """The part of the answer that holds the final result, and a phrase naming it for errors."""
    closes = list(_THINK_CLOSE_RE.finditer(text))
    where = "the answer"
    if closes:
        text = text[closes[-1].end():]
        where = "the answer after </think>"
    elif _THINK_OPEN_RE.search(text):
        raise TraceParseError(
            "the answer ends inside <think> without a final answer (the model ran out of tokens?); "
            f"raise max_new_tokens or shorten the reasoning. End of answer: {_excerpt(text[-200:])!r}"
        )
    opens = list(_ANSWER_OPEN_RE.finditer(text))
    if opens:
        body = text[opens[-1].end():]
        close = _ANSWER_CLOSE_RE.search(body)
        text = body[: close.start()] if close else body
        where = "the <answer> block"
    return text, where


def _fence_spans(text: str) -> tuple[list[tuple[int, int]], int | None]:
    """Closed ``` code fences as (start, end) spans, and the start of a fence left open at the end."""
    marks = [m.start() for m in re.finditer(r"```", text)]
    spans = [(marks[k], marks[k + 1]) for k in range(0, len(marks) - 1, 2)]
    unclosed = marks[-1] if len(marks) % 2 == 1 else None
    return spans, unclosed


# -- checks and conversion -----------------------------------------------------------------------


def _fail(reason: str, snippet: str) -> TraceParseError:
    return TraceParseError(f"{reason}. Offending text: {_excerpt(snippet)!r}")


def _format_num(v: float) -> str:
    return f"{v:g}"


def _points_from_candidate(cand: Seq, conv: Convention, snippet: str) -> list[list]:
    rows: list[list] = []
    for k, item in enumerate(cand.items):
        if isinstance(item, Obj):
            if not conv.point_objects:
                raise _fail(
                    f'the answer uses {{"point": ...}} objects (Gemini style, y first), which the '
                    f"{conv.name} convention does not write; use --convention gemini for such models",
                    snippet,
                )
            item = item.pairs["point"]
        values = item.items
        for v in values:
            if not is_number(v):
                raise _fail(f"point #{k} has a non-numeric value {v!r}; every coordinate must be a number", snippet)
        rows.append(values)
    return rows


def _check_rows(rows: list[list], conv: Convention, width: int, height: int, snippet: str) -> np.ndarray:
    arities = sorted({len(r) for r in rows})
    if len(arities) > 1:
        counts = ", ".join(f"{sum(len(r) == a for r in rows)} with {a}" for a in arities)
        first_odd = next(k for k, r in enumerate(rows) if len(r) != len(rows[0]))
        raise _fail(
            f"mixed arity: points have different numbers of values ({counts}; point #{first_odd} differs from "
            "point #0); every point must be (x, y) or every point (x, y, d)",
            snippet,
        )
    arity = arities[0]
    allowed = "(x, y) or (x, y, d)" if conv.max_arity == 3 else "(x, y)"
    if arity < 2 or arity > conv.max_arity:
        raise _fail(
            f"points have {arity} value(s) each; the {conv.name} convention writes {allowed}", snippet
        )
    values = np.array(rows, dtype=float)
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        k, a = bad[0]
        raise _fail(f"point #{k} has a non-finite value {_format_num(values[k, a])} (NaN or inf)", snippet)
    if len(values) < 2:
        raise _fail(f"a trace needs at least 2 points, the answer's final list has {len(values)}", snippet)
    xy = values[:, 1::-1] if conv.y_first else values[:, :2]
    x_max, y_max = conv.axis_limits(width, height)
    for axis, limit, name in ((0, x_max, "x"), (1, y_max, "y")):
        outside = np.flatnonzero((xy[:, axis] < 0) | (xy[:, axis] > limit))
        if len(outside):
            k = int(outside[0])
            scale = "pixels" if conv.scale is None else f"a 0-{_format_num(conv.scale)} scale"
            hint = _range_hint(xy, conv, width, height)
            raise _fail(
                f"{name} = {_format_num(xy[k, axis])} at point #{k} is outside 0..{_format_num(limit)}: the "
                f"{conv.name} convention writes {conv.description} ({scale}, image {width}x{height}){hint}",
                snippet,
            )
    if (conv.scale is None or conv.scale > 1.0) and float(np.max(xy)) <= 1.0:
        scale = "pixels" if conv.scale is None else f"a 0-{_format_num(conv.scale)} scale"
        raise _fail(
            f"every coordinate lies between 0 and 1, but the {conv.name} convention writes {scale}: read that way the "
            "whole trace would sit in the image's top-left pixel. The numbers look like 0-1 fractions of the image "
            "(the roborefer convention); use --convention roborefer for such models",
            snippet,
        )
    if arity == 3:
        d = values[:, 2]
        wrong = np.flatnonzero((d <= 0) | (d > MAX_MODEL_DEPTH_M))
        if len(wrong):
            k = int(wrong[0])
            unit = "; it looks like millimetres, but depth must be metres" if d[k] > MAX_MODEL_DEPTH_M else ""
            raise _fail(
                f"depth d = {_format_num(d[k])} at point #{k} is not in (0, {_format_num(MAX_MODEL_DEPTH_M)}] "
                f"metres{unit}",
                snippet,
            )
    return values


_Y_FIRST_RE = re.compile(r"[\[(]\s*y_?\d*\s*,\s*x_?\d*\s*[,)\]]|\"y\"\s*:\s*[-\d.]+\s*,\s*\"x\"", re.IGNORECASE)
_X_FIRST_RE = re.compile(r"[\[(]\s*x_?\d*\s*,\s*y_?\d*\s*[,)\]]|\"x\"\s*:\s*[-\d.]+\s*,\s*\"y\"", re.IGNORECASE)


def _check_axis_order(scope: str, conv: Convention, snippet: str) -> None:
    """Refuse an answer that names its own axis order when that order is not the convention's: a model that
    writes "(y, x)" read as x, y (or the reverse) swaps every point across the image diagonal."""
    says_y_first, says_x_first = _Y_FIRST_RE.search(scope), _X_FIRST_RE.search(scope)
    if says_y_first and not says_x_first and not conv.y_first:
        raise _fail(
            f"the answer writes its points y first ({says_y_first.group()!r}), but the {conv.name} convention reads "
            "x first; use --convention gemini for models that answer [y, x] on a 0-1000 scale",
            snippet,
        )
    if says_x_first and not says_y_first and conv.y_first:
        raise _fail(
            f"the answer writes its points x first ({says_x_first.group()!r}), but the {conv.name} convention reads "
            "[y, x]; use --convention robotracer for x-first answers on a 0-1000 scale",
            snippet,
        )


def _range_hint(xy: np.ndarray, conv: Convention, width: int, height: int) -> str:
    """Name the convention the numbers probably follow, so the fix is one option away."""
    hi = float(np.max(xy)) if xy.size else 0.0
    if conv.scale is not None and conv.scale <= 255 and hi <= 1000:
        return "; the numbers look like a 0-1000 scale (robotracer) or pixels (robobrain)"
    if conv.scale == 1000.0 and hi <= max(width, height) * 1.05:
        return "; the numbers look like pixels of a larger image: use the robobrain convention for pixel answers"
    if conv.scale == 1000.0:
        return "; the numbers look like pixels: use the robobrain convention for pixel answers"
    return "; check that --width/--height are the size of the image the model saw"


# -- entry point ------------------------------------------------------------------------------------


def parse_answer(text: str, convention: str | Convention, width: int, height: int) -> ParsedAnswer:
    """The final trace of ``text`` in pixels of a ``width`` x ``height`` image.

    Raises ``TraceParseError`` (what was wrong, with the offending snippet) or ``ConfigError`` for an
    unknown convention or a bad image size.
    """
    conv = get_convention(convention)
    if not (isinstance(width, int | np.integer) and isinstance(height, int | np.integer) and width > 0 and height > 0):
        raise ConfigError(f"image size must be positive integers, got width={width!r}, height={height!r}")
    if not isinstance(text, str):
        raise TraceParseError(f"the answer must be text, got {type(text).__name__}")
    if not text.strip():
        raise TraceParseError("the answer is empty; the model returned no text")
    if len(text) > MAX_ANSWER_CHARS:
        raise TraceParseError(
            f"the answer is {len(text)} characters long (limit {MAX_ANSWER_CHARS}); it cannot be a trace. "
            f"Start: {_excerpt(text[:200])!r}"
        )
    scope, where = _final_answer_scope(text)
    tokens, _, open_at_end, scan = scan_values(scope)

    fences, open_fence = _fence_spans(scope)
    fenced = [c for c in scan.candidates if any(a <= c.start and c.end <= b for a, b in fences)]
    chosen = (fenced or scan.candidates or [None])[-1]
    chosen_end = chosen.end if chosen is not None else 0

    cut_lists = [
        tokens[j].start for j in open_at_end
        if tokens[j].text == "[" and j + 1 < len(tokens) and tokens[j + 1].kind == "open"
        and tokens[j].start >= chosen_end
    ]
    if cut_lists or (open_fence is not None and open_fence >= chosen_end):
        start = cut_lists[0] if cut_lists else open_fence
        raise TraceParseError(
            f"{where} ends inside an unfinished list or code block (output cut off? raise max_new_tokens); "
            f"unfinished text: {_excerpt(scope[start:])!r}"
        )
    if chosen is None:
        if scan.lone_points:
            shown = ", ".join(repr(scope[p.start:p.end]) for p in scan.lone_points[-3:])
            raise TraceParseError(
                f"no list of points found in {where}, only single coordinates ({shown}); a trace is a list "
                f"such as [(x1, y1), (x2, y2), ...]. End of answer: {_excerpt(scope[-200:])!r}"
            )
        raise TraceParseError(
            f"no list of points found in {where}; expected e.g. [(x1, y1), (x2, y2), ...]. "
            f"Answer: {_excerpt(scope)!r}"
        )

    snippet = scope[chosen.start:chosen.end]
    _check_axis_order(scope, conv, snippet)
    rows = _points_from_candidate(chosen, conv, snippet)
    values = _check_rows(rows, conv, int(width), int(height), snippet)
    xy = values[:, 1::-1] if conv.y_first else values[:, :2]
    uv = conv.to_pixels(xy, int(width), int(height))
    depth = values[:, 2].copy() if values.shape[1] == 3 else np.full(len(values), math.nan)
    return ParsedAnswer(uv=uv, depth_m=depth, convention=conv.name, snippet=_excerpt(snippet), values=values)
