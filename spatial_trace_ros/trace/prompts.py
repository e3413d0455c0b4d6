"""Prompt templates for trace models, by name, with ``{instruction}`` where the operator's words go.

RoboTracer was trained on two fixed phrasings (2D and 3D object-centric traces) and answers best when
asked exactly that way; general VLMs (Qwen-VL, RoboBrain, Gemini) need the output format spelled out.
A backend option ``prompt`` takes one of these names or a template of its own.
"""

from __future__ import annotations

from spatial_trace_ros.errors import ConfigError

PLACEHOLDER = "{instruction}"

PROMPTS: dict[str, str] = {
    # The RoboTracer/TraceSpatial-Bench task phrasings (protocol facts, kept verbatim).
    "robotracer_3d": (
        'Point the 3D object-centric visual trace for the task "{instruction}". Your answer should be formatted '
        "as a list of tuples, i.e., [(x1, y1, d1), (x2, y2, d2), ...], where each tuple contains the x and y "
        "coordinates of the point, and d is the depth of the point."
    ),
    "robotracer_2d": (
        'Point the 2D object-centric visual trace for the task "{instruction}". Your answer should be formatted '
        "as a list of tuples, i.e., [(x1, y1), (x2, y2), ...], where each tuple contains the x and y "
        "coordinates of the point."
    ),
    # General chat VLMs: ask for the final answer as one JSON list, on the 0-1000 scale.
    "json_trace_2d": (
        "You control a robot arm seen in this image. Task: {instruction}. Give up to 10 key points of the path "
        "the manipulated object should follow, from its current position to the goal. Coordinates are x, y on "
        "a 0-1000 scale of the image width and height. End your answer with the points as one JSON list: "
        "[[x1, y1], [x2, y2], ...]."
    ),
    "json_trace_3d": (
        "You control a robot arm seen in this image. Task: {instruction}. Give up to 10 key points of the path "
        "the manipulated object should follow, from its current position to the goal. Coordinates are x, y on "
        "a 0-1000 scale of the image width and height and d, the depth along the camera axis in metres. End "
        "your answer with the points as one JSON list: [[x1, y1, d1], [x2, y2, d2], ...]."
    ),
    "gemini_points": (
        "Task for a robot arm: {instruction}. Point to up to 10 key points of the path the manipulated object "
        'should follow, in order. Answer as JSON: [{"point": [y, x], "label": "<index>"}, ...] with '
        "coordinates normalised to 0-1000."
    ),
}


def resolve_prompt(prompt: str) -> str:
    """A named template's text, or ``prompt`` itself when it is a template; it must hold ``{instruction}``."""
    template = PROMPTS.get(prompt, prompt)
    if PLACEHOLDER not in template:
        raise ConfigError(
            f"prompt {prompt[:80]!r} is neither a known template ({', '.join(sorted(PROMPTS))}) nor a template "
            f"containing {PLACEHOLDER}"
        )
    return template


def render_prompt(template: str, instruction: str) -> str:
    """The template with the instruction filled in (plain substitution: JSON braces stay as written)."""
    instruction = " ".join(instruction.split())
    if not instruction:
        raise ConfigError("the instruction is empty; say what the robot should do")
    return template.replace(PLACEHOLDER, instruction)
