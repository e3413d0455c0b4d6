"""Honest sampling (temperature and seeds reach the servers that take them; identical samples are not a
consensus) and conventions that refuse numbers written on another scale or in another axis order."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from spatial_trace_ros.errors import ConfigError, TraceParseError
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics, RgbdFrame
from spatial_trace_ros.testing.fake_model_servers import FakeConfig, configure_fake, fake_requests
from spatial_trace_ros.trace.consensus import choose_consensus
from spatial_trace_ros.trace.model import ModelAnswer, TraceModel, TraceQuery, make_trace_model
from spatial_trace_ros.trace.parser import parse_answer
from spatial_trace_ros.trace.pipeline import build_trace

INTR = CameraIntrinsics(640, 480, 500.0, 500.0, 320.0, 240.0)
ANSWER = "[(250, 500, 1.0), (500, 500, 1.1), (750, 500, 1.2)]"


def frame() -> RgbdFrame:
    rng = np.random.default_rng(0)
    return RgbdFrame(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), None, INTR)


def ask(model: TraceModel, n_samples: int, temperature: float) -> list[ModelAnswer]:
    async def run() -> list[ModelAnswer]:
        try:
            return await model.answer(TraceQuery(frame(), "put the cup away", n_samples, temperature))
        finally:
            await model.aclose()

    return asyncio.run(run())


# -- consensus -----------------------------------------------------------------------------------------


def test_identical_samples_are_no_independent_samples_not_agreement_one() -> None:
    trace = np.column_stack([np.linspace(0, 0.3, 6), np.zeros(6), np.ones(6)])
    result = choose_consensus([trace.copy() for _ in range(4)], n_requested=4, agreement_radius_m=0.05)
    assert not result.independent and result.agreement == pytest.approx(0.25)
    assert "no independent samples: all 4 parseable samples of 4 are the same trace" in result.describe(0.05)
    near = [trace, trace + 0.001, trace - 0.001]
    assert choose_consensus(near, 3, 0.05).independent and choose_consensus(near, 3, 0.05).agreement == 1.0


def test_pipeline_refuses_a_consensus_of_copies_with_the_reason() -> None:
    answers = [ModelAnswer(ANSWER, "robotracer") for _ in range(3)]
    outcome = build_trace(answers, frame())
    assert not outcome.ok and outcome.agreement != 1.0
    assert "no independent samples" in outcome.reason and "n_samples 1" in outcome.reason


# -- what reaches the servers ------------------------------------------------------------------------


@pytest.fixture
def server(fake_model_server: str) -> str:
    configure_fake(fake_model_server, **FakeConfig(answers=[ANSWER]).model_dump())
    return fake_model_server


@pytest.mark.integration
def test_openai_samples_carry_temperature_and_distinct_seeds(server: str) -> None:
    model = make_trace_model("openai", base_url=server + "/v1", model="m", seed=40, retry_backoff_s=0.01)
    assert len(ask(model, 3, 0.8)) == 3
    seen = fake_requests(server)
    assert sorted(r["extra"]["seed"] for r in seen) == [40, 41, 42]
    assert {r["temperature"] for r in seen} == {0.8} and {r["n"] for r in seen} == {1}


@pytest.mark.integration
def test_trace_server_gets_temperature_and_seed(server: str) -> None:
    model = make_trace_model("http", base_url=server, seed=7, retry_backoff_s=0.01)
    ask(model, 2, 0.5)
    (seen,) = fake_requests(server)
    assert (seen["n_samples"], seen["temperature"], seen["seed"]) == (2, 0.5, 7)


@pytest.mark.parametrize("name", ["openai", "http"])
def test_several_greedy_samples_are_refused_before_any_request(name: str) -> None:
    options = {"model": "m"} if name == "openai" else {}
    model = make_trace_model(name, base_url="http://127.0.0.1:9", **options)
    with pytest.raises(ConfigError, match="needs temperature > 0"):
        model.check_sampling(3, 0.0)
    with pytest.raises(ConfigError, match="needs temperature > 0"):
        ask(model, 3, 0.0)
    model.check_sampling(3, 0.7)


# -- conventions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "convention", "pattern"),
    [
        ("[(0.2, 0.5), (0.6, 0.4)]", "robotracer", r"between 0 and 1.*0-1000 scale.*--convention roborefer"),
        ("[(0.2, 0.5, 1.1), (0.6, 0.4, 1.2)]", "robotracer", r"between 0 and 1.*roborefer"),
        ("[(0.2, 0.5), (0.6, 0.4)]", "robobrain", r"between 0 and 1, but the robobrain convention writes pixels"),
        ("[[0.2, 0.5], [1, 0.4]]", "molmoact", r"0-255 scale.*roborefer"),
        ('[{"point": [0.2, 0.5]}, {"point": [0.6, 0.4]}]', "gemini", "roborefer"),
        ("Points as (y, x): [(500, 250), (400, 750)]", "robotracer", r"y first \('\(y, x\)'\).*--convention gemini"),
        ('Each "point" is [y1, x1]. [[500, 250], [400, 750]]', "robobrain", "y first.*gemini"),
        ("I give (x, y) pairs: [[500, 250], [400, 750]]", "gemini", r"x first.*--convention robotracer"),
    ],
)
def test_answers_that_contradict_the_convention_are_refused_naming_the_fitting_one(
    text: str, convention: str, pattern: str
) -> None:
    with pytest.raises(TraceParseError, match=pattern):
        parse_answer(text, convention, 640, 480)


def test_answers_that_fit_their_convention_still_parse() -> None:
    assert len(parse_answer("[(0.2, 0.5), (0.6, 0.4)]", "roborefer", 640, 480)) == 2
    assert len(parse_answer("[(x, y) = ] [(200, 500), (1, 0.5)]", "robotracer", 640, 480)) == 2
    assert len(parse_answer('[{"point": [500, 250]}, {"point": [400, 750]}] as [y, x]', "gemini", 640, 480)) == 2
