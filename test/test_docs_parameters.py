"""The parameter tables in docs/ list exactly the parameters each node declares, so the docs stay true
when a node's config model changes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from spatial_trace_ros.camera.config import CameraNodeConfig
from spatial_trace_ros.planning.node_config import PlannerNodeConfig
from spatial_trace_ros.robots.controller_config import ControllerNodeConfig
from spatial_trace_ros.robots.description.node_config import RobotStateNodeConfig
from spatial_trace_ros.trace.config import TraceStageConfig

DOCS = Path(__file__).resolve().parent.parent / "docs"
ROW = re.compile(r"^\|\s*`([a-z_][a-z0-9_]*)`\s*\|")


def documented_parameters(page: str) -> set[str]:
    """Names in the first column of the tables under the page's "Parameters" heading."""
    names: set[str] = set()
    inside = False
    level = 0
    for line in (DOCS / page).read_text().splitlines():
        heading = re.match(r"^(#+)\s+(.*)", line)
        if heading:
            if inside and len(heading.group(1)) <= level:
                break
            if not inside and heading.group(2).lower().startswith("parameters"):
                inside, level = True, len(heading.group(1))
            continue
        match = ROW.match(line) if inside else None
        if match:
            names.add(match.group(1))
    return names


@pytest.mark.parametrize(
    ("page", "config"),
    [
        ("camera.md", CameraNodeConfig),
        ("trace.md", TraceStageConfig),
        ("planner.md", PlannerNodeConfig),
        ("controller.md", ControllerNodeConfig),
        ("description.md", RobotStateNodeConfig),
    ],
)
def test_parameter_table_matches_node_config(page: str, config: type[BaseModel]) -> None:
    documented = documented_parameters(page)
    declared = set(config.model_fields)
    assert documented, f"docs/{page} has no parameter table"
    assert not declared - documented, f"docs/{page} does not document {sorted(declared - documented)}"
    unknown = sorted(documented - declared)
    assert not unknown, f"docs/{page} documents parameters that do not exist: {unknown}"
