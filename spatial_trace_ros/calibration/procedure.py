"""The calibration procedure over the stack's own contracts: a ``RobotDriver`` and a ``FrameSource``.

``collect_automatic`` visits a generated, safety-checked pose set (moving only along joint paths the
safety filter passed); ``collect_taught`` takes a sample whenever the operator says the arm (moved by
hand, e.g. UR freedrive) is where they want it. Each sample keeps its image, so a refused or odd
calibration can be reviewed (``save_samples``). ``solve_samples`` solves, ``judged`` refuses a result
whose residuals exceed their limits (``CalibrationError`` with the numbers), ``to_calibration`` makes
the file's content, and ``verify`` checks a calibration against a fresh board observation.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field

from spatial_trace_ros.calibration.board import BoardNotFoundError, BoardObservation, BoardSpec, detect_board
from spatial_trace_ros.calibration.handeye import (
    CalibrationLimits,
    HandEyeResult,
    HandEyeSample,
    Mode,
    solve_hand_eye,
)
from spatial_trace_ros.calibration.poses import (
    CheckedPose,
    PoseSetOptions,
    check_pose_set,
    generate_pose_set,
    workspace_pose_set,
)
from spatial_trace_ros.camera.source import FrameSource
from spatial_trace_ros.errors import CalibrationError, ConfigError, RobotError
from spatial_trace_ros.geometry.calibration import Calibration, CalibrationRecord
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics
from spatial_trace_ros.geometry.transforms import Transform
from spatial_trace_ros.planning.safety import SafetyConfig
from spatial_trace_ros.robots.driver import MovePathCommand, RobotDriver
from spatial_trace_ros.robots.model import RobotModel


class MotionOptions(BaseModel):
    """How the arm moves between samples and waits before each picture."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    joint_speed_radps: float = Field(0.4, gt=0.0, le=1.5, description="joint speed between poses [rad/s]")
    tcp_speed_mps: float = Field(0.1, gt=0.0, le=0.25, description="TCP speed for move_path drivers [m/s]")
    settle_s: float = Field(0.5, ge=0.0, le=10.0, description="wait after each move before the picture [s]")
    flush_frames: int = Field(1, ge=0, le=30, description="frames dropped after settling (camera latency)")
    frame_timeout_s: float = Field(5.0, gt=0.0, le=60.0, description="wait this long for a frame [s]")


@dataclass
class CapturedSample:
    """One stop: the robot pose, the picture, and the board found in it (or why not)."""

    index: int
    base_T_tool: np.ndarray  # noqa: N815 - the project's frame-naming convention
    image: np.ndarray
    observation: BoardObservation | None = None
    problem: str = ""
    camera_frame: str = ""


@dataclass
class Collection:
    samples: list[CapturedSample] = field(default_factory=list)
    refused_poses: list[tuple[int, str]] = field(default_factory=list)


# -- motion ---------------------------------------------------------------------------------------------
def _check_ok(driver: RobotDriver) -> None:
    state = driver.read_state()
    if not state.ok:
        driver.stop()
        raise RobotError(f"calibration stopped: {state.fault_reason()}")


def _wait(driver: RobotDriver, duration_s: float) -> None:
    for _ in range(max(1, math.ceil(duration_s / driver.period_s))):
        token = driver.start_period()
        driver.kick_watchdog()
        driver.wait_period(token)


def move_along(driver: RobotDriver, model: RobotModel, path_q: np.ndarray, options: MotionOptions) -> None:
    """Move along a joint path the safety filter passed: streamed ``servo_joints`` with smooth start and
    stop (the arm is then held by ``settle``, not stopped: a G1 ``stop`` hands the arm back to the
    robot), or one ``move_path`` through the path's poses on drivers without joint streaming."""
    _check_ok(driver)
    q_from, q_to = path_q[0], path_q[-1]
    travel = float(np.max(np.abs(q_to - q_from)))
    if travel < 1e-6:
        return
    if "servo_joints" in driver.supports:
        # Smoothstep timing: peak speed 1.5x the mean, so the mean is chosen to keep the peak at the limit.
        n = max(2, math.ceil(1.5 * travel / (options.joint_speed_radps * driver.period_s)))
        for k in range(1, n + 1):
            s = k / n
            token = driver.start_period()
            driver.servo_joints(q_from + (3 * s * s - 2 * s * s * s) * (q_to - q_from))
            driver.kick_watchdog()
            driver.wait_period(token)
            if k % 50 == 0:
                _check_ok(driver)
    elif "move_path" in driver.supports:
        driver.move_path(MovePathCommand(model.fk_many(path_q[1:]), options.tcp_speed_mps, 0.3, 0.0))
        while driver.read_state().moving:
            _wait(driver, driver.period_s)
            _check_ok(driver)
    else:
        raise RobotError(f"{type(driver).__name__} offers neither servo_joints nor move_path; move the arm by hand "
                         "(--teach)")


def settle(driver: RobotDriver, duration_s: float, hold_q: np.ndarray | None = None) -> None:
    """Wait ``duration_s``; with ``hold_q`` keep sending it as the joint target meanwhile."""
    if hold_q is None or "servo_joints" not in driver.supports:
        _wait(driver, duration_s)
        return
    for _ in range(max(1, math.ceil(duration_s / driver.period_s))):
        token = driver.start_period()
        driver.servo_joints(hold_q)
        driver.kick_watchdog()
        driver.wait_period(token)


# -- sampling -------------------------------------------------------------------------------------------
def capture(driver: RobotDriver, source: FrameSource, board: BoardSpec, index: int, options: MotionOptions,
            hold_q: np.ndarray | None = None) -> CapturedSample:
    """Wait for the arm to settle (holding ``hold_q``), take a picture and the robot pose, find the board."""
    settle(driver, options.settle_s, hold_q)
    _check_ok(driver)
    for _ in range(options.flush_frames):
        source.read(timeout_s=options.frame_timeout_s)
    frame = source.read(timeout_s=options.frame_timeout_s)
    state = driver.read_state()
    sample = CapturedSample(index, np.asarray(state.tcp, float), frame.color, camera_frame=frame.frame_id)
    try:
        sample.observation = detect_board(frame.color, board, frame.intrinsics)
    except BoardNotFoundError as err:
        sample.problem = str(err)
    return sample


def collect_automatic(driver: RobotDriver, source: FrameSource, model: RobotModel, safety: SafetyConfig,
                      board: BoardSpec, poses: PoseSetOptions, motion: MotionOptions | None = None,
                      progress: Callable[[str], None] | None = None, mode: Mode = "eye_to_hand") -> Collection:
    """Visit the generated pose set around the arm's current pose and sample at each safe pose; then
    (eye-to-hand, ``poses.workspace_poses``) solve once and visit poses spread over the traces' region."""
    motion = motion or MotionOptions()
    say = progress or (lambda _: None)
    start = driver.read_state()
    checked = check_pose_set(generate_pose_set(start.tcp, poses), start.q, model, safety)
    out = Collection(refused_poses=[(c.index, c.refusal) for c in checked if c.path_q is None])
    accepted = [c for c in checked if c.path_q is not None]
    if len(accepted) < 3:
        reasons = "; ".join(f"#{i}: {r}" for i, r in out.refused_poses[:3])
        raise CalibrationError(f"the safety filter refused {len(out.refused_poses)} of {poses.n_poses} poses "
                               f"({reasons}); start from a pose further inside the workspace or lower "
                               "--tilt-deg/--spread-m")
    driver.prepare_motion()
    try:
        _visit(driver, source, model, board, accepted, motion, out, say, f"/{poses.n_poses}")
        if mode == "eye_to_hand" and poses.workspace_poses > 0:
            _visit_workspace(driver, source, model, safety, board, poses, motion, out, say)
    finally:
        driver.stop()
    return out


def _visit(driver: RobotDriver, source: FrameSource, model: RobotModel, board: BoardSpec,
           poses: list[CheckedPose], motion: MotionOptions, out: Collection, say: Callable[[str], None],
           of: str) -> None:
    for c in poses:
        move_along(driver, model, c.path_q, motion)
        sample = capture(driver, source, board, c.index, motion, hold_q=c.path_q[-1])
        out.samples.append(sample)
        say(f"pose {c.index + 1}{of}: " + (
            f"board found, {sample.observation.n_corners} corners, {sample.observation.reprojection_rms_px:.2f} px"
            if sample.observation else sample.problem))


def _visit_workspace(driver: RobotDriver, source: FrameSource, model: RobotModel, safety: SafetyConfig,
                     board: BoardSpec, poses: PoseSetOptions, motion: MotionOptions, out: Collection,
                     say: Callable[[str], None]) -> None:
    """The second round of eye-to-hand poses, planned from a first solve of the samples so far."""
    try:
        first = solve_samples("eye_to_hand", out, board, source.intrinsics, CalibrationLimits(min_samples=3))
    except CalibrationError as err:
        say(f"no poses over the workspace: the first poses do not calibrate yet ({err})")
        return
    candidates = workspace_pose_set(first.camera, first.board, board.size_m, board.centre, source.intrinsics, safety,
                                    poses.workspace_poses, poses.tilt_deg)
    state = driver.read_state()
    offset = max(s.index for s in out.samples) + 1
    checked = check_pose_set(candidates, state.q, model, safety)
    accepted = [CheckedPose(offset + i, c.pose, c.path_q) for i, c in enumerate(
        [c for c in checked if c.path_q is not None][:poses.workspace_poses])]
    # The joint paths were checked one after another; the visited ones chain from the arm's pose.
    say(f"{len(accepted)} poses over the workspace ({len(candidates)} candidates in view, "
        f"{sum(c.path_q is None for c in checked)} refused by the safety filter)")
    _visit(driver, source, model, board, accepted, motion, out, say, " (workspace)")


def _ask(driver: RobotDriver, next_pose: Callable[[int], bool], index: int) -> bool:
    """``next_pose(index)`` on a thread while this one keeps the robot's watchdog fed."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        answer = pool.submit(next_pose, index)
        while not answer.done():
            _wait(driver, 0.05)
        return answer.result()


def collect_taught(driver: RobotDriver, source: FrameSource, board: BoardSpec, next_pose: Callable[[int], bool],
                   motion: MotionOptions | None = None, progress: Callable[[str], None] | None = None) -> Collection:
    """Sample wherever the operator put the arm; ``next_pose(i)`` returns False when they are done. The
    driver's freedrive (UR: teachMode) is on while they move it and off for each picture."""
    motion = motion or MotionOptions()
    say = progress or (lambda _: None)
    out = Collection()
    try:
        driver.freedrive(True)
        freedrive = True
    except ConfigError as err:
        say(str(err))
        freedrive = False
    try:
        index = 0
        while _ask(driver, next_pose, index):
            if freedrive:
                driver.freedrive(False)
            sample = capture(driver, source, board, index, motion)
            if freedrive:
                driver.freedrive(True)
            out.samples.append(sample)
            say(f"sample {index + 1}: " + (f"board found, {sample.observation.n_corners} corners"
                                           if sample.observation else sample.problem))
            index += 1
    finally:
        if freedrive:
            driver.freedrive(False)
    return out


def save_samples(collection: Collection, folder: Path) -> Path:
    """Each sample's image (``sample_NN.png``) and ``samples.yaml`` with its robot pose and board fit."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in collection.samples:
        name = f"sample_{s.index:02d}.png"
        cv2.imwrite(str(folder / name), cv2.cvtColor(s.image, cv2.COLOR_RGB2BGR) if s.image.ndim == 3 else s.image)
        row = {"index": s.index, "image": name, "base_T_tool": np.round(s.base_T_tool, 9).tolist()}
        if s.observation is not None:
            row["board_corners"] = s.observation.n_corners
            row["board_reprojection_px"] = round(s.observation.reprojection_rms_px, 4)
            row["cam_T_board"] = np.round(s.observation.cam_T_board, 9).tolist()
        else:
            row["problem"] = s.problem
        rows.append(row)
    refused = [{"pose": i, "reason": r} for i, r in collection.refused_poses]
    (folder / "samples.yaml").write_text(yaml.safe_dump({"samples": rows, "refused_poses": refused}, sort_keys=False))
    return folder


# -- solve and judge ------------------------------------------------------------------------------------
def solve_samples(mode: Mode, collection: Collection, board: BoardSpec, intrinsics: CameraIntrinsics,
                  limits: CalibrationLimits) -> HandEyeResult:
    """Hand-eye solve of the samples in which the board was found; refuses a board seen nowhere."""
    found = [s for s in collection.samples if s.observation is not None]
    if not found:
        first = collection.samples[0].problem if collection.samples else "no samples were taken"
        raise CalibrationError(f"board not visible: not found in any of the {len(collection.samples)} images "
                               f"({first})")
    samples = [HandEyeSample(s.base_T_tool, s.observation, s.index) for s in found]
    return solve_hand_eye(mode, samples, board, intrinsics, limits)


def to_calibration(result: HandEyeResult, model: RobotModel, camera_frame: str, source: str, board: BoardSpec
                   ) -> Calibration:
    """The calibration file's content: the camera pose, and how and when it was measured."""
    parent = model.base_frame if result.mode == "eye_to_hand" else model.tool_frame
    record = CalibrationRecord(
        calibrated_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        sample_count=len(result.used), residuals=result.residuals.as_dict(), source=source,
        board=board_record(result, board, model))
    return Calibration(result.mode, Transform(result.camera, parent, camera_frame), record)


def judged(result: HandEyeResult, limits: CalibrationLimits) -> HandEyeResult:
    """``result`` when every residual is within its limit; else ``CalibrationError`` with the numbers."""
    problems = result.problems(limits)
    if problems:
        raise CalibrationError("calibration refused, nothing written: " + "; ".join(problems) +
                               f" (samples used {len(result.used)}, rejected {len(result.rejected)}); check the "
                               "board is rigid on its mount, the robot stood still for each picture and the board "
                               "size options match the print, then calibrate again")
    return result


def board_record(result: HandEyeResult, board: BoardSpec, model: RobotModel) -> dict:
    """The board's layout and where the solve put it, for ``calibration.record.board``."""
    tf = Transform(result.board)
    return {"parent_frame": model.tool_frame if result.mode == "eye_to_hand" else model.base_frame,
            "translation_m": [round(float(v), 9) for v in tf.translation],
            "quaternion_xyzw": [round(float(v), 9) for v in tf.quaternion_xyzw], **board.model_dump()}


@dataclass(frozen=True)
class Verification:
    """A fresh board observation against what the calibration predicts, at the board [mm]."""

    rms_mm: float
    max_mm: float
    n_corners: int


def verify(calibration: Calibration, base_T_tool: np.ndarray, observation: BoardObservation) -> Verification:
    """Where the calibration and the robot pose put the board's corners vs where the camera sees them."""
    record = calibration.record.board
    if not record:
        raise CalibrationError("the calibration file has no 'board' entry (it was not made by spatial-trace "
                               "calibrate), so it cannot predict where the board is; calibrate again")
    board = BoardSpec(**{k: record[k] for k in BoardSpec.model_fields})
    mount = Transform.from_quaternion_xyzw(record["translation_m"], record["quaternion_xyzw"]).matrix
    X = calibration.transform.matrix
    base_T_camera = X if calibration.mode == "eye_to_hand" else base_T_tool @ X
    base_T_board = base_T_tool @ mount if calibration.mode == "eye_to_hand" else mount
    predicted = np.linalg.inv(base_T_camera) @ base_T_board
    points = np.c_[board.corner_points()[observation.ids], np.ones(observation.n_corners)]
    gap_mm = np.linalg.norm(((predicted - observation.cam_T_board) @ points.T)[:3], axis=0) * 1000.0
    return Verification(float(np.sqrt(np.mean(gap_mm**2))), float(gap_mm.max()), observation.n_corners)
