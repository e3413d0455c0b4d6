"""``spatial-trace calibrate``: hand-eye calibration with the stack's own robot drivers and cameras.

    spatial-trace calibrate board --out board.png                    # print the board (to scale at --dpi)
    spatial-trace calibrate --robot ur5e --robot-ip 192.168.1.10 --camera realsense --out cell.yaml
    spatial-trace calibrate --teach ...                               # sample where you put the arm
    spatial-trace calibrate --sim --scene-seed 3 --out cal.yaml       # the whole procedure in MuJoCo
    spatial-trace calibrate verify --calibration cell.yaml --robot ur5e --robot-ip ... --camera realsense
    spatial-trace calibrate import ~/.ros2/easy_handeye2/calibrations/NAME.calib --out cell.yaml

The calibration file written is the one place the camera pose lives (docs/calibration.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HELP = "hand-eye calibration (eye-to-hand or eye-in-hand) with a ChArUco board; print a board; verify; import"
ACTIONS = ("run", "board", "verify", "import")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=ACTIONS, default="run",
                        help="run (default): calibrate; board: write the board image; verify: check a calibration "
                             "against a fresh board observation; import: convert an easy_handeye2 result")
    parser.add_argument("source_file", nargs="?", type=Path, help="import: the easy_handeye2 .calib file")
    parser.add_argument("--out", type=Path, help="the calibration YAML to write (board: the PNG)")
    parser.add_argument("--mode", choices=["eye_to_hand", "eye_in_hand"], default="eye_to_hand",
                        help="eye_to_hand: fixed camera, board on the flange; eye_in_hand: camera on the flange, "
                             "board fixed (default eye_to_hand)")
    board = parser.add_argument_group("board")
    board.add_argument("--squares-x", type=int, default=5, help="squares along the board's width (default 5)")
    board.add_argument("--squares-y", type=int, default=7, help="squares along the board's height (default 7)")
    board.add_argument("--square-m", type=float, default=0.03, help="square edge as printed [m] (default 0.03)")
    board.add_argument("--marker-m", type=float, default=0.022, help="marker edge as printed [m] (default 0.022)")
    board.add_argument("--dictionary", default="DICT_5X5_100", help="ArUco dictionary (default DICT_5X5_100)")
    board.add_argument("--dpi", type=float, default=300.0, help="board: print resolution [dots per inch]")
    robot = parser.add_argument_group("robot and camera")
    robot.add_argument("--sim", action="store_true", help="the simulated cell of `spatial-trace sim-scene`")
    robot.add_argument("--scene-seed", type=int, default=0, help="--sim: the scene's seed (default 0)")
    robot.add_argument("--robot", default="ur5e", help="robot model: ur5, ur5e, g1_left_arm, g1_right_arm")
    robot.add_argument("--driver", default="", help="robot driver (default: the robot's own: ur_rtde, g1_arm_sdk)")
    robot.add_argument("--robot-ip", default="", help="UR controller address")
    robot.add_argument("--driver-options-json", default="{}", help="further driver options as a JSON object")
    robot.add_argument("--camera", default="realsense", help="camera source: realsense, replay, sim")
    robot.add_argument("--camera-options-json", default="{}", help="camera source options as a JSON object")
    robot.add_argument("--safety-file", type=Path, help="safety limits the poses are checked against "
                                                        "(default: config/safety.yaml's values)")
    poses = parser.add_argument_group("pose set")
    poses.add_argument("--teach", action="store_true", help="no automatic poses: move the arm by hand (freedrive) "
                                                             "and press Enter at each pose")
    poses.add_argument("--poses", type=int, default=12, help="automatic poses, the start pose included (default 12)")
    poses.add_argument("--tilt-deg", type=float, default=20.0, help="largest tilt of the tool [deg] (default 20)")
    poses.add_argument("--spin-deg", type=float, default=30.0, help="largest spin about the tool axis [deg]")
    poses.add_argument("--spread-m", type=float, default=0.08, help="half-size of the box of positions [m]")
    poses.add_argument("--pivot-m", type=float, default=None,
                       help="rotate about the point this far along the tool z [m] (default: 0 eye-to-hand, the "
                            "camera-to-board distance 0.3 eye-in-hand)")
    poses.add_argument("--workspace-poses", type=int, default=6,
                       help="eye-to-hand: after the first poses, this many more spread over the region the traces "
                            "use, planned from a first solve (default 6; 0: none)")
    poses.add_argument("--samples-dir", type=Path, help="keep every sample's image and pose here")
    limits = parser.add_argument_group("limits (refuse to write beyond these)")
    limits.add_argument("--max-reprojection-px", type=float, default=1.5, help="board reprojection RMS [px]")
    limits.add_argument("--max-position-mm", type=float, default=3.0, help="board position consistency RMS [mm]")
    limits.add_argument("--max-rotation-deg", type=float, default=2.0, help="board rotation consistency RMS [deg]")
    limits.add_argument("--min-samples", type=int, default=6, help="samples with the board found, at least")
    parser.add_argument("--calibration", type=Path, help="verify: the calibration file to check")


def _json(text: str, option: str) -> dict[str, Any]:
    from spatial_trace_ros.errors import ConfigError

    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as err:
        raise ConfigError(f"{option} is not JSON ({err}); write an object like '{{\"key\": 1}}'") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{option} must be a JSON object")
    return value


def _board(args: argparse.Namespace) -> Any:
    from spatial_trace_ros.calibration.board import board_spec

    return board_spec(squares_x=args.squares_x, squares_y=args.squares_y, square_m=args.square_m,
                      marker_m=args.marker_m, dictionary=args.dictionary)


def _limits(args: argparse.Namespace) -> Any:
    from spatial_trace_ros.calibration.handeye import CalibrationLimits

    return CalibrationLimits(max_reprojection_rms_px=args.max_reprojection_px,
                             max_board_position_rms_mm=args.max_position_mm,
                             max_board_rotation_rms_deg=args.max_rotation_deg, min_samples=args.min_samples)


def _require_out(args: argparse.Namespace, what: str) -> Path:
    from spatial_trace_ros.errors import ConfigError

    if args.out is None:
        raise ConfigError(f"say where to write the {what} with --out FILE")
    return args.out


def _write_board(args: argparse.Namespace) -> int:
    import cv2

    board = _board(args)
    out = _require_out(args, "board image")
    px_per_m = args.dpi / 0.0254
    margin = round(0.01 * px_per_m)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), board.image(px_per_m, margin))
    w, h = board.size_m
    print(f"{out}: {board.describe()}, {w * 1000:g} x {h * 1000:g} mm plus a 10 mm margin at {args.dpi:g} dpi; "
          "print at 100 % scale and measure one square: pass its edge as --square-m")
    return 0


def _import(args: argparse.Namespace) -> int:
    from spatial_trace_ros.calibration.easy_handeye import load_easy_handeye
    from spatial_trace_ros.errors import ConfigError
    from spatial_trace_ros.geometry.calibration import write_calibration

    if args.source_file is None:
        raise ConfigError("give the easy_handeye2 file: spatial-trace calibrate import FILE.calib --out cal.yaml")
    calibration = load_easy_handeye(args.source_file)
    out = _require_out(args, "calibration")
    write_calibration(calibration, out, f"Imported from {args.source_file} by spatial-trace calibrate import.")
    print(f"{out}: {calibration.mode}, {calibration.transform!r}")
    if "optical" not in calibration.camera_frame:
        print(f"note: camera frame {calibration.camera_frame!r} is not an optical frame; the stack's traces are in "
              "the color optical frame (x right, y down, z forward): calibrate to that frame", file=sys.stderr)
    return 0


def _robot_and_camera(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from spatial_trace_ros.camera.source import make_frame_source
    from spatial_trace_ros.robots.driver import DEFAULT_DRIVER, driver_factory
    from spatial_trace_ros.robots.model import make_robot_model

    model = make_robot_model(args.robot)
    options = _json(args.driver_options_json, "--driver-options-json")
    if args.robot_ip:
        options["robot_ip"] = args.robot_ip
    driver = driver_factory(args.driver or DEFAULT_DRIVER.get(args.robot, "sim"))(model, **options)
    source = make_frame_source(args.camera, **_json(args.camera_options_json, "--camera-options-json"))
    return model, driver, source


def _pose_options(args: argparse.Namespace, pivot_default: float) -> Any:
    from spatial_trace_ros.calibration.poses import PoseSetOptions

    return PoseSetOptions(n_poses=args.poses, tilt_deg=args.tilt_deg, spin_deg=args.spin_deg, spread_m=args.spread_m,
                          pivot_m=pivot_default if args.pivot_m is None else args.pivot_m,
                          workspace_poses=args.workspace_poses)


def _safety(args: argparse.Namespace) -> Any:
    from spatial_trace_ros.planning.safety import SafetyConfig, load_safety_config

    return load_safety_config(args.safety_file) if args.safety_file else SafetyConfig()


def _ask_operator(index: int) -> bool:
    answer = input(f"sample {index + 1}: move the arm (freedrive) so the camera sees the board, keep it still, "
                   "then Enter (q + Enter: done) ")
    return answer.strip().lower() != "q"


def _report(result: Any) -> None:
    r = result.residuals
    print(f"samples used {len(result.used)}, rejected {len(result.rejected)}")
    for index, why in result.rejected:
        print(f"  rejected sample {index}: {why}")
    print(f"board reprojection RMS {r.reprojection_rms_px:.3f} px (worst sample {r.reprojection_worst_sample_px:.3f})"
          f"; board pose consistency {r.board_position_rms_mm:.2f} mm / {r.board_rotation_rms_deg:.3f} deg RMS"
          f" (max {r.board_position_max_mm:.2f} mm / {r.board_rotation_max_deg:.3f} deg); board scale "
          f"{r.board_scale:.4f}")
    for name, (mm, deg) in result.methods.items():
        print(f"  {name}: {mm:.2f} mm, {deg:.3f} deg from the result")


def _calibrate(args: argparse.Namespace) -> int:
    from spatial_trace_ros.calibration import procedure
    from spatial_trace_ros.calibration.handeye import pose_difference
    from spatial_trace_ros.errors import ConfigError
    from spatial_trace_ros.geometry.calibration import write_calibration
    from spatial_trace_ros.robots.model import make_robot_model

    board, limits = _board(args), _limits(args)
    out = _require_out(args, "calibration")
    say = print
    truth = None
    if args.sim:
        if args.teach:
            raise ConfigError("--teach needs a robot an operator can move by hand; leave out --sim (or --teach)")
        from spatial_trace_ros.calibration.sim_cell import collect_in_sim, sim_calibration_cell
        from spatial_trace_ros.sim.scene import OPTICAL_FRAME, sim_intrinsics

        cell = sim_calibration_cell(args.scene_seed, args.mode, args.robot, board)
        model, truth, camera_frame = make_robot_model(args.robot), cell.truth_camera, OPTICAL_FRAME
        collection = collect_in_sim(cell, _pose_options(args, cell.pivot_m), _safety(args), say)
        intrinsics = sim_intrinsics(cell.world.scene.camera)
        source_name = f"spatial-trace calibrate --sim --scene-seed {args.scene_seed}"
    else:
        model, driver, source = _robot_and_camera(args)
        driver.connect()
        try:
            with source:
                if args.teach:
                    collection = procedure.collect_taught(driver, source, board, _ask_operator, progress=say)
                else:
                    pivot = 0.0 if args.mode == "eye_to_hand" else 0.3
                    collection = procedure.collect_automatic(driver, source, model, _safety(args), board,
                                                             _pose_options(args, pivot), progress=say, mode=args.mode)
                intrinsics = source.intrinsics
        finally:
            driver.disconnect()
        source_name = f"spatial-trace calibrate ({args.robot}, {args.camera})"
        camera_frame = next((s.camera_frame for s in collection.samples if s.camera_frame), "")
    if args.samples_dir:
        print(f"samples and images: {procedure.save_samples(collection, args.samples_dir)}")
    result = procedure.solve_samples(args.mode, collection, board, intrinsics, limits)
    _report(result)
    procedure.judged(result, limits)
    calibration = procedure.to_calibration(result, model, camera_frame, source_name, board)
    write_calibration(calibration, out, f"Hand-eye calibration ({args.mode}) written by {source_name}.\n"
                      "The one place the camera pose lives: the planner reads it, TF publishes it.")
    print(f"wrote {out}: {calibration.transform!r}")
    if truth is not None:
        mm, deg = pose_difference(result.camera, truth)
        print(f"simulation ground truth: the result is {mm:.2f} mm and {deg:.3f} deg off")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from spatial_trace_ros.calibration.board import BoardSpec, detect_board
    from spatial_trace_ros.calibration.procedure import verify
    from spatial_trace_ros.errors import ConfigError
    from spatial_trace_ros.geometry.calibration import load_calibration

    if args.calibration is None:
        raise ConfigError("give the calibration to check: spatial-trace calibrate verify --calibration FILE ...")
    calibration = load_calibration(args.calibration)
    layout = calibration.record.board
    board = BoardSpec(**{k: layout[k] for k in BoardSpec.model_fields}) if layout else _board(args)
    if args.sim:
        from spatial_trace_ros.calibration.sim_cell import sim_calibration_cell
        from spatial_trace_ros.sim.camera import SimFrameSource

        cell = sim_calibration_cell(args.scene_seed, calibration.mode, args.robot, board)
        with SimFrameSource(world=cell.world, stamp_clock="sim") as camera:
            frame = camera.read(timeout_s=30.0)
        base_T_tool = cell.world.tool_pose()
    else:
        _, driver, source = _robot_and_camera(args)
        driver.connect()
        try:
            with source:
                frame = source.read(timeout_s=5.0)
                base_T_tool = driver.read_state().tcp
        finally:
            driver.disconnect()
    check = verify(calibration, base_T_tool, detect_board(frame.color, board, frame.intrinsics))
    print(f"error at the board: {check.rms_mm:.2f} mm RMS, {check.max_mm:.2f} mm max over {check.n_corners} corners")
    return 0


def run(args: argparse.Namespace) -> int:
    return {"board": _write_board, "import": _import, "verify": _verify, "run": _calibrate}[args.action](args)
