"""FrameSynchronizer picks the newest color frame with a depth frame close in time, or says why not;
the overlay marks start, end, invalid and depth-check-flagged points."""

from __future__ import annotations

import numpy as np
import pytest

from spatial_trace_ros.trace.frame_sync import FrameSynchronizer, NoFrameError
from spatial_trace_ros.trace.overlay import END_RGB, FLAGGED_RGB, INVALID_RGB, START_RGB, draw_trace_overlay

TOPICS = {"color": "/cam/color", "depth": "/cam/depth", "info": "/cam/info"}


def filled(colors: list[float], depths: list[float], info: bool = True) -> FrameSynchronizer:
    sync = FrameSynchronizer(TOPICS, history=4)
    for t in colors:
        sync.add_color(t, f"color@{t}")
    for t in depths:
        sync.add_depth(t, f"depth@{t}")
    if info:
        sync.set_info("info")
    return sync


def test_newest_matched_pair_is_returned() -> None:
    sync = filled([10.0, 10.1, 10.2], [10.0, 10.1, 10.19])
    m = sync.latest(now_s=10.25, max_age_s=1.0, max_skew_s=0.02, need_depth=True)
    assert (m.color, m.depth, m.info, m.stamp_s) == ("color@10.2", "depth@10.19", "info", 10.2)
    assert m.skew_s == pytest.approx(0.01)


def test_an_older_color_frame_is_used_when_the_newest_has_no_depth_yet() -> None:
    sync = filled([10.0, 10.1, 10.2], [10.0, 10.1])
    m = sync.latest(now_s=10.25, max_age_s=1.0, max_skew_s=0.02, need_depth=True)
    assert (m.color, m.depth) == ("color@10.1", "depth@10.1")
    # Without depth the newest color frame is taken.
    assert sync.latest(10.25, 1.0, 0.02, need_depth=False).color == "color@10.2"


@pytest.mark.parametrize(
    ("sync", "now_s", "message"),
    [
        (filled([], []), 1.0, "no color image received yet on /cam/color"),
        (filled([1.0], [1.0], info=False), 1.0, "no camera_info received yet on /cam/info"),
        (filled([1.0], []), 1.0, "no aligned depth image received yet on /cam/depth"),
        (filled([1.0], [1.0]), 3.5, r"the newest color image is 2.50 s old \(max_frame_age_s = 1\)"),
        (filled([1.0, 1.1], [0.5]), 1.2, r"no depth image within max_sync_skew_s = 0.02 s .*closest 0.500 s"),
    ],
)
def test_refusals_name_the_topic_and_the_setting(sync: FrameSynchronizer, now_s: float, message: str) -> None:
    with pytest.raises(NoFrameError, match=message):
        sync.latest(now_s, max_age_s=1.0, max_skew_s=0.02, need_depth=True)


def test_overlay_marks_start_end_invalid_and_flagged_points() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    uv = np.array([[20.0, 50.0], [60.0, 50.0], [100.0, 50.0], [180.0, 50.0]])
    out = draw_trace_overlay(image, uv, valid=np.array([True, False, True, True]), flagged=[2], label="put it")
    assert not np.shares_memory(out, image) and image.max() == 0
    np.testing.assert_array_equal(out[50, 20], START_RGB)
    np.testing.assert_array_equal(out[50, 180], END_RGB)
    np.testing.assert_array_equal(out[50, 60], INVALID_RGB)
    ring = np.all(out[40:61, 90:111] == FLAGGED_RGB, axis=2)  # a ring 7 px around the flagged point
    assert ring.sum() > 10 and not ring[10, 10]
    assert not np.any(np.all(out[40:61, 50:71] == FLAGGED_RGB, axis=2))  # none around unflagged points
    assert out[2:12, 2:30].max() == 255  # the label's white text
