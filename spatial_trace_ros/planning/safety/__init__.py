"""Safety checks: the plan-time filter and the run-time setpoint guard, split by concern (as MoveIt
Servo splits its checks).

Nothing moves unless every check passes, and every refusal says why in words a person can act on.

- ``codes``: reason codes, severities, verdicts;
- ``inputs``: the data a plan came from (trace quality, freshness);
- ``zones``: segments and capsules against keep-out zones (swept checks);
- ``configuration``: TCP positions and joint configurations (workspace, zones, table, limits,
  singularity, self-collision), shared by both stages;
- ``screen``: the run-time guard's scalar "certainly clear" screen of one configuration;
- ``filter``: ``SafetyFilter``, a whole path in, a timed plan with a verdict out;
- ``guard``: ``SetpointGuard``, every setpoint kind checked in full before it is sent.

The tool and a held object join both stages through ``planning.tool_geometry.ToolGeometry`` (the
tool description's shapes and the held object's envelope, swept along every segment).

Both read one ``SafetyConfig`` (``config/safety.yaml``) and one ``RobotModel``. docs/safety.md has
the table of hazards, where each is detected, its parameter and the test that shows it.
"""

from spatial_trace_ros.planning.safety.codes import ROUNDOFF, SafetyCode, reason, refusals, verdict_of
from spatial_trace_ros.planning.safety.configuration import WaypointChecks
from spatial_trace_ros.planning.safety.filter import CandidatePath, SafetyFilter
from spatial_trace_ros.planning.safety.guard import SetpointGuard
from spatial_trace_ros.planning.safety.inputs import TraceFacts
from spatial_trace_ros.planning.safety_config import SafetyConfig, load_safety_config, safety_config_from_dict

__all__ = [
    "ROUNDOFF",
    "CandidatePath",
    "SafetyCode",
    "SafetyConfig",
    "SafetyFilter",
    "SetpointGuard",
    "TraceFacts",
    "WaypointChecks",
    "load_safety_config",
    "reason",
    "refusals",
    "safety_config_from_dict",
    "verdict_of",
]
