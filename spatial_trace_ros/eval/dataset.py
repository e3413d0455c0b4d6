"""Reading datasets and answer files in the TraceSpatial-Bench layout.

One JSON object per sample (a ``.jsonl`` file, or a ``.json`` file holding a list), with the fields
the benchmark's output files carry:

| field | meaning |
|---|---|
| ``question_id`` (or ``id``) | sample id |
| ``prompt``, ``target_object``, ``destination|direction`` | the instruction and its parts |
| ``image_path``, ``gt_depth_path``, ``mask_path`` | files relative to the dataset folder |
| ``gt_depth_intrinsics`` | 3x3 (or 4x4 homogeneous) camera matrix K |
| ``trajectory`` | ground-truth 3D trace, camera optical frame, metres |
| ``bbox_center``, ``bbox_extent``, ``bbox_rotation`` | oriented destination box (see ``success.OrientedBox``) |
| ``model_prediction`` | the model's raw answer (answer files only) |
| ``step``, ``category`` | difficulty (number of reasoning steps) and task category, when present |
| ``image_width``, ``image_height`` | image size in pixels (this project's synthetic data writes them) |

The benchmark's own output files do not record the image size; :func:`resolve_image_size` finds it
(command line, sample fields, the image file, or ``2 cx x 2 cy`` as a last resort, flagged).
For running a model over a dataset, :func:`load_entries` keeps each sample's raw record beside it and
:func:`load_frame` reads its image and 16-bit depth (``depth_scale_m`` per sample, default 1 mm) into an
``RgbdFrame``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.eval.success import OrientedBox
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics, RgbdFrame

DATASET_FILE = "samples.jsonl"
DEFAULT_DEPTH_SCALE_M = 0.001
_REQUIRED = ("gt_depth_intrinsics", "trajectory", "bbox_center", "bbox_extent", "bbox_rotation")


@dataclass(frozen=True, eq=False)
class BenchmarkSample:
    """One sample: instruction, camera, ground truth and (in answer files) the model's answer."""

    question_id: int | str
    prompt: str
    K: np.ndarray
    trajectory_m: np.ndarray
    destination: OrientedBox
    target_object: str = ""
    destination_text: str = ""
    image_path: str = ""
    depth_path: str = ""
    mask_path: str = ""
    model_prediction: str | None = None
    difficulty: int = 1
    category: str = ""
    image_size: tuple[int, int] | None = None
    extra: dict[str, Any] | None = None


def _fail(source: str, problem: str) -> ConfigError:
    return ConfigError(f"{source}: {problem}. Each line must be one TraceSpatial-Bench sample (see docs/evaluation.md)")


def _matrix(value: object, source: str) -> np.ndarray:
    K = np.asarray(value, dtype=float)
    if K.shape == (4, 4):
        K = K[:3, :3]
    if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise _fail(source, f"gt_depth_intrinsics must be a 3x3 or 4x4 camera matrix with positive fx, fy, "
                            f"got {value!r}")
    return K


def _difficulty(step: object, source: str) -> int:
    if step is None or step == "":
        return 1
    try:
        return max(1, int(step))
    except (TypeError, ValueError):
        raise _fail(source, f"step (difficulty) must be a whole number, got {step!r}") from None


def sample_from_record(record: dict[str, Any], source: str = "sample") -> BenchmarkSample:
    """Build a :class:`BenchmarkSample` from one decoded JSON object; errors name ``source``."""
    if not isinstance(record, dict):
        raise _fail(source, f"expected a JSON object, got {type(record).__name__}")
    missing = [k for k in _REQUIRED if k not in record]
    if missing:
        raise _fail(source, f"missing field(s) {', '.join(missing)}")
    qid = record.get("question_id", record.get("id"))
    if qid is None:
        raise _fail(source, "missing field question_id (or id)")
    K = _matrix(record["gt_depth_intrinsics"], source)
    try:
        traj = np.asarray(record["trajectory"], dtype=float)
    except (TypeError, ValueError) as err:
        raise _fail(source, f"trajectory is not a list of [x, y, z] points ({err})") from None
    if traj.ndim != 2 or traj.shape[1] != 3 or len(traj) < 1 or not np.all(np.isfinite(traj)):
        raise _fail(source, f"trajectory must be a non-empty list of finite [x, y, z] points, got shape {traj.shape}")
    try:
        box = OrientedBox(np.asarray(record["bbox_center"], dtype=float),
                          np.asarray(record["bbox_extent"], dtype=float),
                          np.asarray(record["bbox_rotation"], dtype=float))
    except (TypeError, ValueError) as err:
        raise _fail(source, f"bad destination box ({err})") from None
    size = None
    if record.get("image_width") is not None and record.get("image_height") is not None:
        size = (int(record["image_width"]), int(record["image_height"]))
        if min(size) <= 0:
            raise _fail(source, f"image_width/image_height must be positive, got {size}")
    prediction = record.get("model_prediction")
    known = set(_REQUIRED) | {"question_id", "id", "prompt", "target_object", "destination|direction",
                              "destination_direction", "image_path", "gt_depth_path", "mask_path",
                              "model_prediction", "step", "category", "image_width", "image_height"}
    return BenchmarkSample(
        question_id=qid,
        prompt=str(record.get("prompt", "")),
        K=K,
        trajectory_m=traj,
        destination=box,
        target_object=str(record.get("target_object", "")),
        destination_text=str(record.get("destination|direction", record.get("destination_direction", ""))),
        image_path=str(record.get("image_path", "")),
        depth_path=str(record.get("gt_depth_path", "")),
        mask_path=str(record.get("mask_path", "")),
        model_prediction=None if prediction is None else str(prediction),
        difficulty=_difficulty(record.get("step"), source),
        category=str(record.get("category", "")),
        image_size=size,
        extra={k: v for k, v in record.items() if k not in known} or None,
    )


def read_benchmark(path: str | Path) -> list[BenchmarkSample]:
    """All samples of a ``.jsonl`` file (one object per line) or a ``.json`` list."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"dataset file {p} does not exist; pass a TraceSpatial-Bench .jsonl or .json file")
    text = p.read_text(encoding="utf-8")
    if p.suffix == ".json":
        try:
            records = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{p}: not valid JSON ({err})") from None
        if not isinstance(records, list):
            raise ConfigError(f"{p}: a .json dataset must hold a list of samples")
        samples = [sample_from_record(r, f"{p} sample {i}") for i, r in enumerate(records)]
    else:
        samples = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ConfigError(f"{p} line {number}: not valid JSON ({err})") from None
            samples.append(sample_from_record(record, f"{p} line {number}"))
    if not samples:
        raise ConfigError(f"{p} holds no samples")
    return samples


def parse_image_size(text: str) -> tuple[int, int]:
    """``"640x480"`` -> (640, 480), or a ConfigError saying what is expected."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        w, h = (int(v) for v in parts)
    except ValueError:
        raise ConfigError(f"image size {text!r} is not WIDTHxHEIGHT in pixels, e.g. 640x480") from None
    if w <= 0 or h <= 0:
        raise ConfigError(f"image size must be positive, got {text!r}")
    return w, h


def resolve_image_size(
    sample: BenchmarkSample, override: tuple[int, int] | None = None, base_dir: Path | None = None,
) -> tuple[tuple[int, int], str]:
    """The image size in pixels and where it came from: ``"option"``, ``"sample"``, ``"image"``, or
    ``"principal_point"`` (2 cx x 2 cy, a guess the caller should warn about)."""
    if override is not None:
        return override, "option"
    if sample.image_size is not None:
        return sample.image_size, "sample"
    if base_dir is not None and sample.image_path:
        image = base_dir / sample.image_path
        if image.is_file():
            from PIL import Image

            with Image.open(image) as im:
                return (int(im.width), int(im.height)), "image"
    return (round(float(2 * sample.K[0, 2])), round(float(2 * sample.K[1, 2]))), "principal_point"


@dataclass(frozen=True, eq=False)
class DatasetEntry:
    """One sample with its raw record (written back with the answer) and its index in the dataset."""

    index: int
    record: dict[str, Any]
    sample: BenchmarkSample

    @property
    def qid(self) -> str:
        return str(self.sample.question_id)


def resolve_dataset(path: str | Path) -> Path:
    """The samples file of a dataset folder (``samples.jsonl``) or the file itself."""
    p = Path(path)
    if p.is_dir():
        p = p / DATASET_FILE
        if not p.is_file():
            raise ConfigError(f"{path} has no {DATASET_FILE}; make one with `spatial-trace synth --out {path}` or "
                              "pass the dataset's .jsonl file")
    elif not p.is_file():
        raise ConfigError(f"dataset {p} does not exist; pass a folder made by `spatial-trace synth` or a .jsonl file")
    return p


def load_entries(samples_file: Path) -> list[DatasetEntry]:
    """Every sample of a ``.jsonl`` dataset, with its raw record."""
    entries = []
    for number, line in enumerate(samples_file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{samples_file} line {number}: not valid JSON ({err})") from None
        sample = sample_from_record(record, f"{samples_file} line {number}")
        entries.append(DatasetEntry(len(entries), record, sample))
    if not entries:
        raise ConfigError(f"{samples_file} holds no samples")
    ids = [e.qid for e in entries]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{samples_file}: question_id values repeat; each sample needs its own id to be resumable")
    return entries


def load_frame(entry: DatasetEntry, base_dir: Path) -> RgbdFrame:
    """The sample's RGB image and aligned 16-bit depth (when it has one) as one frame."""
    import cv2
    from PIL import Image

    sample = entry.sample
    if not sample.image_path:
        raise ConfigError(f"sample {entry.qid} has no image_path; a live backend needs the image")
    image_file = base_dir / sample.image_path
    if not image_file.is_file():
        raise ConfigError(f"sample {entry.qid}: image {image_file} not found; is --dataset the dataset's folder?")
    with Image.open(image_file) as im:
        color = np.asarray(im.convert("RGB"))
    height, width = color.shape[:2]
    depth = None
    if sample.depth_path:
        depth_file = base_dir / sample.depth_path
        depth = cv2.imread(str(depth_file), cv2.IMREAD_UNCHANGED)
        if depth is None or depth.dtype != np.uint16 or depth.shape != (height, width):
            raise ConfigError(f"sample {entry.qid}: {depth_file} is not a 16-bit depth image of {width}x{height}")
    scale = float(entry.record.get("depth_scale_m", DEFAULT_DEPTH_SCALE_M))
    intr = CameraIntrinsics.from_matrix(sample.K, width, height)
    return RgbdFrame(color, depth, intr, scale, 0.0)
