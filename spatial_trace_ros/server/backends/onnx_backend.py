"""ONNX Runtime backend: the CUDA execution provider when present (CPU fallback), IO binding for outputs.

The graph must follow the tensor-model contract (docs/server.md): input 0 ``image`` [B, 3, H, W] with a
fixed H and W, optional input 1 ``depth`` [B, 1, H, W], output 0 ``trace`` [B, K, 3]. The input dtype
the graph declares (float32 or float16) is what is fed, so an fp16 export runs in fp16.
"""

from __future__ import annotations

import logging
from types import ModuleType

import numpy as np

from spatial_trace_ros.errors import ConfigError, ModelError
from spatial_trace_ros.server.backends.base import TensorBackend, cuda_index, model_identity, require_model_file
from spatial_trace_ros.server.settings import ServerSettings

log = logging.getLogger(__name__)
_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
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
        if len(inputs) not in (1, 2):
            problems.append(f"it has {len(inputs)} inputs, the contract has image and optionally depth")
        image = inputs[0]
        if image.type not in _DTYPES:
            problems.append(f"input {image.name!r} is {image.type}, not float or float16")
        if len(image.shape) != 4 or image.shape[1] != 3:
            problems.append(f"input {image.name!r} has shape {image.shape}, not [B, 3, H, W]")
        if len(inputs) == 2 and (len(inputs[1].shape) != 4 or inputs[1].shape[1] != 1):
            problems.append(f"input {inputs[1].name!r} has shape {inputs[1].shape}, not [B, 1, H, W]")
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
        self.takes_depth = len(inputs) == 2
        self.batch_limit = _static(image.shape[0])
        self._image_name = image.name
        self._depth_name = inputs[1].name if self.takes_depth else None
        self._output_name = outputs[0].name
        self._dtype = _DTYPES[image.type]
        self.check_output(str(path))

    def infer(self, images: np.ndarray, depths: np.ndarray) -> np.ndarray:
        binding = self._session.io_binding()
        binding.bind_cpu_input(self._image_name, np.ascontiguousarray(images, dtype=self._dtype))
        if self._depth_name is not None:
            binding.bind_cpu_input(self._depth_name, np.ascontiguousarray(depths, dtype=self._dtype))
        binding.bind_output(self._output_name, self._device_type, self._device_id)
        self._session.run_with_iobinding(binding)
        return np.asarray(binding.copy_outputs_to_cpu()[0], dtype=np.float32)

    def describe(self) -> str:
        return (f"onnxruntime on {self.device} (providers {', '.join(self.providers)}), input "
                f"{self.input_width}x{self.input_height} {np.dtype(self._dtype).name}"
                f"{' + depth' if self.takes_depth else ''}")
