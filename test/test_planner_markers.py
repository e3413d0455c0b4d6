"""What the planner shows: RViz marker content per verdict, its MarkerArray form, and the verdict's
DiagnosticArray form on /spatial_trace/safety."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from visualization_msgs.msg import Marker

from spatial_trace_ros.planning.plan import SafetyReason, SafetyReport, Verdict
from spatial_trace_ros.planning.safety import SafetyConfig, safety_config_from_dict
from spatial_trace_ros.ros.markers import specs_to_marker_array
from spatial_trace_ros.ros.safety_msgs import diagnostics_safety_values, safety_report_to_diagnostics
from spatial_trace_ros.viz.markers import VERDICT_COLORS, box_edges, cell_markers, plan_markers

TRACE = np.c_[np.linspace(-0.4, -0.3, 5), np.zeros(5), np.full(5, 0.2)]
WAYPOINTS = np.tile(np.eye(4), (5, 1, 1))
WAYPOINTS[:, :3, 3] = TRACE


def by_ns(specs: list) -> dict:
    return {s.ns: s for s in specs}


def test_box_edges_are_the_twelve_edges() -> None:
    pts = box_edges(np.array([0.0, 0.0, 0.0]), np.array([1.0, 2.0, 3.0]))
    assert pts.shape == (24, 3)
    lengths = sorted(np.round(np.linalg.norm(pts[1::2] - pts[0::2], axis=1), 9))
    assert lengths == [1.0] * 4 + [2.0] * 4 + [3.0] * 4


def test_cell_shows_workspace_table_and_every_zone() -> None:
    cfg = safety_config_from_dict({"keep_out_zones": [
        {"name": "base", "shape": "cylinder", "center_m": [0, 0], "radius_m": 0.2, "z_min_m": 0.0, "z_max_m": 1.0},
        {"name": "box", "shape": "box", "min_m": [0.1, 0.2, 0.3], "max_m": [0.3, 0.6, 0.4]},
    ]})
    specs = cell_markers(cfg)
    zones = [s for s in specs if s.ns == "keep_out"]
    assert [z.kind for z in zones] == ["cylinder", "cube"]
    assert zones[0].scale == (0.4, 0.4, 1.0)
    np.testing.assert_allclose(zones[0].pose[:3, 3], [0, 0, 0.5])
    np.testing.assert_allclose(zones[1].scale, [0.2, 0.4, 0.1])
    np.testing.assert_allclose(zones[1].pose[:3, 3], [0.2, 0.4, 0.35])
    assert {"workspace", "table"} <= {s.ns for s in specs}


def test_accepted_plan_markers() -> None:
    specs = by_ns(plan_markers(TRACE, WAYPOINTS, SafetyReport(Verdict.ACCEPT), SafetyConfig()))
    assert specs["trace"].kind == "line_strip" and len(specs["trace"].points) == 5
    assert specs["waypoints"].kind == "sphere_list"
    np.testing.assert_allclose(specs["waypoints"].colors, np.tile(VERDICT_COLORS[Verdict.ACCEPT], (5, 1)))
    assert specs["verdict"].text == "ACCEPT" and "problems" not in specs


def test_refusal_markers_name_the_reason_and_mark_the_waypoint() -> None:
    reason = SafetyReason("KEEP_OUT_ZONE", "3 waypoints enter the keep-out box 'fixture', first #2; choose a target "
                          "away from it", waypoint=2)
    specs = by_ns(plan_markers(TRACE, WAYPOINTS, SafetyReport(Verdict.REJECT, (reason,)), SafetyConfig()))
    assert specs["waypoints"].color == VERDICT_COLORS[Verdict.REJECT]
    np.testing.assert_allclose(specs["problems"].points, TRACE[[2]])
    text = specs["verdict"].text
    assert text.startswith("REJECT") and "'fixture'" in text.replace("\n", " ")
    assert max(len(line) for line in text.splitlines()) <= 60


def test_marker_array_clears_first_and_keeps_frames_and_shapes() -> None:
    specs = plan_markers(TRACE, WAYPOINTS, SafetyReport(Verdict.ADJUSTED), SafetyConfig())
    msg = specs_to_marker_array(specs, "base", 12.5)
    assert msg.markers[0].action == Marker.DELETEALL
    assert all(m.header.frame_id == "base" for m in msg.markers)
    kinds = {m.ns: m.type for m in msg.markers[1:]}
    assert kinds["trace"] == Marker.LINE_STRIP and kinds["waypoints"] == Marker.SPHERE_LIST
    assert kinds["keep_out"] == Marker.CYLINDER and kinds["verdict"] == Marker.TEXT_VIEW_FACING
    wp = next(m for m in msg.markers if m.ns == "waypoints")
    assert len(wp.points) == 5 and wp.points[4].x == -0.3 and len(wp.colors) == 5
    assert wp.colors[0].r == 1.0 and wp.colors[0].g == 0.7  # amber: adjusted


def test_verdict_diagnostics() -> None:
    report = SafetyReport(Verdict.ADJUSTED, (SafetyReason("SPEED_LIMITED", "limited to 0.25 m/s"),
                                             SafetyReason("NO_JOINT_STATE", "seeded")))
    msg = safety_report_to_diagnostics(report, 17.25, 3.5, 42, "planner", 18.0, "ur5e")
    status = msg.status[0]
    assert status.name == "spatial_trace/safety" and status.level == DiagnosticStatus.WARN
    values = diagnostics_safety_values(msg)
    assert values == {
        "message": "ADJUSTED: limited to 0.25 m/s; seeded", "verdict": "ADJUSTED",
        "codes": "SPEED_LIMITED,NO_JOINT_STATE", "plan_stamp_s": "17.250000", "duration_s": "3.500",
        "n_waypoints": "42", "source": "planner",
    }
    refused = safety_report_to_diagnostics(SafetyReport(Verdict.REJECT), 0.0, 0.0, 0, "controller", 1.0)
    assert refused.status[0].level == DiagnosticStatus.ERROR


def test_shipped_rviz_config_shows_the_planner_topics() -> None:
    import yaml

    path = Path(__file__).resolve().parents[1] / "config" / "rviz" / "spatial_trace.rviz"
    manager = yaml.safe_load(path.read_text())["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "base"
    topics = {d["Topic"]["Value"]: d for d in manager["Displays"] if isinstance(d.get("Topic"), dict)}
    expected = {
        "/spatial_trace/markers": "rviz_default_plugins/MarkerArray",
        "/spatial_trace/waypoints": "rviz_default_plugins/PoseArray",
        "/spatial_trace/overlay": "rviz_default_plugins/Image",
    }
    for topic, cls in expected.items():
        assert topics[topic]["Class"] == cls and topics[topic]["Enabled"], topic
        # These topics are latched (TRANSIENT_LOCAL): RViz must ask for it to see what came before it.
        assert topics[topic]["Topic"]["Durability Policy"] == "Transient Local", topic
    assert any(d["Class"] == "rviz_default_plugins/TF" for d in manager["Displays"])
