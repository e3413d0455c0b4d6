"""How long `make demo` takes once set up (the budget: under 3 minutes on 2 cores without a GPU), and
where the time goes: process start to exit, the stack's startup, and each instruction's stages (trace,
planning, execution). Runs ``spatial-trace demo`` in its own process exactly as the Makefile does,
in a private ROS domain. Prints one JSON object. ``--short`` runs the test configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 180.0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", action="store_true", help="the test configuration (two instructions + refusal)")
    args = parser.parse_args()
    env = dict(os.environ, ROS_DOMAIN_ID=str(random.SystemRandom().randint(100, 200)),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    with tempfile.TemporaryDirectory(prefix="bench_demo_") as tmp:
        out = Path(tmp) / "demo_out"
        argv = [sys.executable, "-m", "spatial_trace_ros.cli", "demo", "--out", str(out)]
        argv += ["--short"] if args.short else []
        t0 = time.perf_counter()
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        wall_s = time.perf_counter() - t0
        if result.returncode != 0:
            print(result.stdout[-4000:] + result.stderr[-4000:], file=sys.stderr)
            return 1
        summary = json.loads((out / "summary.json").read_text())
        bag_bytes = sum(p.stat().st_size for p in (out / "recording").iterdir())
    rows = summary["instructions"]
    figures = {
        "configuration": "short" if args.short else "default",
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "wall_s": round(wall_s, 1),
        "within_budget": wall_s < BUDGET_S,
        "budget_s": BUDGET_S,
        "stack_startup_s": float(summary["startup_s"]),
        "session_s": float(summary["total_s"]),
        "process_start_and_exit_s": round(wall_s - float(summary["total_s"]), 1),
        "bag_mb": round(bag_bytes / 1e6, 2),
        "bag_messages": sum(summary["bag_message_counts"].values()),
        "instructions": [
            {"instruction": r["instruction"], "verdict": r["verdict"], "outcome": r["outcome"],
             "trace_stage_s": _round(r["trace_s"]), "model_latency_s": r["model_latency_s"],
             "planning_s": _round(r["plan_s"]), "plan_duration_s": r["plan_duration_s"],
             "execution_s": _round(r["execute_s"]),
             "tracking_error_mm": None if r["tracking_error_m"] is None else round(r["tracking_error_m"] * 1000, 2)}
            for r in rows
        ],
    }
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
