"""``trace_node``: instruction + latest RGB-D frame -> trace model -> camera-frame trace.

Subscribes to the color image, its camera_info and the aligned depth image (realsense-ros names;
remap them with ``--ros-args -r``) and to ``/spatial_trace/instruction``. On an instruction it takes
the newest time-matched frame (refusing stale ones), asks the configured backend on the trace
service's own event loop thread (the executor never waits on the model), and publishes
``/spatial_trace/trace`` (nav_msgs/Path, camera optical frame, stamped with the frame's time),
``/spatial_trace/overlay`` (the trace drawn on the image) and ``/spatial_trace/trace_status`` (JSON,
see docs/interfaces.md), plus ``/diagnostics``.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from nav_msgs.msg import Path
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

from spatial_trace_ros.errors import SpatialTraceError
from spatial_trace_ros.ros.conversions import (
    image_to_msg,
    rgbd_from_msgs,
    seconds_to_stamp,
    stamp_ns,
    stamp_to_seconds,
    trace_to_path,
)
from spatial_trace_ros.ros.params import ParameterBinding
from spatial_trace_ros.ros.qos import COMMAND, LATCHED, STATE, sensor_qos
from spatial_trace_ros.ros.runner import run_node
from spatial_trace_ros.trace.config import TraceStageConfig
from spatial_trace_ros.trace.frame_sync import FrameSynchronizer
from spatial_trace_ros.trace.model import TraceModel, make_trace_model
from spatial_trace_ros.trace.overlay import draw_trace_overlay
from spatial_trace_ros.trace.pipeline import TraceOutcome
from spatial_trace_ros.trace.service import ServiceSettings, TraceJob, TraceService

TOPICS = {
    "color": "/camera/camera/color/image_raw",
    "info": "/camera/camera/color/camera_info",
    "depth": "/camera/camera/aligned_depth_to_color/image_raw",
    "instruction": "/spatial_trace/instruction",
    "trace": "/spatial_trace/trace",
    "overlay": "/spatial_trace/overlay",
    "status": "/spatial_trace/trace_status",
}
_LEVELS = {"ok": DiagnosticStatus.OK, "running": DiagnosticStatus.OK, "refused": DiagnosticStatus.WARN,
           "error": DiagnosticStatus.ERROR}


def _settings(cfg: TraceStageConfig) -> ServiceSettings:
    return ServiceSettings(cfg.n_samples, cfg.temperature, cfg.pipeline_config(), cfg.on_busy, cfg.max_queue)


class TraceNode(Node):
    """Thin wiring around ``TraceService``. ``model`` injects a ready backend (in-process demo);
    otherwise the ``backend`` parameters build one."""

    def __init__(self, model: TraceModel | None = None, **kwargs: Any) -> None:
        super().__init__("trace_node", **kwargs)
        self._params = ParameterBinding(self, TraceStageConfig, on_change=self._apply)
        cfg: TraceStageConfig = self._params.config
        self._model = model or make_trace_model(cfg.backend, **cfg.backend_options())
        self._model.check_sampling(cfg.n_samples, cfg.temperature)  # e.g. a greedy server asked for a consensus
        camera_qos = sensor_qos(cfg.qos_reliability)
        # Remapped names (``--ros-args -r``) are what the messages say, so report those.
        self._sync = FrameSynchronizer({k: self.resolve_topic_name(v) for k, v in TOPICS.items()})
        self._trace_pub = self.create_publisher(Path, TOPICS["trace"], LATCHED)
        self._overlay_pub = self.create_publisher(Image, TOPICS["overlay"], LATCHED)
        self._status_pub = self.create_publisher(String, TOPICS["status"], LATCHED)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", STATE)
        self._last_status: dict[str, Any] = {}
        self._status_lock = threading.Lock()
        self._service = TraceService(self._model, self._publish_status, self._publish_result, _settings(cfg))
        self.create_subscription(Image, TOPICS["color"], self._on_color, camera_qos)
        self.create_subscription(CameraInfo, TOPICS["info"], self._sync.set_info, camera_qos)
        if cfg.use_depth:
            self.create_subscription(Image, TOPICS["depth"], self._on_depth, camera_qos)
        self.create_subscription(String, TOPICS["instruction"], self._on_instruction, COMMAND)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(
            f"trace backend {cfg.backend!r} (convention {self._model.convention}), n_samples {cfg.n_samples}, "
            f"waiting for instructions on {self.resolve_topic_name(TOPICS['instruction'])}"
        )

    # -- inputs -------------------------------------------------------------------------------------
    def _on_color(self, msg: Image) -> None:
        self._sync.add_color(stamp_to_seconds(msg.header.stamp), msg)

    def _on_depth(self, msg: Image) -> None:
        self._sync.add_depth(stamp_to_seconds(msg.header.stamp), msg)

    def _on_instruction(self, msg: String) -> None:
        cfg: TraceStageConfig = self._params.config
        instruction = msg.data.strip()
        if not instruction:
            self._service.refuse(msg.data, "the instruction is empty; say what the robot should do")
            return
        now_s = self._now_s()
        try:
            matched = self._sync.latest(now_s, cfg.max_frame_age_s, cfg.max_sync_skew_s, cfg.use_depth,
                                        cfg.max_clock_skew_s)
            frame = rgbd_from_msgs(matched.color, matched.depth, matched.info)
        except SpatialTraceError as err:
            request_id = self._service.refuse(instruction, str(err))
            self.get_logger().warning(f"request {request_id} refused: {err}")
            return
        request_id = self._service.submit(instruction, frame)
        self.get_logger().info(f"request {request_id}: {instruction!r} on the frame of {frame.stamp_s:.3f} s")

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _apply(self, cfg: TraceStageConfig) -> None:
        self._service.update(_settings(cfg))

    # -- outputs (called on the service thread) ----------------------------------------------------
    def _publish_result(self, job: TraceJob, outcome: TraceOutcome) -> None:
        trace = outcome.trace
        assert trace is not None and job.frame is not None
        self._trace_pub.publish(trace_to_path(trace, job.frame.stamp_s, made_s=self._now_s()))
        flagged = trace.metadata.get("depth_check", {}).get("flagged", [])
        label = f"#{job.request_id} {job.instruction}"
        if outcome.agreement is not None:
            label += f" (agreement {outcome.agreement:.2f})"
        image = draw_trace_overlay(job.frame.color, trace.pixels_uv, trace.valid, flagged, label)
        self._overlay_pub.publish(image_to_msg(image, "rgb8", job.frame.stamp_s, job.frame.frame_id))

    def _publish_status(self, status: dict[str, Any]) -> None:
        # The exact stamp of the trace's Path header, so the planner pairs the two without rounding.
        status = {**status, "frame_stamp_ns": stamp_ns(seconds_to_stamp(float(status["frame_stamp_s"])))}
        with self._status_lock:
            self._last_status = status
        self._status_pub.publish(String(data=json.dumps(status)))
        log = self.get_logger()
        state, rid = status["state"], status["request_id"]
        if state == "ok":
            log.info(f"request {rid}: trace with {status['n_points']} points ({status['latency_s']:.2f} s)")
        elif state in ("refused", "error"):
            log.warning(f"request {rid} {state}: {status['reason']}")

    def _publish_diagnostics(self) -> None:
        with self._status_lock:
            last = dict(self._last_status)
        state = last.get("state", "ok")
        counts = self._sync.counts
        values = {
            "backend": self._model.name,
            "convention": self._model.convention,
            "busy": str(self._service.busy()),
            "last_request_id": str(last.get("request_id", "")),
            "last_state": last.get("state", ""),
            "last_reason": last.get("reason", ""),
            "last_latency_s": str(last.get("latency_s", "")),
            "color_frames": str(counts["color"]),
            "depth_frames": str(counts["depth"]),
            "camera_infos": str(counts["info"]),
        }
        message = last.get("reason") or (f"last request {state}" if last else "waiting for an instruction")
        diag = DiagnosticStatus(level=_LEVELS.get(state, DiagnosticStatus.OK), name=f"{self.get_name()}: model",
                                message=message, hardware_id=self._model.name,
                                values=[KeyValue(key=k, value=v) for k, v in values.items()])
        msg = DiagnosticArray(status=[diag])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)

    def close(self) -> None:
        """Cancel the running request and close the model client (called by ``run_node``)."""
        self._service.close()


def main(args: list[str] | None = None) -> int:
    return run_node(TraceNode, args=args)


if __name__ == "__main__":
    sys.exit(main())
