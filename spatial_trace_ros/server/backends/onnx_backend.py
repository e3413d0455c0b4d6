"""ONNX Runtime backend: the CUDA execution provider when present (CPU fallback), IO binding for outputs.

The graph must follow the tensor-model contract (docs/server.md): input 0 ``image`` [B, 3, H, W] with a
fixed H and W, optional ``depth`` [B, 1, H, W], optional instruction input (a string tensor [B], or
int64/int32 UTF-8 byte ids [B, L] named ``tokens``/``input_ids``), output 0 ``trace`` [B, K, 3]. The
float dtype the graph declares (float32 or float16) is what is fed, so an fp16 export runs in fp16.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import ModuleType

import numpy as np

from spatial_trace_ros.errors import ConfigError, ModelError
from spatial_trace_ros.server.backends.base import (
    DEFAULT_TOKEN_LENGTH,
    TOKEN_INPUT_NAMES,
    TensorBackend,
    cuda_index,
    model_identity,
    require_model_file,
    utf8_tokens,
)
from spatial_trace_ros.server.settings import ServerSettings

log = logging.getLogger(__name__)
_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
_TOKEN_DTYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


def _instruction_kind(node: object) -> str | None:
    """"text" for a string input, "tokens" for an integer input or one named like token ids, else None."""
    kind, name = getattr(node, "type", ""), getattr(node, "name", "").lower()
    if kind == "tensor(string)":
        return "text"
    if kind in _TOKEN_DTYPES or name in TOKEN_INPUT_NAMES:
        return "tokens"
    return None
_CUDA = "CUDAExecutionProvider"


def _static(dim: object) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def _preload_cuda_libraries(ort: ModuleType) -> None:
    """Load the CUDA and cuDNN libraries that pip installed with torch (nvidia-* wheels), so onnxruntime-gpu
    finds them without a system-wide CUDA install."""
    try:
        ort.preload_dlls()
    except Exception as err:  # the provider check below reports what failed to start
        log.warning("could not preload the CUDA libraries: %s", err)


class OnnxBackend(TensorBackend):
    def __init__(self, settings: ServerSettings) -> None:
        path = require_model_file(settings, "an ONNX model file", (".onnx",))
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise ConfigError(f"the onnx backend needs onnxruntime (make setup, or make setup GPU=1): {err}") from None
        available = ort.get_available_providers()
        want_cuda = settings.device.startswith("cuda") or (settings.device == "auto" and _CUDA in available)
        if settings.device.startswith("cuda") and _CUDA not in available:
            raise ConfigError(
                f"--device {settings.device}: this onnxruntime has no CUDA provider (it has {', '.join(available)}); "
                "install onnxruntime-gpu (make setup GPU=1) or use --device cpu"
            )
        if want_cuda:
            _preload_cuda_libraries(ort)
        index = cuda_index(settings.device) if want_cuda else 0
        providers: list = [(_CUDA, {"device_id": index}), "CPUExecutionProvider"] if want_cuda else [
            "CPUExecutionProvider"
        ]
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if settings.cpu_threads:
            options.intra_op_num_threads = settings.cpu_threads
        try:
            self._session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as err:  # onnxruntime raises its own untyped errors
            raise ModelError(f"cannot load ONNX model {path}: {str(err).strip()}") from None
        active = self._session.get_providers()
        if want_cuda and _CUDA not in active:
            if settings.device.startswith("cuda"):
                raise ConfigError(
                    f"the CUDA provider failed to start (active: {', '.join(active)}); check the CUDA and cuDNN "
                    "libraries onnxruntime-gpu needs, or use --device cpu"
                )
            log.warning("the CUDA provider failed to start; running on the CPU")
            want_cuda = False
        self.device = f"cuda:{index}" if want_cuda else "cpu"
        self._device_type, self._device_id = ("cuda", index) if want_cuda else ("cpu", 0)
        self.providers = active
        self.identity = model_identity(settings)
        self._check_contract(path, settings)

    def _check_contract(self, path: object, settings: ServerSettings) -> None:
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if not inputs:
            raise ConfigError(f"ONNX model {path} has no inputs; the tensor-model contract has image and optionally "
                              "depth")
        problems = []
        image, rest = inputs[0], inputs[1:]
        instruction = [node for node in rest if _instruction_kind(node)]
        depth = [node for node in rest if not _instruction_kind(node)]
        if len(depth) > 1 or len(instruction) > 1:
            problems.append(f"it has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); the contract has "
                            "image, optionally depth and optionally one instruction input (strings or tokens)")
        if image.type not in _DTYPES:
            problems.append(f"input {image.name!r} is {image.type}, not float or float16")
        if len(image.shape) != 4 or image.shape[1] != 3:
            problems.append(f"input {image.name!r} has shape {image.shape}, not [B, 3, H, W]")
        if depth and (len(depth[0].shape) != 4 or depth[0].shape[1] != 1):
            problems.append(f"input {depth[0].name!r} has shape {depth[0].shape}, not [B, 1, H, W]")
        if instruction and _instruction_kind(instruction[0]) == "tokens" and (
                len(instruction[0].shape) != 2 or instruction[0].type not in _TOKEN_DTYPES):
            problems.append(f"token input {instruction[0].name!r} is {instruction[0].type} {instruction[0].shape}, "
                            "not int64/int32 [B, L]")
        if len(outputs) < 1 or len(outputs[0].shape) != 3 or _static(outputs[0].shape[2]) not in (None, 3):
            shape = outputs[0].shape if outputs else None
            problems.append(f"output 0 has shape {shape}, not [B, K, 3]")
        if problems:
            raise ConfigError(f"ONNX model {path} does not follow the tensor-model contract: " + "; ".join(problems))
        graph_hw = (_static(image.shape[2]), _static(image.shape[3]))
        if settings.input_size is not None:
            width, height = settings.input_size
            if None not in graph_hw and graph_hw != (height, width):
                raise ConfigError(
                    f"--input-size {width}x{height} disagrees with the model's fixed input "
                    f"{graph_hw[1]}x{graph_hw[0]}; drop --input-size"
                )
        elif None in graph_hw:
            raise ConfigError(f"ONNX model {path} has no fixed input height/width; pass --input-size WIDTHxHEIGHT")
        else:
            height, width = graph_hw
        self.input_width, self.input_height = width, height
        self.takes_depth = bool(depth)
        self.batch_limit = _static(image.shape[0])
        self._image_name = image.name
        self._depth_name = depth[0].name if depth else None
        self._instruction_name = instruction[0].name if instruction else None
        self.instruction_input = _instruction_kind(instruction[0]) if instruction else None
        if self.instruction_input == "tokens":
            self._token_length = _static(instruction[0].shape[1]) or DEFAULT_TOKEN_LENGTH
            self._token_dtype = _TOKEN_DTYPES.get(instruction[0].type, np.int64)
        self._output_name = outputs[0].name
        self._dtype = _DTYPES[image.type]
        self.check_output(str(path))

    def infer(self, images: np.ndarray, depths: np.ndarray, instructions: Sequence[str]) -> np.ndarray:
        if self.instruction_input == "text":  # IO binding takes no string tensors: a plain run
            feeds = {self._image_name: np.ascontiguousarray(images, dtype=self._dtype),
                     self._instruction_name: np.array(list(instructions), dtype=object)}
            if self._depth_name is not None:
                feeds[self._depth_name] = np.ascontiguousarray(depths, dtype=self._dtype)
            return np.asarray(self._session.run([self._output_name], feeds)[0], dtype=np.float32)
        binding = self._session.io_binding()
        binding.bind_cpu_input(self._image_name, np.ascontiguousarray(images, dtype=self._dtype))
        if self._depth_name is not None:
            binding.bind_cpu_input(self._depth_name, np.ascontiguousarray(depths, dtype=self._dtype))
        if self._instruction_name is not None:
            tokens = utf8_tokens(instructions, self._token_length).astype(self._token_dtype)
            binding.bind_cpu_input(self._instruction_name, tokens)
        binding.bind_output(self._output_name, self._device_type, self._device_id)
        self._session.run_with_iobinding(binding)
        return np.asarray(binding.copy_outputs_to_cpu()[0], dtype=np.float32)

    def describe(self) -> str:
        return (f"onnxruntime on {self.device} (providers {', '.join(self.providers)}), input "
                f"{self.input_width}x{self.input_height} {np.dtype(self._dtype).name}"
                f"{' + depth' if self.takes_depth else ''}"
                f"{f' + instruction ({self.instruction_input})' if self.instruction_input else ''}")
