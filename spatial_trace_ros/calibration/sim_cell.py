"""The simulated cell of ``spatial-trace sim-scene --seed N`` with a ChArUco board, for calibrating in MuJoCo.

Eye-to-hand: the board is a plate on the flange, facing along the tool axis. Eye-in-hand: it stands
fixed above the table in front of the robot, facing up. The board is a thin mesh textured with the
board image generated at run time (``BoardSpec.image``), so the camera renders what a printed board
would look like. The cell also knows the answer (``truth_camera``), which only tests and the
benchmark read, and a start pose from which the camera sees the board (on a real robot the operator
jogs the arm there).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from spatial_trace_ros.calibration.board import BOARD_FRAME, BoardNotFoundError, BoardSpec, detect_board
from spatial_trace_ros.calibration.handeye import Mode
from spatial_trace_ros.calibration.poses import PoseSetOptions
from spatial_trace_ros.calibration.procedure import CapturedSample, Collection, MotionOptions, collect_automatic
from spatial_trace_ros.errors import CalibrationError
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics
from spatial_trace_ros.planning.safety import SafetyConfig
from spatial_trace_ros.robots.model import RobotModel, make_robot_model
from spatial_trace_ros.sim.config import world_config
from spatial_trace_ros.sim.mjcf import build_world_xml
from spatial_trace_ros.sim.ur_arm import HOME_Q_RAD, wrist3_T_tool0
from spatial_trace_ros.sim.world import World

TEXTURE_PX_PER_M = 4000.0
BOARD_THICKNESS_M = 0.002
FLANGE_GAP_M = 0.004  # board face this far in front of the flange
STAND_HEIGHT_M = 0.12  # eye-in-hand board face above the table (over the objects)
STAND_XY_M = (0.45, 0.0)
EYE_TO_HAND_START_M = (0.55, 0.0, 0.32)  # board in front of the camera, inside the workspace
EYE_IN_HAND_VIEW_M = 0.30  # camera-to-board distance at the start pose
# The board's printed face looks along -z of its frame (OpenCV's z points into the board): this turns
# a frame whose +z is the face normal into the board frame.
FACE_NORMAL_Z_T_BOARD = np.diag([1.0, -1.0, -1.0])


def _fmt(values: object) -> str:
    return " ".join(f"{float(v):.10g}" for v in np.ravel(values))


def _quat_wxyz(R: np.ndarray) -> np.ndarray:
    from transforms3d import quaternions

    q = quaternions.mat2quat(R)
    return q if q[0] >= 0 else -q


def _board_in(parent_T_face: np.ndarray, board: BoardSpec) -> np.ndarray:
    """``parent_T_board`` for a board centred on ``parent_T_face``'s origin, face normal along its z."""
    R = parent_T_face[:3, :3] @ FACE_NORMAL_Z_T_BOARD
    out = np.eye(4)
    out[:3, :3] = R
    out[:3, 3] = parent_T_face[:3, 3] - R @ board.centre
    return out


def add_board(xml: str, board: BoardSpec, parent_body: str | None, parent_T_board: np.ndarray
              ) -> tuple[str, dict[str, bytes]]:
    """The cell's MJCF with the board attached to ``parent_body`` (None: the world), and its texture."""
    root = ET.fromstring(xml)
    asset = root.find("asset")
    if asset is None:
        asset = ET.Element("asset")
        root.insert(list(root).index(root.find("worldbody")), asset)
    ET.SubElement(asset, "texture", name="board_texture", type="2d", file="calibration_board.png")
    ET.SubElement(asset, "material", name="board_material", texture="board_texture", specular="0", shininess="0",
                  emission="0.5")
    w, h = board.size_m
    t = BOARD_THICKNESS_M
    # A thin box in the board frame: the face z = 0 carries the image (u along x, v along y), z > 0 is behind.
    vertex = [0, 0, 0, w, 0, 0, w, h, 0, 0, h, 0, 0, 0, t, w, 0, t, w, h, t, 0, h, t]
    texcoord = [0, 0, 1, 0, 1, 1, 0, 1] * 2
    face = [0, 3, 2, 0, 2, 1, 4, 5, 6, 4, 6, 7, 0, 1, 5, 0, 5, 4, 1, 2, 6, 1, 6, 5, 2, 3, 7, 2, 7, 6, 3, 0, 4, 3, 4, 7]
    ET.SubElement(asset, "mesh", name="board_mesh", vertex=_fmt(vertex), texcoord=_fmt(texcoord),
                  face=" ".join(map(str, face)))
    parent = root.find("worldbody") if parent_body is None else root.find(f".//body[@name='{parent_body}']")
    body = ET.SubElement(parent, "body", name=BOARD_FRAME, pos=_fmt(parent_T_board[:3, 3]),
                         quat=_fmt(_quat_wxyz(parent_T_board[:3, :3])))
    ET.SubElement(body, "geom", name="board_geom", type="mesh", mesh="board_mesh", material="board_material",
                  contype="0", conaffinity="0", mass="0.05")
    image = cv2.cvtColor(board.image(TEXTURE_PX_PER_M), cv2.COLOR_GRAY2RGB)
    _, png = cv2.imencode(".png", image)
    return ET.tostring(root, encoding="unicode"), {"calibration_board.png": png.tobytes()}


@dataclass(frozen=True)
class SimCalibrationCell:
    """A simulated cell ready to calibrate: the world with its board, and what the answer must be."""

    world: World
    board: BoardSpec
    mode: Mode
    truth_camera: np.ndarray  # base_T_camera (eye_to_hand) or tool_T_camera (eye_in_hand)
    start_q: np.ndarray
    pivot_m: float  # rotate the tool about the point this far along its z (where the board is)


def _start_pose_eye_to_hand(base_T_camera: np.ndarray) -> np.ndarray:
    """Flange at ``EYE_TO_HAND_START_M`` with its axis (the board's face normal) towards the camera."""
    p = np.array(EYE_TO_HAND_START_M)
    z = base_T_camera[:3, 3] - p
    z /= np.linalg.norm(z)
    y = np.cross(z, [0.0, 0.0, 1.0])
    y /= np.linalg.norm(y)
    pose = np.eye(4)
    pose[:3, :3] = np.column_stack([np.cross(y, z), y, z])
    pose[:3, 3] = p
    return pose


def _start_pose_eye_in_hand(tool_T_camera: np.ndarray, board_centre: np.ndarray) -> np.ndarray:
    """Tool pointing down, placed so the camera looks at the board centre from ``EYE_IN_HAND_VIEW_M``."""
    pose = np.eye(4)
    pose[:3, :3] = np.diag([1.0, -1.0, -1.0])
    look = tool_T_camera[:3, :3] @ [0.0, 0.0, EYE_IN_HAND_VIEW_M] + tool_T_camera[:3, 3]
    pose[:3, 3] = board_centre - pose[:3, :3] @ look
    return pose


def _ik_start(model: RobotModel, pose: np.ndarray) -> np.ndarray:
    q = model.ik(pose, np.asarray(HOME_Q_RAD[model.name], float))
    if q is None:
        raise CalibrationError(f"the simulated {model.name} cannot reach the calibration start pose "
                               f"{np.round(pose[:3, 3], 3).tolist()} m")
    return q


def sim_calibration_cell(scene_seed: int, mode: Mode, robot: str = "ur5e", board: BoardSpec | None = None,
                         width: int = 640, height: int = 480) -> SimCalibrationCell:
    """The cell of ``spatial-trace sim-scene --seed scene_seed`` (camera mounted as ``mode``) with a board."""
    board = board or BoardSpec()
    config = world_config(robot=robot, scene_seed=scene_seed, camera_mount=mode, width=width, height=height)
    scene = config.build_scene()
    truth = scene.camera.parent_T_camera.matrix
    model = make_robot_model(robot)
    xml = build_world_xml(scene, robot, None)  # the board takes the gripper's place on the flange
    if mode == "eye_to_hand":
        tool_T_face = np.eye(4)
        tool_T_face[2, 3] = FLANGE_GAP_M
        # tool0 sits in wrist_3_link at a fixed offset: hang the board off that body.
        wrist3_T_board = wrist3_T_tool0(robot) @ _board_in(tool_T_face, board)
        xml, assets = add_board(xml, board, "wrist_3_link", wrist3_T_board)
        start = _start_pose_eye_to_hand(truth)
        pivot_m = FLANGE_GAP_M
    else:
        base_T_face = np.eye(4)
        base_T_face[:3, 3] = [*STAND_XY_M, STAND_HEIGHT_M]
        xml, assets = add_board(xml, board, None, _board_in(base_T_face, board))
        start = _start_pose_eye_in_hand(truth, base_T_face[:3, 3])
        look = truth[:3, :3] @ [0.0, 0.0, EYE_IN_HAND_VIEW_M] + truth[:3, 3]
        pivot_m = float(look[2])
    start_q = _ik_start(model, start)
    world = World(config.model_copy(update={"home_q_rad": tuple(float(v) for v in start_q)}), scene, xml, assets)
    return SimCalibrationCell(world, board, mode, truth, start_q, pivot_m)


def sim_pose_options(cell: SimCalibrationCell, n_poses: int) -> PoseSetOptions:
    """A pose set that keeps the board in the simulated camera's view."""
    spread = 0.08 if cell.mode == "eye_to_hand" else 0.04
    return PoseSetOptions(n_poses=n_poses, tilt_deg=25.0, spin_deg=30.0, spread_m=spread, pivot_m=cell.pivot_m)


def collect_in_sim(cell: SimCalibrationCell, poses: PoseSetOptions, safety: SafetyConfig | None = None,
                   progress: Callable[[str], None] | None = None) -> Collection:
    """The automatic procedure on the simulated cell: the sim driver (stepped in lockstep, as fast as the
    CPU allows) and the sim camera, through the same code a real robot and camera go through."""
    from spatial_trace_ros.sim.camera import SimFrameSource
    from spatial_trace_ros.sim.robot import SimRobotDriver

    model = make_robot_model(cell.world.robot)
    driver = SimRobotDriver(model, world=cell.world, real_time=False, period_s=0.008, stamp_clock="sim")
    motion = MotionOptions(settle_s=0.3, flush_frames=0)
    driver.connect()
    try:
        with SimFrameSource(world=cell.world, stamp_clock="sim", fps=90.0) as camera:
            return collect_automatic(driver, camera, model, safety or SafetyConfig(), cell.board, poses, motion,
                                     progress, cell.mode)
    finally:
        driver.disconnect()


def with_noise(collection: Collection, board: BoardSpec, intrinsics: CameraIntrinsics, pixel_sigma: float,
               position_sigma_m: float, rotation_sigma_deg: float, seed: int = 0) -> Collection:
    """The same samples with Gaussian image noise (``pixel_sigma`` grey levels of 255, the board found
    again) and Gaussian error on the robot's reported poses: what a real camera and arm add."""
    rng = np.random.default_rng(seed)
    out = Collection(refused_poses=list(collection.refused_poses))
    for s in collection.samples:
        image = np.clip(s.image.astype(float) + rng.normal(0.0, pixel_sigma, s.image.shape), 0, 255).astype(np.uint8)
        pose = s.base_T_tool.copy()
        pose[:3, 3] += rng.normal(0.0, position_sigma_m, 3)
        pose[:3, :3] = pose[:3, :3] @ Rotation.from_rotvec(np.radians(rng.normal(0.0, rotation_sigma_deg, 3))
                                                           ).as_matrix()
        sample = CapturedSample(s.index, pose, image)
        try:
            sample.observation = detect_board(image, board, intrinsics)
        except BoardNotFoundError as err:
            sample.problem = str(err)
        out.samples.append(sample)
    return out
