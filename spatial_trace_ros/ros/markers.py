"""``viz.markers.MarkerSpec`` list -> visualization_msgs/MarkerArray (a DELETEALL first, so markers of
an earlier attempt never linger in RViz)."""

from __future__ import annotations

from collections.abc import Sequence

from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from spatial_trace_ros.geometry.transforms import Transform
from spatial_trace_ros.ros.conversions import make_header, transform_to_pose
from spatial_trace_ros.viz.markers import MarkerSpec

_TYPES = {
    "line_strip": Marker.LINE_STRIP,
    "line_list": Marker.LINE_LIST,
    "sphere_list": Marker.SPHERE_LIST,
    "cube": Marker.CUBE,
    "cylinder": Marker.CYLINDER,
    "text": Marker.TEXT_VIEW_FACING,
}


def _color(rgba: Sequence[float]) -> ColorRGBA:
    r, g, b, a = (float(v) for v in rgba)
    return ColorRGBA(r=r, g=g, b=b, a=a)


def spec_to_marker(spec: MarkerSpec, frame_id: str, stamp_s: float) -> Marker:
    marker = Marker(header=make_header(stamp_s, frame_id), ns=spec.ns, id=spec.marker_id, type=_TYPES[spec.kind])
    marker.action = Marker.ADD
    marker.pose = transform_to_pose(Transform(spec.pose))
    marker.scale.x, marker.scale.y, marker.scale.z = (float(v) for v in spec.scale)
    marker.color = _color(spec.color)
    if spec.points is not None:
        marker.points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in spec.points]
    if spec.colors is not None:
        marker.colors = [_color(c) for c in spec.colors]
    marker.text = spec.text
    return marker


def specs_to_marker_array(specs: Sequence[MarkerSpec], frame_id: str, stamp_s: float) -> MarkerArray:
    clear = Marker(header=make_header(stamp_s, frame_id))
    clear.action = Marker.DELETEALL
    return MarkerArray(markers=[clear, *(spec_to_marker(s, frame_id, stamp_s) for s in specs)])
