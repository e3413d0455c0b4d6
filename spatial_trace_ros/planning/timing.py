"""Time parameterisation of a waypoint path along its arc length, and the discrete motion measures
the safety checks use.

The plan is piecewise linear between waypoints, so what a controller sees is each segment's average
velocity ``v_k = dp_k / dt_k`` and the change between neighbours
``a_i = (v_i - v_(i-1)) / ((dt_(i-1) + dt_i) / 2)`` (from and to rest at the ends). The timing below
guarantees ``|v_k| <= v_max`` and ``|a_i| <= a_max`` in exactly these terms, and is time-optimal for
them on straight paths:

- every segment gets a speed cap: the TCP speed limit (scaled down near singularities), and the
  speeds at which the tool rotation or any joint would reach its own limit;
- at a corner, the turn ``|d_i - d_(i-1)|`` spends part of the acceleration budget; the cap of the
  adjacent segments is lowered only when the turn would need more than half of it;
- the arc-length speed profile is then the fastest one with those caps and the remaining tangential
  acceleration (forward and backward passes), trapezoidal within each segment. Averages of a profile
  whose slope is bounded by ``a`` never differ by more than ``a`` times the half-sum of the intervals,
  which is the bound above.

Segments without translation (the tool turning in place) are timed by their rotation and joint caps
alone; the path comes to rest before and after them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_SEGMENT_M = 1e-9


@dataclass(frozen=True)
class TimingLimits:
    max_speed_mps: float
    max_accel_mps2: float
    max_angular_speed_radps: float
    max_joint_speed_radps: np.ndarray


def rotation_angles(poses: np.ndarray) -> np.ndarray:
    """Tool rotation [rad] over each of the N-1 segments of poses (N, 4, 4)."""
    R = poses[:, :3, :3]
    rel = np.einsum("nji,njk->nik", R[:-1], R[1:])  # R_k^T R_(k+1)
    cos = (np.trace(rel, axis1=1, axis2=2) - 1.0) / 2.0
    return np.arccos(np.clip(cos, -1.0, 1.0))


def segment_velocities(positions: np.ndarray, times_s: np.ndarray) -> np.ndarray:
    """Average TCP velocity (N-1, 3) of every segment."""
    return np.diff(positions, axis=0) / np.diff(times_s)[:, None]


def waypoint_accelerations(positions: np.ndarray, times_s: np.ndarray) -> np.ndarray:
    """TCP acceleration (N, 3) at every waypoint in the discrete sense above (rest at both ends)."""
    v = segment_velocities(positions, times_s)
    dt = np.diff(times_s)
    zero = np.zeros((1, 3))
    v_ext = np.vstack([zero, v, zero])
    dt_ext = np.concatenate([[0.0], dt, [0.0]])
    return np.diff(v_ext, axis=0) / ((dt_ext[:-1] + dt_ext[1:]) / 2.0)[:, None]


def _segment_times(v_a: np.ndarray, v_b: np.ndarray, cap: np.ndarray, accel: np.ndarray,
                   length: np.ndarray) -> np.ndarray:
    """Fastest time over each segment from speed ``v_a`` to ``v_b`` with speed <= cap and |accel| <= accel
    (accelerate, cruise if there is room, brake)."""
    peak = np.sqrt(np.maximum((v_a * v_a + v_b * v_b + 2.0 * accel * length) / 2.0, 0.0))
    v_m = np.minimum(cap, peak)
    d_acc = (v_m * v_m - v_a * v_a) / (2.0 * accel)
    d_dec = (v_m * v_m - v_b * v_b) / (2.0 * accel)
    cruise = np.maximum(length - d_acc - d_dec, 0.0)
    return (v_m - v_a) / accel + (v_m - v_b) / accel + cruise / v_m


def _reachable_speeds_sq(limit_sq: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Forward pass ``u[k+1] = min(limit_sq[k+1], u[k] + gain[k])`` from ``u[0] = limit_sq[0]``, in closed
    form: ``u[k] = C[k] + min over j <= k of (limit_sq[j] - C[j])`` with ``C`` the running sum of gains."""
    run = np.concatenate([[0.0], np.cumsum(gain)])
    return run + np.minimum.accumulate(limit_sq - run)


def _time_piece(lengths: np.ndarray, caps: np.ndarray, dirs: np.ndarray, accel: float) -> np.ndarray:
    """Durations of a run of translating segments that starts and ends at rest."""
    m = len(lengths)
    caps = caps.copy()
    a_tan = np.full(m + 1, accel)  # tangential budget at each node
    if m > 1:
        turn = np.linalg.norm(dirs[1:] - dirs[:-1], axis=1)  # at interior nodes 1..m-1
        span = lengths[:-1] + lengths[1:]
        fastest = np.maximum(caps[:-1], caps[1:])
        need = 2.0 * turn * fastest * fastest / span
        sharp = need > accel / 2.0
        a_tan[1:-1] = np.where(sharp, accel / 2.0, accel - need)
        with np.errstate(divide="ignore"):
            corner = np.where(sharp, np.sqrt(accel / 2.0 * span / (2.0 * np.maximum(turn, 1e-300))), np.inf)
        caps[:-1] = np.minimum(caps[:-1], corner)
        caps[1:] = np.minimum(caps[1:], corner)
    seg_accel = np.minimum(a_tan[:-1], a_tan[1:])
    limit = np.concatenate([[0.0], np.minimum(caps[:-1], caps[1:]), [0.0]])
    gain = 2.0 * seg_accel * lengths
    forward = _reachable_speeds_sq(limit**2, gain)
    backward = _reachable_speeds_sq(limit[::-1] ** 2, gain[::-1])[::-1]
    v = np.sqrt(np.minimum(forward, backward))
    return _segment_times(v[:-1], v[1:], caps, seg_accel, lengths)


def time_parameterize(
    poses: np.ndarray,
    joints: np.ndarray,
    limits: TimingLimits,
    speed_scale: np.ndarray | None = None,
) -> np.ndarray:
    """Waypoint times (N,) from 0: the fastest timing within ``limits``. ``speed_scale`` (N-1,) in
    (0, 1] lowers the TCP speed cap of individual segments (near singularities)."""
    poses = np.asarray(poses, float)
    n = len(poses)
    if n < 2:
        raise ValueError(f"timing needs at least 2 waypoints, got {n}")
    delta = np.diff(poses[:, :3, 3], axis=0)
    lengths = np.linalg.norm(delta, axis=1)
    joint_steps = np.abs(np.diff(np.asarray(joints, float), axis=0))
    min_dt = np.maximum(
        rotation_angles(poses) / limits.max_angular_speed_radps,
        np.max(joint_steps / np.asarray(limits.max_joint_speed_radps, float), axis=1),
    )
    scale = np.ones(n - 1) if speed_scale is None else np.asarray(speed_scale, float)
    moving = lengths >= MIN_SEGMENT_M
    with np.errstate(divide="ignore"):
        caps = np.minimum(limits.max_speed_mps * scale, np.where(min_dt > 0, lengths / min_dt, np.inf))
    dirs = np.where(moving[:, None], delta / np.where(moving, lengths, 1.0)[:, None], 0.0)
    dt = np.zeros(n - 1)
    k = 0
    while k < n - 1:
        if not moving[k]:
            dt[k] = max(float(min_dt[k]), 1e-3)  # turn in place (a repeated pose still takes a tick)
            k += 1
            continue
        end = k
        while end < n - 1 and moving[end]:
            end += 1
        dt[k:end] = _time_piece(lengths[k:end], caps[k:end], dirs[k:end], limits.max_accel_mps2)
        k = end
    return np.concatenate([[0.0], np.cumsum(dt)])
