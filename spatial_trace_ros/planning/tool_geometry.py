"""The tool and the object it holds as collision volumes on the flange, checked along a path.

``ToolGeometry`` turns a ``ToolDescription``'s capsules and boxes, and the envelope of a held object,
into spheres-swept segments (capsules) in the base frame for any flange pose. ``check_path`` checks
them against the table plane, the workspace box, the keep-out zones and the arm's own links, along
every segment between waypoints (densified so nothing slips between two waypoints). The planner's
task paths, the controller's plan check and the run-time guard all call it; it returns the same
``SafetyReason``s as the rest of the safety filter.

The held object hangs in the TCP frame (z out of the tool, towards the object): its top is
``grasp_depth_m`` behind the TCP and it reaches ``height_m`` from there. Its height is known from the
grasp (the trace starts on the object's top, and the object stands on the table); its width and
depth are the tool's default envelope unless the task knows better.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spatial_trace_ros.planning import volumes
from spatial_trace_ros.planning.plan import SafetyReason
from spatial_trace_ros.planning.safety.codes import SafetyCode, reason
from spatial_trace_ros.planning.safety.screen import (
    SCREEN_MARGIN,
    bounding_spheres,
    segment_clear_of_zone,
    segments_apart,
)
from spatial_trace_ros.planning.safety_config import BoxZone, CylinderZone, SafetyConfig
from spatial_trace_ros.robots.model import RobotModel
from spatial_trace_ros.tools.description import BoxShape, CapsuleShape, ToolDescription

SWEEP_STEP_M = 0.005  # the swept check samples each segment at least this densely
PLACE_TOLERANCE_M = 0.01  # a placed object may press this far into the table plane (depth noise)
WRIST_LINKS = 3  # the wrist links carry the tool: not checked against it


@dataclass(frozen=True)
class HeldEnvelope:
    """The box around a held object, in the TCP frame: ``size_m`` (x, y, height)."""

    size_m: tuple[float, float, float]
    grasp_depth_m: float
    margin_m: float = 0.005

    @staticmethod
    def from_grasp(tool: ToolDescription, grasp_tcp_z_m: float, table_z_m: float,
                   size_xy_m: tuple[float, float] | None = None) -> HeldEnvelope:
        """The envelope of an object grasped with the TCP at height ``grasp_tcp_z_m``: it stands on the
        table, so its top is ``grasp_depth_m`` above the TCP and its height is top minus table."""
        held = tool.held_object
        top = grasp_tcp_z_m + held.grasp_depth_m
        height = max(top - table_z_m, 0.01)
        xy = size_xy_m or held.default_size_m[:2]
        return HeldEnvelope((float(xy[0]), float(xy[1]), float(height)), held.grasp_depth_m, held.margin_m)

    def points_tcp(self) -> np.ndarray:
        """Corners, face centres and centre of the box grown by the margin (27, 3), TCP frame."""
        sx, sy, h = self.size_m
        m = self.margin_m
        top, bottom = -self.grasp_depth_m, -self.grasp_depth_m + h
        xs, ys = (-sx / 2 - m, 0.0, sx / 2 + m), (-sy / 2 - m, 0.0, sy / 2 + m)
        zs = (top - m, (top + bottom) / 2, bottom)  # its bottom is where it stands: no margin below
        return np.array([[x, y, z] for x in xs for y in ys for z in zs])


def _box_capsule(box: BoxShape) -> tuple[np.ndarray, np.ndarray, float]:
    """The capsule along a box's longest axis that covers the box."""
    c, h = np.asarray(box.center_m, float), np.asarray(box.half_extents_m, float)
    axis = int(np.argmax(h))
    others = [k for k in range(3) if k != axis]
    r = float(np.hypot(h[others[0]], h[others[1]]))
    d = np.zeros(3)
    d[axis] = max(h[axis] - r, 0.0)
    return c - d, c + d, r


class ToolGeometry:
    """The collision volumes of one tool (flange frame), and the checks on them along a path."""

    def __init__(self, tool: ToolDescription, config: SafetyConfig, model: RobotModel) -> None:
        self.tool = tool
        self.config = config
        self.model = model
        starts, ends, radii, names = [], [], [], []
        for shape in tool.collision:
            if isinstance(shape, CapsuleShape):
                a, b, r = np.asarray(shape.start_m, float), np.asarray(shape.end_m, float), shape.radius_m
            else:
                a, b, r = _box_capsule(shape)
            starts.append(a)
            ends.append(b)
            radii.append(r)
            names.append(shape.name)
        self._a = np.array(starts).reshape(-1, 3)
        self._b = np.array(ends).reshape(-1, 3)
        self._r = np.array(radii, float)
        self.names = names
        self._caps = [(a.tolist(), b.tolist(), float(r)) for a, b, r in zip(self._a, self._b, self._r, strict=True)]
        self._reach_m = max((float(np.linalg.norm(v)) for v in (*self._a, *self._b)), default=0.0)
        self._held_corners: dict[HeldEnvelope, tuple[list[float], list[list[float]], list[float], float]] = {}
        self._floor = float(config.table.z_m if config.table.enabled else config.workspace_min[2])
        self._ws_lo, self._ws_hi = [float(v) for v in config.workspace_min], [float(v) for v in config.workspace_max]

    # -- geometry -------------------------------------------------------------------------------------
    def capsules(self, base_T_flange: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The tool's capsule ends (N, K, 3), twice, in the base frame for flange poses (N, 4, 4)."""
        T = np.asarray(base_T_flange, float).reshape(-1, 4, 4)
        R, p = T[:, :3, :3], T[:, None, :3, 3]
        return np.einsum("nij,kj->nki", R, self._a) + p, np.einsum("nij,kj->nki", R, self._b) + p

    def held_points(self, base_T_flange: np.ndarray, envelope: HeldEnvelope) -> np.ndarray:
        """The held object's box points (N, 27, 3) in the base frame for flange poses (N, 4, 4)."""
        T = np.asarray(base_T_flange, float).reshape(-1, 4, 4) @ self.tool.flange_T_tcp
        pts = envelope.points_tcp()
        return np.einsum("nij,kj->nki", T[:, :3, :3], pts) + T[:, None, :3, 3]

    @staticmethod
    def swept(poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flange poses densified to ``SWEEP_STEP_M`` along each segment (positions linear, the earlier
        waypoint's rotation), and for each sample the index of the segment it lies on."""
        poses = np.asarray(poses, float).reshape(-1, 4, 4)
        if len(poses) < 2:
            return poses, np.zeros(len(poses), int)
        out, index = [poses[:1]], [0]
        for k in range(len(poses) - 1):
            step = float(np.linalg.norm(poses[k + 1, :3, 3] - poses[k, :3, 3]))
            n = max(1, int(np.ceil(step / SWEEP_STEP_M)))
            w = np.arange(1, n + 1) / n
            seg = np.repeat(poses[k][None], n, axis=0)
            seg[:, :3, 3] = poses[k, :3, 3] + np.outer(w, poses[k + 1, :3, 3] - poses[k, :3, 3])
            seg[-1] = poses[k + 1]
            out.append(seg)
            index += [k] * n
        return np.concatenate(out), np.array(index)

    # -- the run-time screen --------------------------------------------------------------------------
    def step_clear(self, start: np.ndarray, target: np.ndarray, q: np.ndarray,
                   envelope: HeldEnvelope | None) -> bool:
        """True only when ``check_path([start, target], [.., q], held, envelope)`` would find nothing:
        the guard's one step, in plain floats. Every sample of the swept step lies within ``delta`` of
        the target pose (rotation angle x the farthest point from the flange, plus the translation),
        so the volumes at the target, grown by ``delta``, must clear every limit."""
        cfg = self.config
        s0, s1, s2 = start[:3].tolist()
        (r00, r01, r02, px), (r10, r11, r12, py), (r20, r21, r22, pz) = t0, t1, t2 = target[:3].tolist()
        cos = (sum(a * b for a, b in zip(s0[:3] + s1[:3] + s2[:3], t0[:3] + t1[:3] + t2[:3], strict=True)) - 1.0) / 2.0
        angle = math.acos(min(max(cos, -1.0), 1.0))
        held = self._corners(envelope) if envelope is not None else None
        reach = max(self._reach_m, held[3] if held else 0.0)
        delta = angle * reach + math.dist((s0[3], s1[3], s2[3]), (px, py, pz)) + SCREEN_MARGIN

        def place(v: list[float]) -> list[float]:
            return [r00 * v[0] + r01 * v[1] + r02 * v[2] + px, r10 * v[0] + r11 * v[1] + r12 * v[2] + py,
                    r20 * v[0] + r21 * v[1] + r22 * v[2] + pz]

        floor, lo, hi = self._floor, self._ws_lo, self._ws_hi
        zones = cfg.keep_out_zones
        if self._caps:
            links: tuple[list, list, list] | None = None
            n_links = 0
            if cfg.self_collision.enabled and q is not None:
                one = self.model.one_configuration(q)
                n_links = len(one.radii) - WRIST_LINKS
                links = (one.p0, one.p1, one.radii)
                spheres = bounding_spheres(links[0][:n_links], links[1][:n_links])
            for a_f, b_f, r in self._caps:
                a, b = place(a_f), place(b_f)
                g = r + delta
                if min(a[2], b[2]) - g <= floor:
                    return False
                for v in (a, b):  # the midpoint lies between them, inside the convex box
                    if not (lo[0] + g < v[0] < hi[0] - g and lo[1] + g < v[1] < hi[1] - g and v[2] < hi[2] - g):
                        return False
                if not all(segment_clear_of_zone(a, b, g, zone) for zone in zones):
                    return False
                if links is not None:
                    margin = cfg.self_collision.margin_m + g
                    sphere = bounding_spheres([a], [b])[0]
                    if not all(segments_apart(a, b, links[0][j], links[1][j], sphere, spheres[j], margin + links[2][j])
                               for j in range(n_links)):
                        return False
        if held is not None:  # every checked point of the box lies in its axis-aligned bounds in the base frame
            (cx, cy, cz), rot = place(held[0]), held[1]
            m = [[r00 * f[0] + r01 * f[1] + r02 * f[2], r10 * f[0] + r11 * f[1] + r12 * f[2],
                  r20 * f[0] + r21 * f[1] + r22 * f[2]] for f in rot]  # columns of base_R_tcp
            hx, hy, hz = held[2]
            ex = [abs(m[0][k]) * hx + abs(m[1][k]) * hy + abs(m[2][k]) * hz + delta for k in range(3)]
            box_lo, box_hi = [cx - ex[0], cy - ex[1], cz - ex[2]], [cx + ex[0], cy + ex[1], cz + ex[2]]
            if box_lo[2] <= floor - PLACE_TOLERANCE_M:
                return False
            if not (lo[0] < box_lo[0] and box_hi[0] < hi[0] and lo[1] < box_lo[1] and box_hi[1] < hi[1]
                    and box_hi[2] < hi[2]):
                return False
            if not all(_box_clear_of_zone(box_lo, box_hi, 0.0, zone) for zone in zones):
                return False
        return True

    def _corners(self, envelope: HeldEnvelope) -> tuple[list[float], list[list[float]], list[float], float]:
        """The held box in the flange frame: its centre, the TCP frame's axes (columns), its half sizes
        along them, and the farthest corner's distance from the flange."""
        if envelope not in self._held_corners:
            pts = envelope.points_tcp()
            lo, hi = pts.min(axis=0), pts.max(axis=0)
            f_T_t = self.tool.flange_T_tcp
            corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
            flange = corners @ f_T_t[:3, :3].T + f_T_t[:3, 3]
            centre = f_T_t[:3, :3] @ ((lo + hi) / 2) + f_T_t[:3, 3]
            self._held_corners = {envelope: (centre.tolist(), f_T_t[:3, :3].T.tolist(), ((hi - lo) / 2).tolist(),
                                             float(np.linalg.norm(flange, axis=1).max()))}
        return self._held_corners[envelope]

    # -- checks ---------------------------------------------------------------------------------------
    def check_path(self, poses: np.ndarray, joints: np.ndarray | None = None, held: np.ndarray | None = None,
                   envelope: HeldEnvelope | None = None, what: str = "") -> list[SafetyReason]:
        """Tool (and, on segments whose both ends are ``held`` (N,), the held ``envelope``) swept along
        flange ``poses`` (N, 4, 4): table, workspace, keep-out zones, and the arm's links at ``joints``."""
        poses = np.asarray(poses, float).reshape(-1, 4, 4)
        dense, seg = self.swept(poses)
        prefix = f"{what}: " if what else ""
        out: list[SafetyReason] = []
        if len(self._r):
            a, b = self.capsules(dense)
            pts = np.concatenate([a, (a + b) / 2, b], axis=1)
            radii = np.tile(self._r, 3)
            names = self.names * 3
            lowest = np.minimum(a[..., 2], b[..., 2]) - self._r
            thing = f"the tool ({self.tool.name})"
            out += self._checks(pts, radii, names, lowest, 0.0, seg, SafetyCode.TOOL_COLLISION, thing, prefix)
            if joints is not None and self.config.self_collision.enabled:
                q = np.asarray(joints, float)[np.minimum(seg + 1, len(joints) - 1)]
                out += self._links(a, b, q, seg, thing, prefix)
        if held is not None and envelope is not None and len(poses) > 1:
            held = np.asarray(held, bool)
            carrying = (held[:-1] & held[1:])[seg[seg < len(poses) - 1]] if len(seg) else np.zeros(0, bool)
            carrying = np.concatenate([carrying, np.zeros(len(seg) - len(carrying), bool)])
            if np.any(carrying):
                pts = self.held_points(dense[carrying], envelope)
                lowest = pts[..., 2]
                out += self._checks(pts, np.zeros(pts.shape[1]), ["held object"] * pts.shape[1], lowest,
                                    PLACE_TOLERANCE_M, seg[carrying], SafetyCode.HELD_OBJECT_COLLISION,
                                    "the held object", prefix)
        return out

    def _checks(self, pts: np.ndarray, radii: np.ndarray, names: list[str], lowest: np.ndarray, tolerance: float,
                wp: np.ndarray, code: SafetyCode, thing: str, prefix: str) -> list[SafetyReason]:
        """Table plane (``lowest`` (M, K) z per volume, ``tolerance`` below it allowed), workspace box and
        keep-out zones for sample points ``pts`` (M, P, 3) grown by ``radii`` (P,)."""
        cfg, out = self.config, []
        floor = (cfg.table.z_m if cfg.table.enabled else cfg.workspace_min[2]) - tolerance
        low = lowest < floor
        if np.any(low):
            m, k = np.argwhere(low)[0]
            out.append(reason(code, f"{prefix}{thing} ({names[k]}) would reach z = {lowest[m, k]:.3f} m, below the "
                              f"table plane (z = {floor:.3f} m) between waypoints #{wp[m]} and #{wp[m] + 1}: the "
                              "path drags it through the table; raise the trace or check the depth and calibration",
                              waypoint=int(wp[m]), value=float(lowest[m, k]), limit=float(floor)))
        lo, hi = np.asarray(cfg.workspace_min, float).copy(), np.asarray(cfg.workspace_max, float)
        lo[2] = -np.inf  # the table check owns the bottom
        outside = volumes.outside_box_distance(pts.reshape(-1, 3), lo, hi).reshape(pts.shape[:2])
        inner = np.minimum(pts - lo, hi - pts).min(axis=-1)
        off = np.where(outside > 0, outside + radii, radii - inner)  # how far each sphere pokes out
        if np.any(off > 1e-9):
            m, k = np.argwhere(off > 1e-9)[0]
            out.append(reason(code, f"{prefix}{thing} ({names[k]}) would leave the workspace box by {off[m, k]:.3f} m "
                              f"near waypoint #{wp[m]}; move the target inside or widen workspace in safety.yaml",
                              waypoint=int(wp[m]), value=float(off[m, k]), limit=0.0))
        for zone in cfg.keep_out_zones:
            inside = _near_zone(pts, radii, zone)
            if np.any(inside):
                m, k = np.argwhere(inside)[0]
                out.append(reason(code, f"{prefix}{thing} ({names[k]}) would enter the keep-out {zone.shape} "
                                  f"{zone.name!r} near waypoint #{wp[m]}; choose a target away from it",
                                  waypoint=int(wp[m])))
        return out

    def _links(self, a: np.ndarray, b: np.ndarray, q: np.ndarray, wp: np.ndarray, thing: str,
               prefix: str) -> list[SafetyReason]:
        """The tool's capsules against the arm's links (all but the wrists, which carry it)."""
        p0, p1, radii = self.model.capsule_segments_many(q)
        n_links = p0.shape[1] - WRIST_LINKS
        if n_links <= 0:
            return []
        gap = volumes.segment_distances(a[:, :, None], b[:, :, None], p0[:, None, :n_links], p1[:, None, :n_links])
        gap = gap - self._r[None, :, None] - radii[None, None, :n_links]
        margin = self.config.self_collision.margin_m
        hit = gap < margin
        if not np.any(hit):
            return []
        m, k, j = np.argwhere(hit)[0]
        link = self.model.capsules(q[m])[j].link
        return [reason(SafetyCode.TOOL_COLLISION,
                       f"{prefix}{thing} ({self.names[k]}) would come within {max(gap[m, k, j], 0.0):.3f} m of "
                       f"the arm's {link} near waypoint #{wp[m]}; choose another path or start configuration",
                       waypoint=int(wp[m]), value=float(gap[m, k, j]), limit=margin)]


def _near_zone(points: np.ndarray, radii: np.ndarray, zone: BoxZone | CylinderZone) -> np.ndarray:
    """Mask (M, P): sphere of radius radii[P] around points (M, P, 3) touches the zone."""
    if isinstance(zone, BoxZone):
        lo, hi = np.asarray(zone.min_m, float), np.asarray(zone.max_m, float)
        d = np.linalg.norm(np.maximum(lo - points, 0.0) + np.maximum(points - hi, 0.0), axis=-1)
        return d <= radii
    radial = np.hypot(points[..., 0] - zone.center_m[0], points[..., 1] - zone.center_m[1])
    z = points[..., 2]
    return (radial <= zone.radius_m + radii) & (z >= zone.z_min_m - radii) & (z <= zone.z_max_m + radii)


def _box_clear_of_zone(lo: list[float], hi: list[float], grow_m: float, zone: BoxZone | CylinderZone) -> bool:
    """True when the axis-aligned box lo..hi grown by ``grow_m`` certainly misses the zone."""
    g = grow_m + SCREEN_MARGIN
    if isinstance(zone, BoxZone):
        return any(hi[k] + g < zone.min_m[k] or lo[k] - g > zone.max_m[k] for k in range(3))
    if hi[2] + g < zone.z_min_m or lo[2] - g > zone.z_max_m:
        return True
    cx, cy = zone.center_m[0], zone.center_m[1]
    dx = max(lo[0] - cx, 0.0, cx - hi[0])
    dy = max(lo[1] - cy, 0.0, cy - hi[1])
    return math.hypot(dx, dy) > zone.radius_m + g
