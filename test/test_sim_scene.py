"""The seeded scene generator and the simulated camera's calibration file."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.geometry import load_calibration, project
from spatial_trace_ros.sim.scene import (
    PLACEMENT_GAP_M,
    PLACEMENT_X_M,
    PLACEMENT_Y_M,
    SceneSpec,
    generate_scene,
    load_scene,
    sim_intrinsics,
    write_calibration,
)

SEEDS = range(12)


def test_same_seed_same_scene_and_different_seeds_differ() -> None:
    assert generate_scene(7).to_json() == generate_scene(7).to_json()
    positions = {tuple(o.position_m for o in generate_scene(s).objects) for s in SEEDS}
    assert len(positions) == len(SEEDS)


@pytest.mark.parametrize("seed", SEEDS)
def test_objects_rest_on_the_table_apart_with_unique_names(seed: int) -> None:
    scene = generate_scene(seed, n_objects=4, n_receptacles=2)
    assert len(scene.objects) == 6
    assert len(set(scene.names)) == 6
    assert sum(o.is_receptacle for o in scene.objects) == 2
    for obj in scene.objects:
        assert obj.name == f"{obj.colour} {obj.kind}"
        assert obj.bottom_z_m == pytest.approx(0.0)
        assert PLACEMENT_X_M[0] <= obj.position_m[0] <= PLACEMENT_X_M[1]
        assert PLACEMENT_Y_M[0] <= obj.position_m[1] <= PLACEMENT_Y_M[1]
    for i, a in enumerate(scene.objects):
        for b in scene.objects[i + 1 :]:
            gap = math.dist(a.position_m[:2], b.position_m[:2]) - a.footprint_radius_m - b.footprint_radius_m
            assert gap >= PLACEMENT_GAP_M - 1e-9, (a.name, b.name)


@pytest.mark.parametrize("seed", SEEDS)
def test_default_camera_sees_every_object(seed: int) -> None:
    scene = generate_scene(seed)
    intr = sim_intrinsics(scene.camera)
    camera_T_base = scene.camera.parent_T_camera.inverse()
    for obj in scene.objects:
        uv = project(camera_T_base.apply(obj.top_centre), intr)[0]
        assert 20 < uv[0] < intr.width - 20 and 20 < uv[1] < intr.height - 20, obj.name


def test_scene_json_round_trips(tmp_path) -> None:
    scene = generate_scene(3, camera_mount="eye_in_hand", camera_jitter_m=0.02, vary_lighting=True)
    path = tmp_path / "scene.json"
    path.write_text(scene.to_json())
    assert load_scene(path) == scene


def test_bad_scene_requests_are_refused_with_reasons(tmp_path) -> None:
    with pytest.raises(ConfigError, match="1 to 8 items"):
        generate_scene(0, n_objects=7, n_receptacles=3)
    with pytest.raises(ConfigError, match="not found"):
        load_scene(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"seed": 1}')
    with pytest.raises(ConfigError, match="objects"):
        load_scene(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match=r"unknown scene object 'golden goose'; available: "):
        generate_scene(0).item("golden goose")


def test_jitter_moves_the_camera_deterministically() -> None:
    plain = generate_scene(5).camera
    a = generate_scene(5, camera_jitter_m=0.03, camera_jitter_rad=0.05).camera
    b = generate_scene(5, camera_jitter_m=0.03, camera_jitter_rad=0.05).camera
    assert a == b
    offset = np.subtract(a.translation_m, plain.translation_m)
    assert 0 < np.abs(offset).max() <= 0.03


@pytest.mark.parametrize("mount", ["eye_to_hand", "eye_in_hand"])
def test_calibration_file_loads_as_the_cameras_true_pose(tmp_path, mount: str) -> None:
    scene = generate_scene(2, camera_mount=mount)
    path = write_calibration(scene, tmp_path / "calibration.yaml")
    cal = load_calibration(path)
    assert cal.mode == mount
    assert cal.camera_frame == "camera_color_optical_frame"
    np.testing.assert_allclose(cal.transform.matrix, scene.camera.parent_T_camera.matrix, atol=1e-8)
    assert cal.transform.parent == ("base" if mount == "eye_to_hand" else "tool0")


def test_scene_spec_is_validated() -> None:
    data = generate_scene(0).model_dump()
    data["objects"][0]["kind"] = "teapot"
    with pytest.raises(ValueError, match="kind"):
        SceneSpec.model_validate(data)


def test_sim_scene_command_writes_a_loadable_scene(tmp_path, capsys) -> None:
    import cv2

    from spatial_trace_ros.cli import main

    out = tmp_path / "scene"
    assert main(["sim-scene", "--out", str(out), "--seed", "3", "--width", "160", "--height", "120"]) == 0
    scene = load_scene(out / "scene.json")
    assert scene == generate_scene(3, width=160, height=120)
    assert load_calibration(out / "calibration.yaml").mode == "eye_to_hand"
    assert cv2.imread(str(out / "color.png")).shape == (120, 160, 3)
    depth = cv2.imread(str(out / "depth.png"), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16 and 500 < np.median(depth) < 2000  # millimetres
    assert "calibration.yaml" in capsys.readouterr().out
    assert main(["sim-scene", "--out", str(out), "--n-objects", "9"]) == 2
    assert "n_objects=9" in capsys.readouterr().err
