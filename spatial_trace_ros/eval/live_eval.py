"""Run a live trace backend over a dataset and keep every answer, resumably.

For each sample the dataset's RGB image and aligned depth become an ``RgbdFrame``; the backend
(any ``trace.model.TraceModel`` from ``make_trace_model``) is asked the sample's instruction, at most
``concurrency`` requests at a time. Each answer is appended to ``answers.jsonl`` as soon as it arrives,
as the dataset's record plus ``model_prediction`` (the raw answer) and an ``eval`` object (backend,
convention, latency, error), so the file is itself an answers file in the TraceSpatial-Bench layout
that ``spatial-trace eval-answers`` can score. A run that stops (Ctrl-C, a crash, a dead server)
continues where it stopped: samples with an answer are skipped, samples whose request failed are
asked again. ``run.json`` records what was run, so a folder never mixes two backends' answers.

Backends that read the simulation's ground truth instead of pixels (the ``oracle``) are built per
sample from the sample's ``scene_path`` (written by ``spatial-trace synth``); their perturbation noise
is seeded per sample (``perturbation_seed`` + the sample's index), so results do not depend on the
order requests finish in.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spatial_trace_ros.errors import ConfigError, ModelError
from spatial_trace_ros.eval.dataset import DatasetEntry, load_entries, load_frame, resolve_dataset
from spatial_trace_ros.eval.live_report import LiveReport, write_live_report
from spatial_trace_ros.eval.success import SuccessCriteria
from spatial_trace_ros.geometry.camera_model import RgbdFrame
from spatial_trace_ros.trace.conventions import get_convention
from spatial_trace_ros.trace.model import ModelAnswer, TraceModel, TraceQuery, make_trace_model
from spatial_trace_ros.trace.pipeline import build_trace

ANSWERS_FILE = "answers.jsonl"
RUN_FILE = "run.json"
SCENE_BACKENDS = ("oracle",)
SECRET_HINTS = ("key", "token", "secret", "password")


def public_options(options: dict[str, Any]) -> dict[str, Any]:
    """Options with secrets left out, for files a person may share."""
    return {k: ("<redacted>" if any(h in k.lower() for h in SECRET_HINTS) and k != "api_key_env" else v)
            for k, v in options.items()}


class BackendProvider:
    """Builds the backend for each sample: one shared client, or one per sample for scene backends."""

    def __init__(self, name: str, options: dict[str, Any], base_dir: Path,
                 factory: Callable[..., TraceModel] = make_trace_model) -> None:
        self.name = name
        self.options = dict(options)
        self.base_dir = base_dir
        self._factory = factory
        self._shared: TraceModel | None = None
        self.per_sample = name in SCENE_BACKENDS
        if self.per_sample:
            taken = sorted({"scene_file", "scene_seed"} & set(self.options))
            if taken:
                raise ConfigError(f"the {name} backend reads each sample's scene from the dataset; drop the "
                                  f"option(s) {', '.join(taken)}")

    def check(self, entry: DatasetEntry, model_samples: int = 1, temperature: float = 0.0) -> None:
        """Build the backend once, so bad options (and sampling it cannot do) fail before any request is sent."""
        model = self.model_for(entry)
        try:
            model.check_sampling(model_samples, temperature)
        finally:
            if self.per_sample:
                asyncio.run(model.aclose())

    def model_for(self, entry: DatasetEntry) -> TraceModel:
        if not self.per_sample:
            if self._shared is None:
                self._shared = self._factory(self.name, **self.options)
            return self._shared
        scene = entry.record.get("scene_path")
        if not scene:
            raise ConfigError(f"sample {entry.qid} has no scene_path: the {self.name} backend answers only for "
                              "datasets made by `spatial-trace synth`; use a model backend for other data")
        options = {**self.options, "scene_file": str(self.base_dir / str(scene))}
        seed = self.options.get("perturbation_seed", 0)
        if isinstance(seed, int) and not isinstance(seed, bool):  # anything else: the backend names the problem
            options["perturbation_seed"] = seed + entry.index
        return self._factory(self.name, **options)

    async def release(self, model: TraceModel) -> None:
        if self.per_sample:
            await model.aclose()

    async def aclose(self) -> None:
        if self._shared is not None:
            await self._shared.aclose()
            self._shared = None


def read_answer_rows(path: Path) -> dict[str, dict[str, Any]]:
    """The last row per question id of an answers file (a half-written last line is ignored)."""
    rows: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return rows
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                continue  # the run was killed while writing it; that sample is asked again
            raise ConfigError(f"{path} line {number} is not JSON; the answers file is damaged: delete it or "
                              "choose another --out") from None
        qid = row.get("question_id", row.get("id"))
        rows[str(qid)] = row
    return rows


def drop_partial_line(path: Path) -> None:
    """Cut a half-written last line (a run killed mid-write) so new rows start on a line of their own."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


def check_run_identity(out_dir: Path, identity: dict[str, Any]) -> None:
    """Write ``run.json``, or check that the folder's earlier run was the same run."""
    path = out_dir / RUN_FILE
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        if previous != identity:
            changed = sorted(k for k in set(previous) | set(identity) if previous.get(k) != identity.get(k))
            raise ConfigError(f"{out_dir} holds answers of a different run (differs in: {', '.join(changed)}); "
                              "choose another --out, or delete the folder to start over")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(identity, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def _answer_text(answer: ModelAnswer, frame: RgbdFrame) -> tuple[str, str]:
    """(text, convention) of an answer; servers that return pixel points get them written as RoboTracer text."""
    if answer.text.strip() or answer.points_uvd is None:
        return answer.text, answer.convention
    pts = np.asarray(answer.points_uvd, dtype=float).reshape(-1, 3)
    depth = pts[:, 2] if np.all(np.isfinite(pts[:, 2])) else None
    intr = frame.intrinsics
    return get_convention("robotracer").format_points(pts[:, :2], intr.width, intr.height, depth), "robotracer"


async def ask_one(model: TraceModel, frame: RgbdFrame, instruction: str, model_samples: int, temperature: float,
                  timeout_s: float) -> dict[str, Any]:
    """Ask one question; the ``eval`` fields of its answer row (errors are recorded, not raised)."""
    query = TraceQuery(frame, instruction, model_samples, temperature)
    loop = asyncio.get_running_loop()
    started = loop.time()
    info: dict[str, Any] = {"backend": getattr(model, "name", ""), "convention": getattr(model, "convention", "")}
    try:
        answers = await asyncio.wait_for(model.answer(query), timeout_s)
    except asyncio.TimeoutError:
        return {**info, "error": f"no answer within {timeout_s:g} s", "latency_s": loop.time() - started}
    except ModelError as err:
        return {**info, "error": str(err), "latency_s": loop.time() - started}
    info["latency_s"] = loop.time() - started
    if not answers:
        return {**info, "error": "the backend returned no answers"}
    chosen = 0
    if len(answers) > 1:
        outcome = build_trace(answers, frame, n_requested=model_samples)
        chosen = outcome.chosen_index if outcome.chosen_index is not None else 0
        info.update(agreement=outcome.agreement, refused=outcome.reason or None,
                    answers=[_answer_text(a, frame)[0] for a in answers])
    text, convention = _answer_text(answers[chosen], frame)
    info.update(prediction=text, convention=convention, model=answers[chosen].model, n_answers=len(answers))
    return info


async def answer_entries(
    entries: Sequence[DatasetEntry],
    provider: BackendProvider,
    answers_file: Path,
    concurrency: int = 4,
    model_samples: int = 1,
    temperature: float = 0.0,
    timeout_s: float = 60.0,
    progress: bool = True,
    on_answer: Callable[[DatasetEntry, dict[str, Any]], Awaitable[None]] | None = None,
) -> int:
    """Ask the backend about every entry, ``concurrency`` at a time; append each row as it arrives.
    Returns how many rows were written."""
    from tqdm import tqdm

    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
    semaphore = asyncio.Semaphore(concurrency)
    written = 0
    answers_file.parent.mkdir(parents=True, exist_ok=True)
    drop_partial_line(answers_file)

    async def one(entry: DatasetEntry, fh: Any, bar: Any) -> None:
        nonlocal written
        async with semaphore:
            frame = await asyncio.to_thread(load_frame, entry, provider.base_dir)
            model = provider.model_for(entry)
            try:
                info = await ask_one(model, frame, entry.sample.prompt, model_samples, temperature, timeout_s)
            finally:
                await provider.release(model)
        prediction = info.pop("prediction", "")
        row = {**entry.record, "model_prediction": prediction, "eval": info}
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()
        written += 1
        bar.update(1)
        if on_answer is not None:
            await on_answer(entry, row)

    with answers_file.open("a", encoding="utf-8") as fh, \
            tqdm(total=len(entries), unit="sample", desc="eval", disable=not progress, file=sys.stderr) as bar:
        tasks = [asyncio.create_task(one(e, fh, bar)) for e in entries]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await provider.aclose()
    return written


@dataclass
class RunState:
    """Which samples a run covers, which were answered before, and the rows of the answers file."""

    selected: list[DatasetEntry]
    pending: list[DatasetEntry]
    rows: dict[str, dict[str, Any]]

    @property
    def n_done_before(self) -> int:
        return len(self.selected) - len(self.pending)


def plan_run(entries: Sequence[DatasetEntry], answers_file: Path, n_samples: int | None) -> RunState:
    """The first ``n_samples`` entries (all when None), minus those already answered without error."""
    if n_samples is not None and n_samples < 1:
        raise ConfigError(f"--n-samples must be at least 1, got {n_samples}")
    selected = list(entries[:n_samples] if n_samples else entries)
    rows = read_answer_rows(answers_file)
    pending = [e for e in selected if e.qid not in rows or (rows[e.qid].get("eval") or {}).get("error")]
    return RunState(selected, pending, rows)


@dataclass
class LiveEvalResult:
    """What a run did (answered now / before) and its report."""

    out_dir: Path
    n_selected: int
    n_answered_now: int
    n_done_before: int
    report: LiveReport


def evaluate_backend(
    dataset: str | Path,
    backend: str,
    options: dict[str, Any] | None = None,
    out_dir: str | Path = "eval_out",
    n_samples: int | None = None,
    concurrency: int = 4,
    model_samples: int = 1,
    temperature: float = 0.0,
    timeout_s: float = 60.0,
    criteria: SuccessCriteria | None = None,
    plots: bool = True,
    progress: bool = True,
    factory: Callable[..., TraceModel] = make_trace_model,
) -> LiveEvalResult:
    """Run ``backend`` over the first ``n_samples`` samples of ``dataset`` (resuming an earlier run in
    ``out_dir``), then score every answer and write the report (``eval.live_report``)."""
    if model_samples < 1:
        raise ConfigError(f"model samples must be at least 1, got {model_samples}")
    if model_samples > 1 and temperature <= 0:
        raise ConfigError(f"{model_samples} model samples need a temperature > 0 (greedy samples are identical); "
                          "pass e.g. --temperature 0.7")
    if not timeout_s > 0:
        raise ConfigError(f"the request timeout must be positive, got {timeout_s}")
    samples_file = resolve_dataset(dataset)
    base_dir = samples_file.parent
    entries = load_entries(samples_file)
    out = Path(out_dir)
    options = dict(options or {})
    identity = {"dataset": str(samples_file.resolve()), "backend": backend, "options": public_options(options),
                "model_samples": model_samples, "temperature": temperature}
    provider = BackendProvider(backend, options, base_dir, factory)
    state = plan_run(entries, out / ANSWERS_FILE, n_samples)
    provider.check(state.selected[0], model_samples, temperature)
    check_run_identity(out, identity)
    written = 0
    if state.pending:
        written = asyncio.run(answer_entries(state.pending, provider, out / ANSWERS_FILE, concurrency,
                                             model_samples, temperature, timeout_s, progress))
    else:
        asyncio.run(provider.aclose())
    rows = read_answer_rows(out / ANSWERS_FILE)
    header = {"dataset": str(samples_file), "backend": backend, "options": public_options(options),
              "model_samples": model_samples}
    report = write_live_report(state.selected, rows, base_dir, out, header, criteria, plots)
    return LiveEvalResult(out, len(state.selected), written, state.n_done_before, report)
