"""``spatial-trace ask`` against a running stack (``spatial-trace demo --serve`` in its own process), and
its messages when there is no stack or the trace stage refuses."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from spatial_trace_ros.testing.processes import ProcessGroup, ros_test_env, wait_for

SERVE_TIMEOUT_S = 120.0


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "spatial_trace_ros.cli", *args]


def _ask(env: dict[str, str], *args: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess:
    return subprocess.run(_cli("ask", *args), env=env, capture_output=True, text=True, timeout=timeout_s,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def instructions() -> dict[str, str]:
    """For scene 0: one instruction the stack executes, one the safety filter must refuse."""
    from spatial_trace_ros.demo.instructions import choose_instructions
    from spatial_trace_ros.planning.safety_config import SafetyConfig
    from spatial_trace_ros.robots.model import make_robot_model
    from spatial_trace_ros.sim.config import world_config
    from spatial_trace_ros.sim.ur_arm import HOME_Q_RAD

    scene = world_config(robot="ur5e", scene_seed=0).build_scene()
    chosen = choose_instructions(scene, make_robot_model("ur5e"), SafetyConfig(), np.array(HOME_Q_RAD["ur5e"]),
                                 short=True)
    return {"execute": chosen[0].text, "refuse": next(i.text for i in chosen if i.expect == "refuse")}


@pytest.fixture(scope="module")
def stack_env(tmp_path_factory: pytest.TempPathFactory, ros_domain_id: int) -> dict[str, str]:
    env = ros_test_env(ros_domain_id)
    with ProcessGroup(tmp_path_factory.mktemp("procs")) as procs:
        serve = procs.start("serve", _cli("demo", "--serve", "--out", str(tmp_path_factory.mktemp("serve"))),
                            env=env)
        wait_for(lambda: "serving" in serve.output() or not serve.alive(), SERVE_TIMEOUT_S, "the simulated stack",
                 on_timeout=serve.tail)
        assert serve.alive(), f"demo --serve exited:\n{serve.tail(60)}"
        yield env
        assert serve.alive(), f"demo --serve died during the tests:\n{serve.tail(60)}"


def test_ask_executes_an_accepted_instruction(stack_env: dict[str, str], instructions: dict[str, str]) -> None:
    result = _ask(stack_env, instructions["execute"], "--execute")
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "trace: 10 points from oracle" in out
    assert "safety verdict: ACCEPT" in out
    plan_id = re.search(r"^plan ([0-9a-f]{16}): ", out, re.MULTILINE)
    assert plan_id and " s, TCP path " in out and "in frame 'base'" in out and "expires in " in out, out
    assert f"approve {plan_id.group(1)}: plan {plan_id.group(1)} approved" in out
    assert f"execute: executing plan {plan_id.group(1)}" in out
    assert "outcome: succeeded" in out and "largest tracking error" in out


def test_ask_reports_the_safety_refusal_and_moves_nothing(stack_env: dict[str, str],
                                                           instructions: dict[str, str]) -> None:
    result = _ask(stack_env, instructions["refuse"], "--execute")
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "safety verdict: REJECT" in out and "KEEP_OUT_ZONE" in out and "robot_base" in out
    assert "nothing will move." in out
    assert "execute:" not in out and "outcome:" not in out


def test_ask_without_confirmation_does_not_execute(stack_env: dict[str, str], instructions: dict[str, str]) -> None:
    result = _ask(stack_env, instructions["execute"])
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "safety verdict: ACCEPT" in out
    assert "no terminal to confirm on" in out and "not executed" in out
    assert "execute:" not in out and "outcome:" not in out


def test_ask_reports_a_trace_the_model_cannot_make(stack_env: dict[str, str]) -> None:
    result = _ask(stack_env, "juggle the blue bowl", "--execute")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "trace error: the simulation oracle does not understand 'juggle the blue bowl'" in result.stdout
    assert "safety verdict" not in result.stdout


def test_ask_says_when_no_stack_is_running(ros_domain_id: int) -> None:
    env = ros_test_env(ros_domain_id + 100)  # a domain where nothing runs
    result = _ask(env, "pick up the red cube", "--discovery-timeout-s", "1", timeout_s=60.0)
    assert result.returncode == 2
    assert "no running stack found" in result.stderr and "trace_node" in result.stderr
    assert "spatial-trace demo --serve" in result.stderr and "Traceback" not in result.stderr
    assert "sent" not in result.stdout


def test_ask_refuses_an_empty_instruction() -> None:
    result = subprocess.run(_cli("ask", "  "), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "instruction is empty" in result.stderr
