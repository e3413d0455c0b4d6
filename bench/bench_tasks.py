"""Pick-and-place in simulation: task success rate with the oracle's trace, and with its start and end
perturbed by known offsets (how success falls with trace error), and the time per task.

Tasks are synthesised from seeded scenes ("move the X into the Y", "move the X to the left/right of the
Y", "pick up the X"), kept when their goal is free (``sim.task_eval.goal_is_clear``). Each task runs in
a fresh copy of its scene (``SimTaskExecutor.reset``), in lockstep physics. Prints JSON.

    python bench/bench_tasks.py            # 50 tasks, offsets 0, 1, 2, 5 cm (about 5 minutes)
    python bench/bench_tasks.py --quick    # 6 tasks, offsets 0 and 2 cm (about 15 s on a free core)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from spatial_trace_ros.errors import ModelError
from spatial_trace_ros.sim.task_eval import SimTaskExecutor, goal_is_clear
from spatial_trace_ros.sim.tasks import plan_task


def candidate_tasks(ex: SimTaskExecutor) -> list[str]:
    """One feasible task of each kind (into a receptacle, beside another object, pick up) in this scene,
    each moving a different object."""
    movables = [o.name for o in ex.scene.objects if not o.is_receptacle]
    bowls = [o.name for o in ex.scene.objects if o.is_receptacle]
    kinds = [
        [(m, f"move the {m} into the {b}") for m in movables for b in bowls],
        [(a, f"move the {a} to the {side} of the {b}") for a in movables for b in movables if a != b
         for side in ("left", "right")],
        [(m, f"pick up the {m}") for m in movables],
    ]
    chosen, used = [], set()
    for candidates in kinds:
        for obj, text in candidates:
            if obj in used:
                continue
            try:
                truth = plan_task(text, ex.scene, ex.base_T_camera)
            except ModelError:
                continue
            if goal_is_clear(truth, ex.scene):
                chosen.append(text)
                used.add(obj)
                break
    return chosen


def perturbed(points: np.ndarray, offset_m: float, rng: np.random.Generator) -> np.ndarray:
    """The trace with its start and end moved ``offset_m`` in random horizontal directions (the middle
    follows linearly along the trace)."""
    if offset_m <= 0:
        return points
    a, b = rng.uniform(0, 2 * np.pi, 2)
    d0 = offset_m * np.array([np.cos(a), np.sin(a), 0.0])
    d1 = offset_m * np.array([np.cos(b), np.sin(b), 0.0])
    w = np.linspace(0.0, 1.0, len(points))[:, None]
    return points + (1 - w) * d0 + w * d1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="6 tasks, offsets 0 and 2 cm")
    parser.add_argument("--tasks", type=int, default=50, help="how many feasible tasks")
    parser.add_argument("--robot", default="ur5e", choices=("ur5", "ur5e"))
    args = parser.parse_args()
    n_tasks, offsets_cm = (6, (0, 2)) if args.quick else (args.tasks, (0, 1, 2, 5))
    rng = np.random.default_rng(0)
    tasks: list[tuple[int, str]] = []
    seed = 0
    while len(tasks) < n_tasks:
        ex = SimTaskExecutor(args.robot, seed=seed)
        tasks += [(seed, text) for text in candidate_tasks(ex)]
        seed += 1
    tasks = tasks[:n_tasks]
    figures: dict[str, dict] = {}
    failures: list[dict] = []
    executors: dict[int, SimTaskExecutor] = {}
    for offset in offsets_cm:
        done, seconds, by_kind = 0, [], {}
        for seed, text in tasks:
            ex = executors.setdefault(seed, SimTaskExecutor(args.robot, seed=seed))
            ex.reset()
            truth = plan_task(text, ex.scene, ex.base_T_camera)
            t0 = time.perf_counter()
            out = ex.run(text, perturbed(truth.points_m, offset / 100, rng))
            seconds.append(time.perf_counter() - t0)
            done += out.success
            k = by_kind.setdefault(out.kind, [0, 0])
            k[0] += out.success
            k[1] += 1
            if not out.success and len(failures) < 10:
                failures.append({"offset_cm": offset, "seed": seed, **out.as_dict()})
        figures[f"offset_{offset}cm"] = {
            "success_rate": round(done / len(tasks), 3), "tasks": len(tasks),
            "per_kind": {k: round(v[0] / v[1], 3) for k, v in by_kind.items()},
            "seconds_per_task_mean": round(float(np.mean(seconds)), 2),
        }
    print(json.dumps({"robot": args.robot, "scenes": len(executors), "results": figures, "failures": failures},
                     indent=2))


if __name__ == "__main__":
    main()
