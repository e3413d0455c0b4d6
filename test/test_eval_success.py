"""The TraceSpatial-Bench success rule, its collision check, the image-plane analogue, and the
decomposed (RewardMap-style) score: hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spatial_trace_ros.eval.reward import (
    DecomposedScore,
    ScoreWeights,
    aggregate_scores,
    decomposed_score,
    proximity_credit,
)
from spatial_trace_ros.eval.success import (
    OrientedBox,
    SuccessCriteria,
    VoxelScene,
    collision_fraction,
    evaluate_success,
    evaluate_success_image_plane,
)
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics

C, S = math.cos(math.pi / 4), math.sin(math.pi / 4)
ROT_Z45 = np.array([[C, -S, 0.0], [S, C, 0.0], [0.0, 0.0, 1.0]])  # columns: box axes in the camera frame


def test_box_distance_known_answers() -> None:
    box = OrientedBox(center=[1.0, 0.0, 2.0], extent_m=[0.4, 0.2, 0.2], rotation=ROT_Z45)
    # The box's long axis points along (C, S, 0): a point 0.2 m along it is on the face; 0.5 m is 0.3 m out.
    on_face = np.array([1.0 + 0.2 * C, 0.2 * S, 2.0])
    out_long = np.array([1.0 + 0.5 * C, 0.5 * S, 2.0])
    # 0.3 m along the short axis (-S, C, 0): 0.2 m beyond its 0.1 m half-extent.
    out_short = np.array([1.0 - 0.3 * S, 0.3 * C, 2.0])
    # Off a corner: 0.1 m beyond the long face and 0.1 m beyond the short face -> 0.1*sqrt(2).
    corner = np.array([1.0, 0.0, 2.0]) + 0.3 * np.array([C, S, 0.0]) + 0.2 * np.array([-S, C, 0.0])
    d = box.distance_m(np.array([box.center, on_face, out_long, out_short, corner]))
    np.testing.assert_allclose(d, [0.0, 0.0, 0.3, 0.2, 0.1 * math.sqrt(2)], atol=1e-12)
    # The corners of the box are at distance 0 and 8 of them.
    assert np.allclose(box.distance_m(box.corners()), 0.0) and box.corners().shape == (8, 3)


def test_box_rejects_a_non_rotation() -> None:
    with pytest.raises(ValueError, match="rotation"):
        OrientedBox(center=[0, 0, 1], extent_m=[0.1, 0.1, 0.1], rotation=np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(ValueError, match="extent"):
        OrientedBox(center=[0, 0, 1], extent_m=[0.1, -0.1, 0.1], rotation=np.eye(3))


BOX = OrientedBox(center=[1.0, 0.0, 2.0], extent_m=[0.2, 0.2, 0.2], rotation=np.eye(3))
REFERENCE = np.array([[0.0, 0.0, 2.0], [0.5, -0.3, 2.0], [1.0, 0.0, 2.0]])


def test_success_rule_start_and_end() -> None:
    good = np.array([[0.1, 0.1, 2.0], [0.5, -0.3, 2.0], [1.0, 0.05, 2.0]])
    r = evaluate_success(good, REFERENCE, BOX)
    assert r.start_error == pytest.approx(math.sqrt(0.02))
    assert r.end_error == 0.0 and r.start_ok and r.end_ok and r.success
    assert r.collision_free is None  # no scene given: not checked

    # Start 0.25 m off: start fails, end still fine.
    late = good.copy()
    late[0] = [0.25, 0.0, 2.0]
    r = evaluate_success(late, REFERENCE, BOX)
    assert not r.start_ok and r.end_ok and not r.success


def test_end_uses_any_of_the_last_three_points() -> None:
    # Passes through the box at the third-from-last point, then wanders 0.5 m away.
    trace = np.array([[0.0, 0.0, 2.0], [1.0, 0.0, 2.0], [1.25, 0.0, 2.0], [1.6, 0.0, 2.0]])
    r = evaluate_success(trace, REFERENCE, BOX)
    assert r.end_error == 0.0 and r.end_ok
    # One more step away: now the box point is fourth from last; best of the last three is 0.15 m out.
    longer = np.vstack([trace, [[1.9, 0.0, 2.0]]])
    r = evaluate_success(longer, REFERENCE, BOX)
    assert r.end_error == pytest.approx(0.15) and r.end_ok
    r = evaluate_success(longer, REFERENCE, BOX, SuccessCriteria(end_threshold_m=0.1))
    assert not r.end_ok
    r = evaluate_success(longer, REFERENCE, BOX, SuccessCriteria(end_last_points=4))
    assert r.end_error == 0.0


def test_start_against_object_points() -> None:
    obj = np.array([[0.3, 0.0, 2.0], [0.35, 0.0, 2.0]])
    r = evaluate_success(np.array([[0.05, 0.0, 2.0], [1.0, 0.0, 2.0]]), REFERENCE, BOX, object_points_m=obj)
    assert r.start_error == pytest.approx(0.25) and not r.start_ok  # nearest object point, not the reference start


def _cube_points(center: np.ndarray, side_m: float, step_m: float) -> np.ndarray:
    ax = np.arange(-side_m / 2, side_m / 2 + 1e-9, step_m)
    g = np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), axis=-1).reshape(-1, 3)
    return g + center


def test_collision_check_with_a_wall() -> None:
    # A 4 cm cube of object points starting at x=0, a wall 2 cm thick at x = 0.5 m, spanning y, z.
    obj = _cube_points(np.array([0.0, 0.0, 2.0]), 0.04, 0.01)
    ys, zs = np.meshgrid(np.arange(-0.3, 0.3, 0.01), np.arange(1.7, 2.3, 0.01))
    wall = np.column_stack([np.full(ys.size, 0.505), ys.ravel(), zs.ravel()])
    scene = VoxelScene(wall, voxel_size_m=0.02)
    through = np.array([[0.0, 0.0, 2.0], [1.0, 0.0, 2.0]])  # straight through the wall
    over = np.array([[0.0, 0.0, 2.0], [0.0, -0.5, 2.0], [1.0, -0.5, 2.0], [1.0, 0.0, 2.0]])  # around it (y < -0.3)
    assert collision_fraction(through, obj, scene) > 0.2
    assert collision_fraction(over, obj, scene) == 0.0
    box = OrientedBox(center=[1.0, 0.0, 2.0], extent_m=[0.2, 0.2, 0.2], rotation=np.eye(3))
    ref = np.array([[0.0, 0.0, 2.0], [1.0, 0.0, 2.0]])
    bad = evaluate_success(through, ref, box, object_points_m=obj, scene=scene)
    good = evaluate_success(over, ref, box, object_points_m=obj, scene=scene)
    assert bad.start_ok and bad.end_ok and bad.collision_free is False and not bad.success
    assert good.collision_free is True and good.success


def test_contact_below_twenty_percent_is_tolerated() -> None:
    # Points sit at voxel centres (2 cm voxels) so no coordinate lies on a voxel boundary.
    # Object: 5x5x5 points, layers at z = 1.01 ... 1.09 (voxel rows 50 ... 54).
    ax = np.arange(-0.04, 0.041, 0.02)
    obj = np.stack(np.meshgrid(ax, ax, 1.05 + ax, indexing="ij"), axis=-1).reshape(-1, 3)
    # Table two voxel rows thick: z = 0.99 and 1.01 (rows 49 and 50). The object's bottom layer rests in row 50.
    xs, ys, zs = np.meshgrid(np.arange(-0.5, 1.5, 0.01), np.arange(-0.5, 0.5, 0.01), [0.99, 1.01])
    scene = VoxelScene(np.column_stack([xs.ravel(), ys.ravel(), zs.ravel()]), voxel_size_m=0.02)
    slide = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 1.0]])
    frac = collision_fraction(slide, obj, scene)
    assert frac == pytest.approx(0.2)  # one layer of five shares the table's voxels: contact, not collision
    assert frac <= SuccessCriteria().max_overlap_fraction
    # Sliding 2 cm lower part of the way: two of five layers inside the table, 40 %: a collision.
    sunk = np.array([[0.0, 0.0, 1.0], [0.3, 0.0, 1.0], [0.3, 0.0, 0.98], [1.0, 0.0, 0.98]])
    assert collision_fraction(sunk, obj, scene) == pytest.approx(0.4)


def test_voxel_scene_lookup() -> None:
    scene = VoxelScene(np.array([[0.01, 0.01, 0.01], [0.05, 0.0, 0.0]]), voxel_size_m=0.02)
    assert scene.n_voxels == 2
    hits = scene.occupied(np.array([[0.019, 0.0, 0.0], [0.021, 0.0, 0.0], [0.041, 0.001, 0.001], [-0.001, 0, 0]]))
    assert hits.tolist() == [True, False, True, False]
    assert scene.without(np.array([[0.0, 0.0, 0.0]])).n_voxels == 1


def test_image_plane_rule_known_answer() -> None:
    intr = CameraIntrinsics(640, 480, fx=500.0, fy=500.0, cx=320.0, cy=240.0)
    ref = np.array([[0.0, 0.0, 2.0], [0.4, 0.0, 2.0]])  # projects to (320, 240), (420, 240)
    box = OrientedBox(center=[0.4, 0.0, 2.0], extent_m=[0.2, 0.2, 0.0], rotation=np.eye(3))  # square 50 px wide
    # Radii: 500 * 0.2 / 2 = 50 px. Start 30 px off; end 10 px right of the square's right edge (445).
    uv = np.array([[350.0, 240.0], [455.0, 240.0]])
    r = evaluate_success_image_plane(uv, ref, box, intr)
    assert r.start_error == pytest.approx(30.0) and r.start_ok
    assert r.end_error == pytest.approx(10.0) and r.end_ok and r.success
    far = np.array([[390.0, 240.0], [600.0, 240.0]])
    r = evaluate_success_image_plane(far, ref, box, intr)
    assert r.start_error == pytest.approx(70.0) and not r.start_ok
    assert r.end_error == pytest.approx(5.0) and r.end_ok  # (390, 240) is 5 px left of the square


def test_criteria_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="voxel_size_m"):
        SuccessCriteria(voxel_size_m=0.0)
    with pytest.raises(ValueError, match="end_last_points"):
        SuccessCriteria(end_last_points=0)


# -- decomposed score ----------------------------------------------------------------------------
def test_proximity_credit() -> None:
    assert proximity_credit(0.0, 0.2) == 1.0
    assert proximity_credit(0.2, 0.2) == pytest.approx(0.5)
    assert proximity_credit(0.4, 0.2) == pytest.approx(0.2)
    assert proximity_credit(float("nan"), 0.2) == 0.0


def test_decomposed_score_known_answers() -> None:
    # Success, start 0.2 m off (credit 0.5), end in the box (credit 1), nDTW 0.7: detail = 2.2 / 3.
    s = decomposed_score(True, True, 0.2, 0.0, 0.2, 0.2, 0.7, difficulty=1)
    assert s.detail == pytest.approx(2.2 / 3)
    assert s.total == pytest.approx(0.2 + 0.5 + 0.3 * 2.2 / 3)
    assert s.difficulty_weight == 1.0
    # A near miss keeps its format and detail credit but loses the final part.
    miss = decomposed_score(True, False, 0.2, 0.0, 0.2, 0.2, 0.7, difficulty=3)
    assert miss.final == 0.0 and miss.total == pytest.approx(0.2 + 0.3 * 2.2 / 3)
    assert miss.difficulty_weight == 1.5
    # No valid format: nothing at all.
    none = decomposed_score(False, True, 0.0, 0.0, 0.2, 0.2, 1.0)
    assert (none.format, none.final, none.detail, none.total) == (0.0, 0.0, 0.0, 0.0)


def test_aggregate_weights_harder_samples_more() -> None:
    easy_fail = DecomposedScore(1.0, 0.0, 0.0, 0.2, 1.0)
    hard_pass = DecomposedScore(1.0, 1.0, 1.0, 1.0, 2.0)
    assert aggregate_scores([easy_fail, hard_pass]) == pytest.approx((0.2 * 1 + 1.0 * 2) / 3)
    assert math.isnan(aggregate_scores([]))


def test_score_weights_validation_and_lookup() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        ScoreWeights(format_weight=0.5, final_weight=0.5, detail_weight=0.5)
    w = ScoreWeights(difficulty_weights={1: 1.0, 3: 2.0})
    assert w.difficulty_weight(0) == 1.0  # below the table: the lowest level
    assert w.difficulty_weight(2) == 1.0  # a gap: the level below
    assert w.difficulty_weight(9) == 2.0  # above the table: the highest level
