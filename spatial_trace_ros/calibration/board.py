"""The ChArUco calibration board: its layout, a printable image, and finding its pose in a camera image.

The board frame is OpenCV's: origin at the outer corner of the first square (the top-left of the
printed image), x along the rows of squares (image right), y along the columns (image down), z into
the board. The printed face is seen looking along +z. A ChArUco board is found even when partly hidden
and every corner carries its id, so a board pose never flips between samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from spatial_trace_ros.errors import CalibrationError, ConfigError
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics
from spatial_trace_ros.geometry.transforms import Transform

BOARD_FRAME = "calibration_board"
# At least this many ChArUco corners make a pose (PnP is well posed with 4; 6 guards against a sliver).
MIN_CORNERS = 6
SUPPORTED_DISTORTION = ("none", "brown_conrady")


def dictionary_names() -> list[str]:
    """The predefined ArUco dictionaries OpenCV knows (``DICT_5X5_100``, ...)."""
    return sorted(n for n in dir(cv2.aruco) if n.startswith("DICT_"))


class BoardSpec(BaseModel):
    """Layout of a ChArUco board: squares across x and y, square and marker edge [m], ArUco dictionary."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    squares_x: int = Field(5, ge=3, le=30, description="squares along the board's x (image width)")
    squares_y: int = Field(7, ge=3, le=30, description="squares along the board's y (image height)")
    square_m: float = Field(0.03, gt=0.002, le=0.3, description="edge of one chessboard square [m]")
    marker_m: float = Field(0.022, gt=0.001, le=0.3, description="edge of one ArUco marker [m]")
    dictionary: str = Field("DICT_5X5_100", description="OpenCV ArUco dictionary name")

    @model_validator(mode="after")
    def _consistent(self) -> BoardSpec:
        if self.marker_m >= self.square_m:
            raise ValueError(f"marker_m ({self.marker_m}) must be smaller than square_m ({self.square_m})")
        if self.dictionary not in dictionary_names():
            raise ValueError(f"unknown dictionary {self.dictionary!r}; available: {', '.join(dictionary_names())}")
        size = int(self.dictionary.rsplit("_", 1)[-1]) if self.dictionary.rsplit("_", 1)[-1].isdigit() else 1 << 30
        if self.n_markers > size:
            raise ValueError(f"a {self.squares_x}x{self.squares_y} board needs {self.n_markers} markers, "
                             f"{self.dictionary} has {size}; choose a larger dictionary")
        return self

    @property
    def n_markers(self) -> int:
        return (self.squares_x * self.squares_y) // 2

    @property
    def size_m(self) -> tuple[float, float]:
        return self.squares_x * self.square_m, self.squares_y * self.square_m

    @property
    def centre(self) -> np.ndarray:
        """The board's centre in its own frame [m]."""
        w, h = self.size_m
        return np.array([w / 2, h / 2, 0.0])

    def describe(self) -> str:
        return (f"{self.squares_x}x{self.squares_y} squares of {self.square_m * 1000:g} mm, markers "
                f"{self.marker_m * 1000:g} mm, {self.dictionary}")

    def cv_board(self) -> Any:
        dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        return cv2.aruco.CharucoBoard((self.squares_x, self.squares_y), self.square_m, self.marker_m, dictionary)

    def corner_points(self) -> np.ndarray:
        """All inner chessboard corners (N, 3) in the board frame, indexed by ChArUco id."""
        return np.asarray(self.cv_board().getChessboardCorners(), float).reshape(-1, 3)

    def image(self, px_per_m: float, margin_px: int = 0) -> np.ndarray:
        """The board as a grey image at ``px_per_m`` (e.g. 300 dpi = 11811 px/m), white margin around."""
        w, h = self.size_m
        size = (round(w * px_per_m) + 2 * margin_px, round(h * px_per_m) + 2 * margin_px)
        return self.cv_board().generateImage(size, marginSize=margin_px, borderBits=1)


def board_spec(**values: Any) -> BoardSpec:
    """A ``BoardSpec`` whose every bad value is reported as one ``ConfigError`` naming it."""
    try:
        return BoardSpec(**values)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'board'}={e.get('input')!r}: {e['msg']}"
                             for e in err.errors())
        raise ConfigError(f"invalid calibration board: {problems}") from None


@dataclass(frozen=True)
class BoardObservation:
    """The board seen in one image: its pose in the camera's optical frame and how well it fits."""

    cam_T_board: np.ndarray  # noqa: N815 - the project's frame-naming convention (4x4)
    ids: np.ndarray  # (N,) ChArUco corner ids
    corners_px: np.ndarray  # (N, 2) detected corner pixels
    reprojection_rms_px: float

    @property
    def n_corners(self) -> int:
        return len(self.ids)


class BoardNotFoundError(CalibrationError):
    """No usable board pose in an image; the message says what was seen and what to change."""


def _gray(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return image


def detect_board(image: np.ndarray, board: BoardSpec, intrinsics: CameraIntrinsics) -> BoardObservation:
    """The board's pose in ``image`` (rgb8 or grey). Raises ``BoardNotFoundError`` naming why: no
    markers, markers of another board (ids it does not have), too few corners, or a layout that does
    not fit the given board (large reprojection error)."""
    if intrinsics.distortion_model not in SUPPORTED_DISTORTION:
        raise ConfigError(f"board detection handles distortion models {', '.join(SUPPORTED_DISTORTION)}, not "
                          f"{intrinsics.distortion_model!r}; rectify the images first")
    cv_board = board.cv_board()
    detector = cv2.aruco.CharucoDetector(cv_board)
    corners, ids, _, marker_ids = detector.detectBoard(_gray(image))
    if marker_ids is None or len(marker_ids) == 0:
        raise BoardNotFoundError(
            f"no ArUco marker of {board.dictionary} in the image: is the board ({board.describe()}) in the "
            "camera's view, lit, in focus and printed with that dictionary?")
    foreign = sorted(int(i) for i in np.ravel(marker_ids) if i >= board.n_markers)
    if foreign:
        raise BoardNotFoundError(
            f"markers {foreign[:5]} are not on a {board.squares_x}x{board.squares_y} board (ids 0-"
            f"{board.n_markers - 1}): the board has more squares than given; check --squares-x/--squares-y")
    n = 0 if ids is None else len(ids)
    if n < MIN_CORNERS:
        raise BoardNotFoundError(
            f"only {n} ChArUco corners found ({len(marker_ids)} markers), at least {MIN_CORNERS} are needed: "
            "bring more of the board into view, closer, and face it towards the camera")
    obj, img = cv_board.matchImagePoints(corners, ids)
    obj, img = np.asarray(obj, float).reshape(-1, 3), np.asarray(img, float).reshape(-1, 2)
    ok, rvec, tvec = cv2.solvePnP(obj, img, intrinsics.K, intrinsics.D, flags=cv2.SOLVEPNP_IPPE)
    if ok:
        rvec, tvec = cv2.solvePnPRefineLM(obj, img, intrinsics.K, intrinsics.D, rvec, tvec)
    if not ok:
        raise BoardNotFoundError(f"no board pose fits the {n} corners found; check the board size options")
    projected, _ = cv2.projectPoints(obj, rvec, tvec, intrinsics.K, intrinsics.D)
    rms = float(np.sqrt(np.mean(np.sum((projected.reshape(-1, 2) - img) ** 2, axis=1))))
    pose = Transform.from_rotvec(np.ravel(tvec), np.ravel(rvec)).matrix
    return BoardObservation(pose, np.ravel(ids).astype(int), img, rms)


def project_board_corners(cam_T_board: np.ndarray, ids: np.ndarray, board_points: np.ndarray,
                          intrinsics: CameraIntrinsics) -> np.ndarray:
    """Pixels (N, 2) of the board corners ``ids`` seen from ``cam_T_board``."""
    pose = Transform(cam_T_board)
    projected, _ = cv2.projectPoints(board_points[ids], pose.rotvec, pose.translation, intrinsics.K, intrinsics.D)
    return projected.reshape(-1, 2)
