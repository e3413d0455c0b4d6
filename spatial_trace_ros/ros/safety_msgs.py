"""``SafetyReport`` <-> diagnostic_msgs/DiagnosticArray, the verdict's wire format on ``/spatial_trace/safety``.

One DiagnosticStatus named ``spatial_trace/safety``: level OK (ACCEPT), WARN (ADJUSTED) or ERROR
(REJECT); ``message`` is ``SafetyReport.summary()``; values ``verdict``, ``codes`` (comma separated),
``plan_stamp_s`` (the capture stamp of the plan's frame), ``duration_s``, ``n_waypoints``, ``source``
(``planner`` or ``controller``), and for an accepted plan ``plan_id`` and ``expires_s``.
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from spatial_trace_ros.planning.plan import SafetyReport, Verdict
from spatial_trace_ros.ros.conversions import make_header

STATUS_NAME = "spatial_trace/safety"
LEVELS = {
    Verdict.ACCEPT: DiagnosticStatus.OK,
    Verdict.ADJUSTED: DiagnosticStatus.WARN,
    Verdict.REJECT: DiagnosticStatus.ERROR,
}


def safety_report_to_diagnostics(
    report: SafetyReport, plan_stamp_s: float, duration_s: float, n_waypoints: int, source: str, stamp_s: float,
    hardware_id: str = "", plan_id: str = "", expires_s: float | None = None,
) -> DiagnosticArray:
    values = {
        "verdict": report.verdict.value,
        "codes": ",".join(r.code for r in report.reasons),
        "plan_stamp_s": f"{plan_stamp_s:.6f}",
        "duration_s": f"{duration_s:.3f}",
        "n_waypoints": str(n_waypoints),
        "source": source,
    }
    if plan_id:
        values["plan_id"] = plan_id
    if expires_s is not None:
        values["expires_s"] = f"{expires_s:.6f}"
    status = DiagnosticStatus(
        level=LEVELS[report.verdict], name=STATUS_NAME, message=report.summary(), hardware_id=hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in values.items()],
    )
    msg = DiagnosticArray(status=[status])
    msg.header = make_header(stamp_s, "")
    return msg


def diagnostics_safety_values(msg: DiagnosticArray) -> dict[str, str] | None:
    """The values (plus ``message``) of the ``spatial_trace/safety`` status in ``msg``, or None."""
    for status in msg.status:
        if status.name == STATUS_NAME:
            return {"message": status.message, **{kv.key: kv.value for kv in status.values}}
    return None
