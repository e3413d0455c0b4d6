"""Where the robot would be: checks of TCP positions and arm configurations, shared by the plan-time
filter (a whole path at once) and the run-time guard (one setpoint, or a short path).

``WaypointChecks.check`` takes poses (N, 4, 4) with their joint rows (N, dof) and returns the reasons
and a speed factor (N,) for singularity slow-down. It looks at the whole arm: the TCP (workspace box,
keep-out zones, table plane, and the straight way between consecutive waypoints through any zone),
the joints (limits, jumps between rows, singularity) and the link capsules (each other, the table,
zones marked ``check_links``). The tool and a held object are checked by
``planning.tool_geometry.ToolGeometry`` (the tool description's shapes), after these checks pass.
"""

from __future__ import annotations

import numpy as np

from spatial_trace_ros.planning import volumes
from spatial_trace_ros.planning.plan import SafetyReason
from spatial_trace_ros.planning.safety.codes import SafetyCode, count, reason, xyz, zone_label
from spatial_trace_ros.planning.safety.screen import ConfigurationScreen
from spatial_trace_ros.planning.safety.zones import segments_hit_zone
from spatial_trace_ros.planning.safety_config import SafetyConfig
from spatial_trace_ros.robots.model import RobotModel

# Below this many rows the exact condition numbers cost less than the Cholesky certificate.
EXACT_CONDITION_ROWS = 4


class WaypointChecks:
    """Position- and configuration-dependent checks with one config and one model."""

    def __init__(self, config: SafetyConfig, model: RobotModel) -> None:
        self.config = config
        self.model = model
        self._pairs = model.self_collision_pairs()
        self._capsule_names = [c.link for c in model.capsules(np.clip(np.zeros(model.dof), model.lower_rad,
                                                                       model.upper_rad))]
        self._link_zones = [z for z in config.keep_out_zones if z.check_links]
        self._lo, self._hi = config.workspace_min, config.workspace_max
        self._screen = ConfigurationScreen(config, model)

    # -- the TCP ---------------------------------------------------------------------------------------
    def positions(self, pos: np.ndarray, start: np.ndarray | None = None) -> list[SafetyReason]:
        """TCP points (N, 3): workspace box, keep-out zones (the points and the straight way between
        consecutive ones, from ``start`` when given), table plane."""
        cfg, out = self.config, []
        lo, hi = self._lo, self._hi
        off = volumes.outside_box_distance(pos, lo, hi) if (pos < lo).any() or (pos > hi).any() else None
        if off is not None and np.any(off > 1e-9):
            i = int(np.argmax(off > 1e-9))
            out.append(reason(SafetyCode.OUTSIDE_WORKSPACE,
                              f"{count(off > 1e-9)} leave the workspace box {xyz(lo)}..{xyz(hi)}, first #{i} at "
                              f"{xyz(pos[i])}, up to {off.max():.3f} m outside; move the target inside or widen "
                              "workspace in safety.yaml", waypoint=i, value=off.max(), limit=0.0))
        way = pos if start is None else np.vstack([np.asarray(start, float)[None], pos])
        for zone in cfg.keep_out_zones:
            inside = volumes.inside_zone(pos, zone)
            if np.any(inside):
                i = int(np.argmax(inside))
                out.append(reason(SafetyCode.KEEP_OUT_ZONE,
                                  f"{count(inside)} enter the {zone_label(zone)}, first #{i} at {xyz(pos[i])}; "
                                  "choose a target away from it", waypoint=i))
                continue
            crossed = segments_hit_zone(way[:-1], way[1:], zone) if len(way) > 1 else np.zeros(0, bool)
            if np.any(crossed):
                k = int(np.argmax(crossed)) - (0 if start is None else 1)
                where = "the start and waypoint #0" if k < 0 else f"waypoints #{k} and #{k + 1}"
                out.append(reason(SafetyCode.KEEP_OUT_ZONE,
                                  f"the straight way between {where} cuts through the {zone_label(zone)} "
                                  f"({count(crossed, 'segment')}); add waypoints around it or choose another "
                                  "target", waypoint=max(k, 0)))
        if cfg.table.enabled:
            floor = cfg.table.z_m + cfg.table.tcp_clearance_m
            low = pos[:, 2] < floor
            if np.any(low):
                i = int(np.argmax(low))
                out.append(reason(SafetyCode.BELOW_TABLE,
                                  f"{count(low)} go below the table plane plus clearance (z = {floor:.3f} m), first "
                                  f"#{i} at z = {pos[i, 2]:.3f} m; check the depth and calibration or raise the target",
                                  waypoint=i, value=pos[i, 2], limit=floor))
        return out

    # -- the arm ---------------------------------------------------------------------------------------
    def check(self, poses: np.ndarray, joints: np.ndarray, start: np.ndarray | None = None,
              screen: bool = True) -> tuple[list[SafetyReason], np.ndarray]:
        """Every position- and configuration-dependent check; also the speed factor (N,) near singularities.
        ``start``: the TCP position the first pose is reached from (its way is checked too). One
        waypoint (the run-time guard's case) first goes through the scalar ``ConfigurationScreen``:
        when it is certainly clear, nothing is left to report (``screen=False``: the array checks only)."""
        if screen and len(poses) == 1 and self._screen.clear(poses[0], joints[0], start):
            return [], np.ones(1)
        cfg, model = self.config, self.model
        pos = poses[:, :3, 3]
        out = self.positions(pos, start)
        reachable = np.all(np.isfinite(joints), axis=1)
        if not np.all(reachable):
            i = int(np.argmin(reachable))
            out.append(reason(SafetyCode.UNREACHABLE,
                              f"{count(~reachable)} cannot be reached by {model.name} without changing arm "
                              f"configuration, first #{i} at {xyz(pos[i])}; move the target closer to the robot or "
                              "start from another configuration", waypoint=i))
        scale = np.ones(len(poses))
        if not np.any(reachable):
            return out, scale
        q = joints[reachable]
        idx = np.flatnonzero(reachable)
        out += self._joint_limit_reasons(q, idx)
        if len(joints) > 1:
            out += self._step_reasons(pos, joints)
        # A cheap exact certificate that every waypoint is below the slow-down threshold: then neither
        # singularity check can fire and the eigenvalues are not needed (for a few rows the exact
        # numbers cost less than the certificate).
        if len(q) <= EXACT_CONDITION_ROWS or not model.condition_numbers_below(q, cfg.singularity.slow_down_condition):
            out += self._singularity_reasons(q, idx, scale)
        p0, p1, radii = model.capsule_segments_many(q)
        if cfg.self_collision.enabled:
            out += self._self_collision_reasons(q, idx)
        if cfg.table.enabled and cfg.table.check_links:
            lowest = (np.minimum(p0[:, 1:, 2], p1[:, 1:, 2]) - radii[1:]).min(axis=1)
            low = lowest < cfg.table.z_m
            if np.any(low):
                k = int(np.argmax(low))
                out.append(reason(SafetyCode.LINK_BELOW_TABLE,
                                  f"the arm would reach z = {lowest[k]:.3f} m, below the table plane "
                                  f"(z = {cfg.table.z_m:.3f} m), at waypoint #{idx[k]} ({count(low)} affected); "
                                  "choose a higher target or another arm configuration",
                                  waypoint=int(idx[k]), value=lowest[k], limit=cfg.table.z_m))
        for zone in self._link_zones:
            hit = segments_hit_zone(p0, p1, zone, radii)
            if np.any(hit):
                k, j = np.argwhere(hit)[0]
                out.append(reason(SafetyCode.KEEP_OUT_ZONE,
                                  f"link {self._capsule_names[j]} would enter the {zone_label(zone)} at waypoint "
                                  f"#{idx[k]} ({count(np.any(hit, axis=1))} affected); choose another target or arm "
                                  "configuration", waypoint=int(idx[k])))
        return out, scale

    def _step_reasons(self, pos: np.ndarray, joints: np.ndarray) -> list[SafetyReason]:
        cfg, model, out = self.config, self.model, []
        steps = np.abs(np.diff(joints, axis=0))
        with np.errstate(invalid="ignore"):
            big = steps > cfg.motion.max_joint_step_rad  # NaN (unreachable) rows compare False
        if np.any(big):
            k, j = np.argwhere(big)[0]
            out.append(reason(SafetyCode.JOINT_JUMP,
                              f"joint {model.joint_names[j]} would jump {steps[k, j]:.2f} rad between waypoints #{k} "
                              f"and #{k + 1} (limit {cfg.motion.max_joint_step_rad:.2f} rad): the arm changes "
                              "configuration or passes near a singularity; move the path away from it",
                              waypoint=k, value=steps[k, j], limit=cfg.motion.max_joint_step_rad))
        cart = np.linalg.norm(np.diff(pos, axis=0), axis=1)
        if np.any(cart > cfg.motion.max_step_m):
            k = int(np.argmax(cart > cfg.motion.max_step_m))
            out.append(reason(SafetyCode.STEP_TOO_LARGE,
                              f"waypoints #{k} and #{k + 1} are {cart[k]:.3f} m apart (limit "
                              f"{cfg.motion.max_step_m:.3f} m); lower the planner's spacing_m",
                              waypoint=k, value=cart[k], limit=cfg.motion.max_step_m))
        return out

    def _self_collision_reasons(self, q: np.ndarray, idx: np.ndarray) -> list[SafetyReason]:
        margin = self.config.self_collision.margin_m
        gap, pair = volumes.self_collision_clearance(self.model, q)
        hit = gap < margin
        if not np.any(hit):
            return []
        k = int(np.argmax(hit))
        a, b = self._pairs[pair[k]]
        return [reason(SafetyCode.SELF_COLLISION,
                       f"links {self._capsule_names[a]} and {self._capsule_names[b]} would come within "
                       f"{max(gap[k], 0.0):.3f} m of each other at waypoint #{idx[k]} ({count(hit)} "
                       "affected); choose another path or start configuration",
                       waypoint=int(idx[k]), value=gap[k], limit=margin)]

    def _singularity_reasons(self, q: np.ndarray, idx: np.ndarray, scale: np.ndarray) -> list[SafetyReason]:
        """Refusal at the stop condition number, slow-down (written into ``scale``) above the slow one."""
        out: list[SafetyReason] = []
        cond = self.model.condition_numbers(q)
        sc = self.config.singularity
        stop = cond >= sc.stop_condition
        if np.any(stop):
            i = int(idx[np.argmax(stop)])
            out.append(reason(SafetyCode.SINGULARITY,
                              f"{count(stop)} are too close to a singularity (Jacobian condition number up to "
                              f"{np.max(cond):.1f}, limit {sc.stop_condition:.0f}), first #{i}; keep the path away "
                              "from full stretch, the base axis and wrist alignment",
                              waypoint=i, value=float(np.max(cond)), limit=sc.stop_condition))
        slow = (cond > sc.slow_down_condition) & ~stop
        if np.any(slow):
            frac = (cond[slow] - sc.slow_down_condition) / (sc.stop_condition - sc.slow_down_condition)
            factors = np.maximum(sc.min_speed_scale, 1.0 - frac)
            scale[idx[slow]] = factors
            out.append(reason(SafetyCode.SINGULARITY_SLOWED,
                              f"slowed to {factors.min():.0%} of the speed near a singularity at {count(slow)} "
                              f"(condition number up to {cond[slow].max():.1f}, slowing from "
                              f"{sc.slow_down_condition:.0f})", waypoint=int(idx[np.argmax(slow)]),
                              value=float(factors.min()), limit=1.0))
        return out

    def _joint_limit_reasons(self, q: np.ndarray, idx: np.ndarray) -> list[SafetyReason]:
        model, margin = self.model, self.config.joint_limits.margin_rad
        low = q < model.lower_rad + margin
        high = q > model.upper_rad - margin
        bad = low | high
        if not np.any(bad):
            return []
        k, j = np.argwhere(bad)[0]
        limit = model.lower_rad[j] if low[k, j] else model.upper_rad[j]
        return [reason(SafetyCode.JOINT_LIMIT,
                       f"joint {model.joint_names[j]} would reach {q[k, j]:.2f} rad at waypoint #{idx[k]}, within "
                       f"{margin:.2f} rad of its limit {limit:.2f} rad ({count(np.any(bad, axis=1))} affected); "
                       "unwind that joint before planning or choose another target",
                       waypoint=int(idx[k]), value=q[k, j], limit=limit)]
