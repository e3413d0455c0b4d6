"""``camera_node``: aligned RGB-D frames from a RealSense or a recording, under realsense-ros names.

Publishes ``/<ns>/<name>/color/image_raw`` (rgb8), ``.../color/camera_info``,
``.../aligned_depth_to_color/image_raw`` (16UC1, millimetres, in the color optical frame) and
``.../aligned_depth_to_color/camera_info``, plus a status on ``/diagnostics``. Frames are read and
published on the capture thread (``camera.capture.CaptureLoop``); the executor only runs diagnostics.
With the ``sim`` source the node also follows ``/joint_states``, so the rendered arm stands where the
(simulated) controller's arm is.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseArray
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState

from spatial_trace_ros.camera.capture import CaptureLoop, summarize
from spatial_trace_ros.camera.config import CameraNodeConfig
from spatial_trace_ros.camera.frames import depth_to_millimetres
from spatial_trace_ros.geometry.camera_model import RgbdFrame
from spatial_trace_ros.ros.conversions import image_to_msg, intrinsics_to_camera_info
from spatial_trace_ros.ros.params import ParameterBinding
from spatial_trace_ros.ros.qos import STATE, sensor_qos
from spatial_trace_ros.ros.runner import run_node

_LEVELS = {"ok": DiagnosticStatus.OK, "warn": DiagnosticStatus.WARN, "error": DiagnosticStatus.ERROR}


class CameraNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("camera_node", **kwargs)
        self._params = ParameterBinding(self, CameraNodeConfig)
        cfg: CameraNodeConfig = self._params.config
        self._cfg = cfg
        qos = sensor_qos(cfg.qos_reliability)
        self._color_pub = self.create_publisher(Image, cfg.topic("color/image_raw"), qos)
        self._color_info_pub = self.create_publisher(CameraInfo, cfg.topic("color/camera_info"), qos)
        self._depth_pub = self.create_publisher(Image, cfg.topic("aligned_depth_to_color/image_raw"), qos)
        self._depth_info_pub = self.create_publisher(CameraInfo, cfg.topic("aligned_depth_to_color/camera_info"), qos)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", STATE)
        self._source = cfg.make_source()
        self._reported_drops = 0
        self._capture = CaptureLoop(
            self._source, self._publish_frame, cfg.read_timeout_s, cfg.reconnect_backoff_initial_s,
            cfg.reconnect_backoff_max_s, on_state=self._log_state,
        )
        self.create_timer(cfg.diagnostics_period_s, self._publish_diagnostics)
        if cfg.source == "sim":
            self.create_subscription(JointState, "/joint_states", self._show_joints, STATE)
            self.create_subscription(PoseArray, "/spatial_trace/sim/object_poses", self._show_objects, STATE)
        self._capture.start()

    def _publish_frame(self, frame: RgbdFrame) -> None:
        frame_id, stamp = self._cfg.color_frame_id, frame.stamp_s
        info = intrinsics_to_camera_info(frame.intrinsics, stamp, frame_id)
        self._color_pub.publish(image_to_msg(frame.color, "rgb8", stamp, frame_id))
        self._color_info_pub.publish(info)
        depth_mm = depth_to_millimetres(frame.depth, frame.depth_scale_m)
        self._depth_pub.publish(image_to_msg(depth_mm, "16UC1", stamp, frame_id))
        self._depth_info_pub.publish(info)

    def _show_joints(self, msg: JointState) -> None:
        self._source.show_joint_positions(dict(zip(msg.name, msg.position, strict=False)))

    def _show_objects(self, msg: PoseArray) -> None:
        """Objects the controller's simulated gripper moved appear where they are."""
        poses = np.array([[p.position.x, p.position.y, p.position.z, p.orientation.w, p.orientation.x,
                           p.orientation.y, p.orientation.z] for p in msg.poses], float)
        self._source.show_object_poses(poses)

    def _log_state(self, state: str, detail: str) -> None:
        log = self.get_logger()
        if state == "streaming":
            log.info(detail)
        elif state in ("reconnecting", "failed"):
            log.error(f"camera {state}: {detail}")
        else:
            log.warning(f"camera {state}: {detail}")

    def _publish_diagnostics(self) -> None:
        status = self._capture.status()
        level, message = summarize(status, status.drops - self._reported_drops)
        self._reported_drops = status.drops
        src, cfg = self._source, self._cfg
        values = {
            "state": status.state,
            "detail": status.detail,
            "source": cfg.source,
            "device": getattr(src, "device_name", cfg.source),
            "serial_number": getattr(src, "serial_number", ""),
            "rate_hz": f"{status.rate_hz:.2f}",
            "frames": str(status.frames),
            "drops": str(status.drops),
            "reconnects": str(status.reconnects),
            "stale_skipped": str(status.stale_skipped),
            "unpaired_framesets": str(getattr(src, "unpaired", 0)),
            "since_last_frame_s": "" if status.since_last_frame_s is None else f"{status.since_last_frame_s:.3f}",
            "publish_ms": "" if status.handling_ms is None else f"{status.handling_ms:.2f}",
            "timestamp_source": cfg.timestamp_source,
            "timestamp_domain": getattr(src, "timestamp_domain", ""),
            "depth_filters": ",".join(src.filter_settings.names()) if hasattr(src, "filter_settings") else "",
        }
        diag = DiagnosticStatus(
            level=_LEVELS[level], name=f"{self.get_name()}: {cfg.camera_name}", message=message,
            hardware_id=getattr(src, "serial_number", "") or cfg.recording_path or cfg.source,
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        msg = DiagnosticArray(status=[diag])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)

    def close(self) -> None:
        """Stop capturing and release the camera (called by ``run_node`` on shutdown)."""
        self._capture.stop()


def main(args: list[str] | None = None) -> int:
    return run_node(CameraNode, args=args)


if __name__ == "__main__":
    sys.exit(main())
