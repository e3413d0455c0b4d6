"""``spatial-trace record`` refuses what cannot work with one clear line, before touching a camera;
with no camera attached it says so. (Recording itself needs a RealSense; the file format it writes is
the one the synthetic recordings in the other camera tests are made of.)"""

from __future__ import annotations

from pathlib import Path

import pyrealsense2 as rs
import pytest

from spatial_trace_ros.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["record", *argv])
    return code, capsys.readouterr().err


def test_record_needs_a_db3_name(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = run_cli(capsys, str(tmp_path / "take.bag"))
    assert code == 2
    assert err.strip() == f"error: librealsense records to .db3 files; name the output like {tmp_path / 'take.db3'}"


def test_record_does_not_overwrite_without_force(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    existing = tmp_path / "take.db3"
    existing.write_bytes(b"keep me")
    code, err = run_cli(capsys, str(existing))
    assert code == 2 and "exists; pass --force to overwrite it" in err
    assert existing.read_bytes() == b"keep me"


@pytest.mark.parametrize(("args", "problem"), [
    (["--duration-s", "0"], "--duration-s must be positive, got 0.0"),
    (["--color-profile", "hd"], "--color-profile 'hd' is not WIDTHxHEIGHTxFPS"),
    (["--depth-profile", "848x480"], "--depth-profile '848x480' is not WIDTHxHEIGHTxFPS"),
])
def test_record_checks_its_options(capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str],
                                   problem: str) -> None:
    code, err = run_cli(capsys, str(tmp_path / "take.db3"), *args)
    assert code == 2 and problem in err


@pytest.mark.skipif(len(rs.context().query_devices()) > 0, reason="a RealSense camera is attached")
def test_record_without_a_camera_says_none_is_attached(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = run_cli(capsys, str(tmp_path / "take.db3"), "--serial", "123456", "--duration-s", "1")
    assert code == 2
    assert "no RealSense camera with serial number '123456' is connected; available: (none" in err
    assert not (tmp_path / "take.db3").exists()
