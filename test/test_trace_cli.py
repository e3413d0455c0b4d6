"""``spatial-trace parse`` as a user runs it: answer on stdin, JSON on stdout, exit 2 with the reason."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def run_parse(answer: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spatial_trace_ros.cli", "parse", *args], input=answer,
                          capture_output=True, text=True, timeout=60)


def test_parse_prints_pixel_points_with_depth_or_null() -> None:
    out = run_parse("<think>hmm [(1, 1), (2, 2)]</think>[(500, 500, 1.2), (600, 400, 1.1)]",
                    "--convention", "robotracer", "--width", "640", "--height", "480")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"points": [[320.0, 240.0, 1.2], [384.0, 192.0, 1.1]]}
    out = run_parse('```json\n[{"point": [500, 250], "label": "0"}, {"point": [250, 500]}]\n```',
                    "--convention", "gemini", "--width", "1000", "--height", "800")
    assert json.loads(out.stdout) == {"points": [[250.0, 400.0, None], [500.0, 200.0, None]]}


@pytest.mark.parametrize(
    ("answer", "args", "message"),
    [
        ("I cannot see it.", ("--convention", "robotracer"), "error: no list of points found"),
        ("[(320, 240), (700, 900)]", ("--convention", "roborefer"), "x = 320 at point #0 is outside 0..1"),
        ("[(1, 2), (3, 4)]", ("--convention", "qwen"), "unknown answer convention 'qwen'; available:"),
    ],
)
def test_bad_answers_exit_2_with_the_reason(answer: str, args: tuple, message: str) -> None:
    out = run_parse(answer, *args, "--width", "640", "--height", "480")
    assert out.returncode == 2 and out.stdout == ""
    assert message in out.stderr and "Traceback" not in out.stderr
