"""What the server needs from a model, whatever runs it, and the lazy registry of backends.

Two kinds: a ``TensorBackend`` runs the tensor-model contract (docs/server.md) on batches of
preprocessed frames; a ``TextBackend`` generates text answers from a vision-language model, one
request at a time. Backends are built once per process and used from a single worker thread.
"""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spatial_trace_ros.errors import ConfigError, ModelError
from spatial_trace_ros.registry import load_registered
from spatial_trace_ros.server.images import DecodedFrame
from spatial_trace_ros.server.schema import Intrinsics
from spatial_trace_ros.server.settings import ServerSettings

log = logging.getLogger(__name__)

BACKENDS: dict[str, str] = {
    "onnx": "spatial_trace_ros.server.backends.onnx_backend:OnnxBackend",
    "torch": "spatial_trace_ros.server.backends.torch_backend:TorchBackend",
    "transformers": "spatial_trace_ros.server.backends.transformers_backend:TransformersBackend",
    "robotracer-relay": "spatial_trace_ros.server.backends.robotracer_relay:RoboTracerRelay",
}
# Names of a tensor model's optional instruction input: strings, or UTF-8 byte ids (int64 [B, L], 0 = padding).
TEXT_INPUT_NAMES = ("instruction", "text", "prompt")
TOKEN_INPUT_NAMES = ("tokens", "input_ids", "instruction_tokens")
DEFAULT_TOKEN_LENGTH = 64


@dataclass(frozen=True)
class ModelIdentity:
    name: str
    version: str
    backend: str


@dataclass(frozen=True)
class TextQuery:
    """One text-generation request: the color image, the operator's instruction and sampling settings.

    ``prompt`` is the client's exact prompt (None: the server's template with the instruction);
    ``frame`` the whole decoded request (depth, the encoded files) and ``intrinsics`` its camera, for
    backends that pass them on (the RoboTracer relay); ``enable_spatial`` the relay's encoder switch.
    """

    rgb: np.ndarray | None  # None when the backend does not need pixels (``needs_pixels``)
    instruction: str
    n_samples: int
    temperature: float
    max_new_tokens: int
    seed: int | None = None
    prompt: str | None = None
    frame: DecodedFrame | None = None
    intrinsics: Intrinsics | None = None
    enable_spatial: bool | None = None


def utf8_tokens(instructions: Sequence[str], length: int) -> np.ndarray:
    """Instructions as int64 [B, length] UTF-8 byte ids (1-256: byte + 1; 0 = padding), cut at ``length``."""
    out = np.zeros((len(instructions), length), np.int64)
    for row, text in enumerate(instructions):
        ids = np.frombuffer(text.encode("utf-8")[:length], np.uint8).astype(np.int64) + 1
        out[row, : len(ids)] = ids
    return out


class TensorBackend(ABC):
    """Runs ``trace = model(image[, depth][, instruction])`` on batches (shapes in docs/server.md)."""

    kind = "tensor"
    needs_pixels = True
    identity: ModelIdentity
    input_width: int
    input_height: int
    takes_depth: bool
    instruction_input: str | None = None  # None, "text" (strings) or "tokens" (UTF-8 byte ids)
    batch_limit: int | None  # a model exported with a fixed batch size
    device: str

    @abstractmethod
    def infer(self, images: np.ndarray, depths: np.ndarray, instructions: Sequence[str]) -> np.ndarray:
        """images (B, 3, H, W) and depths (B, 1, H, W) float32 and B instructions → traces (B, K, 3) float32.
        Models without an instruction input ignore ``instructions``."""

    def sampling_problem(self, n_samples: int, temperature: float) -> str:
        """Why this model cannot give ``n_samples`` answers ("" when it can): a tensor model is deterministic."""
        if n_samples > 1:
            return (f"n_samples = {n_samples}, but {self.identity.name} is a deterministic tensor model: it gives one "
                    "trace per frame, and copies of it would agree by construction; ask for n_samples 1")
        return ""

    def describe(self) -> str:
        return f"{self.identity.backend} on {self.device}"

    def gpu_memory_readers(self) -> tuple[Callable[[], tuple[int, int]], Callable[[], int] | None] | None:
        return cuda_memory_readers(self.device)

    def probe_inputs(self, batch: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """A fixed random batch at the model's input size (images in [0, 1], depth 0.3-2 m)."""
        rng = np.random.default_rng(0)
        images = rng.random((batch, 3, self.input_height, self.input_width), dtype=np.float32)
        depths = rng.uniform(0.3, 2.0, (batch, 1, self.input_height, self.input_width)).astype(np.float32)
        return images, depths

    def check_output(self, source: str) -> None:
        """Run a probe batch of 2 at load time, so a model that breaks the contract fails at startup."""
        images, depths = self.probe_inputs()
        try:
            out = self.infer(images, depths, ["probe", "move the cup to the left"])
        except Exception as err:  # a model that cannot run a probe batch is unusable, whatever the reason
            raise ModelError(f"{source} fails on a [2, 3, {self.input_height}, {self.input_width}] probe batch: "
                             f"{str(err).strip().splitlines()[0]}") from None
        if out.ndim != 3 or out.shape[0] != 2 or out.shape[2] != 3:
            raise ConfigError(f"{source} returns shape {list(out.shape)} for a batch of 2; the tensor-model "
                              "contract is [B, K, 3]")


class TextBackend(ABC):
    """Generates answers as text; the server parses them with ``convention``."""

    kind = "text"
    needs_pixels = True  # False: the backend passes the encoded files on and only needs them checked
    identity: ModelIdentity
    convention: str
    device: str

    @abstractmethod
    def generate(self, query: TextQuery) -> list[str]:
        """One text per sample (``query.n_samples``; ``sampling_problem`` has refused what cannot be)."""

    def sampling_problem(self, n_samples: int, temperature: float) -> str:
        """Why ``n_samples`` independent answers cannot be had ("" when they can)."""
        if n_samples > 1 and temperature <= 0:
            return (f"n_samples = {n_samples} needs temperature > 0: greedy decoding gives the same text every "
                    "time; send a temperature such as 0.7, or n_samples 1")
        return ""

    def warm_up(self) -> None:
        """Run the model once before the server says ready (the first call pays for lazy initialisation)."""
        self.generate(TextQuery(np.full((64, 64, 3), 128, np.uint8), "warm up", 1, 0.0, 2))

    def describe(self) -> str:
        return f"{self.identity.backend} on {self.device}"

    def gpu_memory_readers(self) -> tuple[Callable[[], tuple[int, int]], Callable[[], int] | None] | None:
        return cuda_memory_readers(self.device)


Backend = TensorBackend | TextBackend


def load_backend(settings: ServerSettings) -> Backend:
    """Build the backend named in ``settings`` (loads the model; raises ConfigError / ModelError)."""
    return load_registered(BACKENDS, settings.backend, "server backend")(settings)


def model_identity(settings: ServerSettings) -> ModelIdentity:
    """Name and version reported to clients: from the settings, else the file name and a content hash."""
    if settings.model_path is None:  # a relay: the model lives behind settings.upstream_url
        return ModelIdentity(settings.model_name or "robotracer", settings.model_version or "upstream",
                             settings.backend)
    path = Path(settings.model_path)
    name = settings.model_name or path.name
    version = settings.model_version or content_hash(path)
    return ModelIdentity(name, version, settings.backend)


def content_hash(path: Path) -> str:
    """12 hex digits identifying a model: a file's bytes, or a checkpoint folder's config files plus the
    names and sizes of its weight files (hashing many GB of weights would delay every start)."""
    digest = hashlib.sha256()
    if path.is_file():
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    else:
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            rel = item.relative_to(path).as_posix()
            if item.suffix in (".json", ".jinja", ".txt", ".model"):
                digest.update(rel.encode() + b"\0" + item.read_bytes())
            else:
                digest.update(f"{rel}\0{item.stat().st_size}".encode())
    return digest.hexdigest()[:12]


def require_model_file(settings: ServerSettings, what: str, suffixes: tuple[str, ...]) -> Path:
    path = Path(settings.model_path).expanduser()
    if not path.exists():
        raise ConfigError(f"model file {path} does not exist; pass --model with the path to {what}")
    if not path.is_file():
        raise ConfigError(f"--model {path} is a folder; the {settings.backend} backend needs {what}")
    if path.suffix not in suffixes:
        raise ConfigError(
            f"--model {path} has suffix {path.suffix!r}; the {settings.backend} backend expects {what} "
            f"({', '.join(suffixes)})"
        )
    return path


def cuda_index(device: str) -> int:
    return int(device.partition(":")[2] or 0)


def cuda_memory_readers(device: str) -> tuple[Callable[[], tuple[int, int]], Callable[[], int] | None] | None:
    """Readers of CUDA memory through torch (device-wide used/total, torch allocator), or None off CUDA."""
    if not device.startswith("cuda"):
        return None
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        log.warning("torch cannot see CUDA in this process; GPU memory metrics are off")
        return None
    index = cuda_index(device)

    def used_total() -> tuple[int, int]:
        free, total = torch.cuda.mem_get_info(index)
        return total - free, total

    return used_total, lambda: torch.cuda.memory_allocated(index)
