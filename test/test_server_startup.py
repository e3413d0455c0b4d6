"""``spatial-trace serve`` refuses to start with a clear one-line error (exit 2, no traceback) for every
misconfiguration it can detect before serving: settings, token, model path, model contract, port."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch

from helpers.trace_server import TOKEN, TinyTraceNet, export_onnx, write_token
from spatial_trace_ros import cli
from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.server.auth import BearerAuth, load_token
from spatial_trace_ros.server.errors import RequestError
from spatial_trace_ros.server.settings import TOKEN_ENV_VAR, build_settings, parse_size


class FiveNumbers(torch.nn.Module):
    """Breaks the contract: returns [B, 5] instead of [B, K, 3]."""

    def forward(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return image.mean(dim=(2, 3)).repeat(1, 2)[:, :5] + depth.mean()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("server_startup")
    garbage = directory / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf" * 10)
    torch.manual_seed(0)
    return {
        "good": export_onnx(TinyTraceNet().eval(), directory / "good.onnx", 16, 16),
        "wrong_contract": export_onnx(FiveNumbers(), directory / "five.onnx", 16, 16),
        "garbage": garbage,
        "dir": directory,
    }


def serve(capsys: pytest.CaptureFixture, *argv: str) -> str:
    """Run the command in-process; it must fail with exit code 2 and one error line."""
    assert cli.main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def test_missing_model_and_wrong_files_are_named(models: dict[str, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    token = str(write_token(tmp_path))
    assert "does not exist" in serve(capsys, "--backend", "onnx", "--model", str(tmp_path / "nope.onnx"),
                                     "--token-file", token)
    wrong_kind = tmp_path / "model.pt"
    wrong_kind.write_bytes(b"x")
    err = serve(capsys, "--backend", "onnx", "--model", str(wrong_kind), "--token-file", token)
    assert "has suffix '.pt'; the onnx backend expects an ONNX model file (.onnx)" in err
    assert "is a folder" in serve(capsys, "--backend", "onnx", "--model", str(tmp_path), "--token-file", token)
    assert "cannot load ONNX model" in serve(capsys, "--backend", "onnx", "--model", str(models["garbage"]),
                                             "--token-file", token)
    err = serve(capsys, "--backend", "onnx", "--model", str(models["wrong_contract"]), "--token-file", token)
    assert "tensor-model contract" in err
    err = serve(capsys, "--backend", "torch", "--model", str(models["garbage"]), "--token-file", token)
    assert "expects a TorchScript (.pt) or torch.export (.pt2) file" in err
    garbage_pt = tmp_path / "garbage.pt"
    garbage_pt.write_bytes(b"nope")
    err = serve(capsys, "--backend", "torch", "--model", str(garbage_pt), "--token-file", token)
    assert "pass --input-size" in err
    err = serve(capsys, "--backend", "torch", "--model", str(garbage_pt), "--input-size", "16x16",
                "--token-file", token)
    assert "cannot load torch model" in err


def test_transformers_needs_a_checkpoint_folder(models: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    token = str(write_token(tmp_path))
    err = serve(capsys, "--backend", "transformers", "--model", str(tmp_path), "--token-file", token)
    assert "not a transformers checkpoint folder (no config.json" in err
    err = serve(capsys, "--backend", "transformers", "--model", str(models["good"]), "--token-file", token)
    assert "is a file" in err


def test_settings_are_validated_all_at_once(models: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    err = serve(capsys, "--backend", "onnx", "--model", str(models["good"]), "--max-batch-size", "0",
                "--device", "gpu", "--port", "70000", "--allow-no-auth")
    assert "--max-batch-size: Input should be greater than or equal to 1" in err
    assert "--device: 'gpu' is not a device" in err
    assert "--port: Input should be less than or equal to 65535" in err
    err = serve(capsys, "--backend", "torch", "--model", str(models["good"]), "--precision", "fp16",
                "--device", "cpu", "--allow-no-auth")
    assert "fp16 needs a CUDA device" in err
    err = serve(capsys, "--backend", "onnx", "--model", str(models["good"]), "--input-size", "320by240",
                "--allow-no-auth")
    assert "is not WIDTHxHEIGHT" in err
    with pytest.raises(ConfigError, match="--precision fp16 does not apply to ONNX"):
        build_settings(backend="onnx", model_path="m.onnx", precision="fp16", device="cuda")
    assert parse_size(" 640 x 480 ") == (640, 480)


def test_input_size_must_agree_with_a_fixed_onnx_input(models: dict[str, Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    err = serve(capsys, "--backend", "onnx", "--model", str(models["good"]), "--input-size", "32x16",
                "--token-file", str(write_token(tmp_path)))
    assert "--input-size 32x16 disagrees with the model's fixed input 16x16" in err


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_cuda_requested_without_cuda_is_refused(models: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    token = str(write_token(tmp_path))
    err = serve(capsys, "--backend", "onnx", "--model", str(models["good"]), "--device", "cuda",
                "--token-file", token)
    assert "no CUDA provider" in err and "onnxruntime-gpu" in err
    pt = tmp_path / "m.pt"
    torch.jit.script(TinyTraceNet().eval()).save(str(pt))
    err = serve(capsys, "--backend", "torch", "--model", str(pt), "--device", "cuda:1", "--input-size", "16x16",
                "--token-file", token)
    assert "sees no CUDA GPU" in err


def test_a_busy_port_is_reported_before_the_model_loads(models: dict[str, Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        err = serve(capsys, "--backend", "onnx", "--model", str(models["good"]), "--port", str(port),
                    "--token-file", str(write_token(tmp_path)))
    assert f"cannot listen on 127.0.0.1:{port}" in err


def test_token_sources_and_refusals(tmp_path: Path, capsys: pytest.CaptureFixture,
                                    models: dict[str, Path]) -> None:
    err = serve(capsys, "--backend", "onnx", "--model", str(models["good"]))
    assert TOKEN_ENV_VAR in err and "--token-file" in err
    assert load_token(write_token(tmp_path)) == TOKEN
    assert load_token(None, environ={TOKEN_ENV_VAR: f"  {TOKEN}\n"}) == TOKEN
    assert load_token(None, allow_no_auth=True, environ={}) is None
    with pytest.raises(ConfigError, match="does not exist"):
        load_token(tmp_path / "missing")
    short = tmp_path / "short"
    short.write_text("hunter2")
    with pytest.raises(ConfigError, match="at least 16 characters") as caught:
        load_token(short)
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ConfigError, match="at least 16 characters"):
        load_token(None, environ={TOKEN_ENV_VAR: "has spaces in the middle of it"})


def test_world_readable_token_file_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_token(tmp_path)
    os.chmod(path, 0o644)
    assert load_token(path) == TOKEN
    assert "readable by other users" in caplog.text and TOKEN not in caplog.text


def test_bearer_check() -> None:
    auth = BearerAuth(TOKEN)
    auth.check(f"Bearer {TOKEN}")
    auth.check(f"bearer {TOKEN}")
    for header, reason in [(None, "missing bearer token"), ("", "missing bearer token"),
                           (f"Token {TOKEN}", "must be 'Bearer <token>'"), ("Bearer ", "must be 'Bearer <token>'"),
                           ("Bearer wrong-token-0123456789", "invalid bearer token"),
                           (f"Bearer {TOKEN}é", "invalid bearer token")]:
        with pytest.raises(RequestError, match=reason) as caught:
            auth.check(header)
        assert caught.value.status_code == 401 and TOKEN not in caught.value.detail
    BearerAuth(None).check(None)
