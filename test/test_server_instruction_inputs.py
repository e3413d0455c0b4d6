"""Tensor models that take the instruction (ONNX and TorchScript strings, UTF-8 byte tokens) receive it, and a
deterministic model asked for several samples answers 400 saying why, through the real server core."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.trace_server import random_image, trace_body
from spatial_trace_ros.server.backends.base import load_backend, utf8_tokens
from spatial_trace_ros.server.errors import RequestError
from spatial_trace_ros.server.metrics import ServerMetrics
from spatial_trace_ros.server.schema import TraceRequest
from spatial_trace_ros.server.service import TraceService
from spatial_trace_ros.server.settings import build_settings


class TextConditioned(torch.nn.Module):
    """u = instruction length / 100, v = mean image brightness, d = 1 m: the instruction visibly steers it."""

    def forward(self, image: torch.Tensor, depth: torch.Tensor, instruction: list[str]) -> torch.Tensor:
        lengths = torch.tensor([float(len(s)) for s in instruction]) / 100.0
        v = image.mean(dim=(1, 2, 3))
        return torch.stack([lengths, v, torch.ones_like(v)], dim=1).reshape(-1, 1, 3).repeat(1, 2, 1)


class TokenConditioned(torch.nn.Module):
    """u = number of non-padding tokens / 100 (UTF-8 bytes), v = first byte id / 300, d = 1 m."""

    def forward(self, image: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        count = (tokens > 0).sum(dim=1).float() / 100.0
        first = tokens[:, 0].float() / 300.0
        return torch.stack([count, first, torch.ones_like(count)], dim=1).reshape(-1, 1, 3).repeat(1, 2, 1)


def save(module: torch.nn.Module, path: Path) -> Path:
    torch.jit.script(module).save(str(path))
    return path


def backend_for(path: Path):
    return load_backend(build_settings(backend="torch", model_path=path, input_size=(16, 12), device="cpu",
                                       allow_no_auth=True))


def test_torchscript_text_input_receives_each_instruction(tmp_path: Path) -> None:
    backend = backend_for(save(TextConditioned(), tmp_path / "text.pt"))
    assert backend.instruction_input == "text" and backend.takes_depth
    images = np.zeros((2, 3, 12, 16), np.float32)
    out = backend.infer(images, np.zeros((2, 1, 12, 16), np.float32), ["go", "put the cup on the plate"])
    np.testing.assert_allclose(out[:, 0, 0], [0.02, 0.24], atol=1e-6)


def test_token_input_gets_utf8_byte_ids(tmp_path: Path) -> None:
    backend = backend_for(save(TokenConditioned(), tmp_path / "tokens.pt"))
    assert backend.instruction_input == "tokens" and not backend.takes_depth
    out = backend.infer(np.zeros((2, 3, 12, 16), np.float32), np.zeros((2, 1, 12, 16), np.float32),
                        ["abc", "é" * 40])  # 80 bytes, cut at 64
    np.testing.assert_allclose(out[:, 0, 0], [0.03, 0.64], atol=1e-6)
    np.testing.assert_allclose(out[0, 0, 1], (ord("a") + 1) / 300.0, atol=1e-6)
    assert utf8_tokens(["é"], 4).tolist() == [[0xC3 + 1, 0xA9 + 1, 0, 0]]


def _serve_once(backend, request: TraceRequest) -> dict:
    settings = build_settings(backend="torch", model_path="unused.pt", input_size=(16, 12), allow_no_auth=True,
                              warmup_batches=0)

    async def scenario() -> dict:
        service = TraceService(backend, settings, ServerMetrics())
        await service.start()
        while not service.readiness()[0]:
            await asyncio.sleep(0.01)
        try:
            return (await service.trace(request)).model_dump()
        finally:
            await service.stop()

    return asyncio.run(scenario())


def test_the_server_passes_the_request_instruction_and_refuses_samples(tmp_path: Path) -> None:
    backend = backend_for(save(TextConditioned(), tmp_path / "text.pt"))
    body = trace_body(random_image(32, 24, 0), instruction="x" * 50)
    response = _serve_once(backend, TraceRequest(**body))
    assert response["samples"][0]["points"][0][0] == pytest.approx(0.5 * 32)  # u = 50 / 100 of the width
    with pytest.raises(RequestError, match=r"deterministic tensor model.*n_samples 1") as err:
        _serve_once(backend, TraceRequest(**trace_body(random_image(32, 24, 0), n_samples=3, temperature=0.7)))
    assert err.value.status_code == 400


def test_a_model_with_unknown_extra_inputs_is_refused(tmp_path: Path) -> None:
    class Odd(torch.nn.Module):
        def forward(self, image: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return image[:, :1, :2, 0].permute(0, 2, 1).repeat(1, 1, 3)

    from spatial_trace_ros.errors import ConfigError

    with pytest.raises(ConfigError, match=r"takes the inputs \(image, depth, mask\).*instruction / text / prompt"):
        backend_for(save(Odd(), tmp_path / "odd.pt"))


def _onnx(path: Path, second: object, nodes: list, initializers: list) -> Path:
    import onnx
    from onnx import TensorProto, helper

    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["B", 3, 12, 16])
    trace = helper.make_tensor_value_info("trace", TensorProto.FLOAT, ["B", 2, 3])
    tail = [  # u (B,) -> trace (B, 2, 3) of (u, u, u) rows
        helper.make_node("Unsqueeze", ["u", "one"], ["u1"]),
        helper.make_node("Concat", ["u1", "u1", "u1"], ["row"], axis=1),
        helper.make_node("Unsqueeze", ["row", "one"], ["row1"]),
        helper.make_node("Concat", ["row1", "row1"], ["trace"], axis=1),
    ]
    one = helper.make_tensor("one", TensorProto.INT64, [1], [1])
    graph = helper.make_graph([*nodes, *tail], "instructed", [image, second], [trace], initializer=[*initializers, one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_onnx_string_and_token_inputs_receive_the_instruction(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    text = _onnx(tmp_path / "text.onnx", helper.make_tensor_value_info("prompt", TensorProto.STRING, ["B"]),
                 [helper.make_node("Equal", ["prompt", "go"], ["eq"]), helper.make_node("Cast", ["eq"], ["u"], to=1)],
                 [helper.make_tensor("go", TensorProto.STRING, [], [b"go"])])
    tokens = _onnx(tmp_path / "tokens.onnx", helper.make_tensor_value_info("ids", TensorProto.INT64, ["B", 8]),
                   [helper.make_node("Cast", ["ids"], ["f"], to=1),
                    helper.make_node("ReduceSum", ["f", "axis"], ["u"], keepdims=0)],
                   [helper.make_tensor("axis", TensorProto.INT64, [1], [1])])
    images, depths = np.zeros((2, 3, 12, 16), np.float32), np.zeros((2, 1, 12, 16), np.float32)
    settings = {"backend": "onnx", "device": "cpu", "allow_no_auth": True}
    backend = load_backend(build_settings(model_path=text, **settings))
    assert backend.instruction_input == "text"
    np.testing.assert_array_equal(backend.infer(images, depths, ["go", "stop"])[:, 0, 0], [1.0, 0.0])
    backend = load_backend(build_settings(model_path=tokens, **settings))
    assert backend.instruction_input == "tokens"  # found by dtype, whatever its name; L = 8 from the graph
    out = backend.infer(images, depths, ["abc", "x" * 20])[:, 0, 0]
    np.testing.assert_array_equal(out, [98 + 99 + 100, 8 * (ord("x") + 1)])
