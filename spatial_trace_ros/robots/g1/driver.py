"""``G1ArmDriver``: one G1 arm over DDS, ``LowCmd_`` on ``rt/arm_sdk``, feedback from ``rt/lowstate``.

Three threads meet here. The driver's DDS reader thread takes the newest ``rt/lowstate`` sample
(Cyclone keeps only the newest, so the robot's 500 Hz costs Python nothing between polls; it polls
at twice the command rate, at least every 10 ms) and hands it to a mailbox under a lock; the
driver's command thread sends one ``rt/arm_sdk`` command per period (from ``ArmSdkCommander``) and
watches for faults; the caller (execution loop, ROS node) only sets targets and reads snapshots,
under the same locks. So a stalled caller never stalls the robot's command stream: the arm holds
its pose, and a silent robot or a joint outside its limits is noticed even when nobody is asking.

Faults (``rt/lowstate`` silent longer than ``lowstate_timeout_s``, a measured joint outside its
limits) and ``stop`` (end of a run, operator stop, e-stop) do the same thing: hold the current
command and ramp the weight to 0, handing the arm back to the robot's own controller (the decision
and its reasons are in docs/safety.md: the robot's controller keeps balance and needs no live link
from this PC; a damped hold from here would). ``connect`` only joins and listens; the arm is taken
over by ``prepare_motion`` at the start of a run the operator asked for, from wherever it then is,
after checking afresh that the robot talks and every joint is inside its limits; a reconnect never
takes it. ``read_state`` reports the lowstate ``tick`` as the robot clock, so a robot whose state
stops advancing (same tick again and again) stops a run, and carries the measured waist and other
arm in ``other_joints`` (only measured: nothing commands them beyond holding them under arm_sdk).

``cyclonedds`` is imported when connecting, so the factory, the config checks and the errors work
without the optional ``[g1]`` extra.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from spatial_trace_ros.errors import ConfigError, RobotError
from spatial_trace_ros.robots.driver import DriverStats, RobotDriver, RobotState
from spatial_trace_ros.robots.g1.arm_sdk import ArmSdkCommander, Phase
from spatial_trace_ros.robots.g1.config import load_g1_config
from spatial_trace_ros.robots.g1.crc import low_cmd_crc, low_state_crc
from spatial_trace_ros.robots.g1.motors import (
    ARM_SDK_JOINTS,
    ARM_SDK_WEIGHT_SLOT,
    LEFT_ARM_JOINTS,
    MOTOR_SLOT,
    RIGHT_ARM_JOINTS,
    slots,
)
from spatial_trace_ros.robots.model import RobotModel

log = logging.getLogger(__name__)

MOTOR_MODE_ENABLE = 1


@dataclass(frozen=True)
class LowStateSample:
    """The part of one ``rt/lowstate`` the driver uses, stamped on arrival."""

    q: np.ndarray  # all 35 motor slots
    dq: np.ndarray
    tick: int
    mode_machine: int
    received_mono_s: float
    received_wall_s: float


class LowStateMailbox:
    """Newest ``rt/lowstate`` sample, written by the DDS reader thread, read by anyone."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: LowStateSample | None = None
        self.received = 0
        self.bad_crc = 0  # samples dropped because their crc did not match

    def put(self, msg: Any) -> None:
        sample = LowStateSample(
            q=np.array([m.q for m in msg.motor_state]),
            dq=np.array([m.dq for m in msg.motor_state]),
            tick=int(msg.tick),
            mode_machine=int(msg.mode_machine),
            received_mono_s=time.monotonic(),
            received_wall_s=time.time(),
        )
        with self._lock:
            self._latest = sample
            self.received += 1

    def latest(self) -> LowStateSample | None:
        with self._lock:
            return self._latest

    def clear(self) -> None:
        with self._lock:
            self._latest = None


class G1ArmDriver(RobotDriver):
    """Drives ``g1_left_arm`` or ``g1_right_arm`` in joint space (``servo_joints``), waist and other arm held.

    Options are the fields of ``config/g1.yaml`` (see ``G1ArmConfig``) plus ``config_path`` for the
    file itself; an option overrides the file.
    """

    supports = frozenset({"servo_joints"})

    def __init__(self, model: RobotModel, config_path: str | None = None, **options: Any) -> None:
        if tuple(model.joint_names) not in (LEFT_ARM_JOINTS, RIGHT_ARM_JOINTS):
            raise ConfigError(
                f"the g1_arm_sdk driver drives g1_left_arm or g1_right_arm, not {model.name!r} "
                f"(joints {list(model.joint_names)})"
            )
        self.model = model
        self.config = load_g1_config(config_path, **options)
        self.period_s = 1.0 / self.config.rate_hz
        self.stats = DriverStats()
        self._arm_slots = slots(model.joint_names)
        self._sdk_slots = slots(ARM_SDK_JOINTS)
        # The waist and the other arm: measured only, reported so the whole upper body shows on TF.
        self._other_slots = {name: MOTOR_SLOT[name] for name in ARM_SDK_JOINTS if name not in model.joint_names}
        self._lock = threading.Lock()
        self._commander = ArmSdkCommander(tuple(model.joint_names), self.config)
        self._mailbox = LowStateMailbox()
        self._fault = ""
        self._commands_sent = 0
        self._participant: Any = None
        self._writer: Any = None
        self._reader: Any = None
        self._message: Any = None
        self._thread: threading.Thread | None = None
        self._reader_thread: threading.Thread | None = None
        self._halt = threading.Event()

    # -- connection --------------------------------------------------------------------------------
    def connect(self) -> None:
        """Join the robot's DDS domain, wait for ``rt/lowstate`` and start the command thread, which sends
        nothing while the arm is released. The arm is not taken over here: only ``prepare_motion``, at
        the start of a run the operator asked for, does that, so a controller that reconnects on its
        own never takes the arm."""
        if self._participant is None:
            self._open_dds()
        self._wait_for_lowstate()
        if self._thread is None or not self._thread.is_alive():
            self._halt.clear()
            self._thread = threading.Thread(target=self._command_loop, name="g1_arm_sdk", daemon=True)
            self._thread.start()

    def _take_over(self) -> None:
        """Take the arms over at their measured pose (blocks while the weight ramps up, ``weight_ramp_s``);
        after a stop or a fault, from wherever the arm now is, once the robot talks again."""
        with self._lock:
            phase = self._commander.phase
        if phase is Phase.ENGAGED:
            return
        if phase is not Phase.RELEASED:
            self.wait_released(self._release_timeout_s)
        self._mailbox.clear()
        sample = self._wait_for_lowstate()
        with self._lock:
            self._fault = ""
            self._commander.engage(sample.q[self._sdk_slots])
        deadline = time.monotonic() + self._engage_timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                phase, fault = self._commander.phase, self._fault
            if phase is Phase.ENGAGED:
                log.info("took over the G1 arms (%s) on rt/arm_sdk", self.model.name)
                return
            if fault or phase is not Phase.ENGAGING:
                raise RobotError(f"taking over the G1 arms failed: {fault or 'released while ramping up'}")
            time.sleep(0.01)
        self.stop()
        raise RobotError("taking over the G1 arms did not finish in time; the command thread is starved")

    def _open_dds(self) -> None:
        try:
            from cyclonedds.pub import DataWriter
            from cyclonedds.sub import DataReader
            from cyclonedds.topic import Topic

            from spatial_trace_ros.robots.g1 import idl
        except ImportError as err:
            raise ConfigError(
                f"the G1 driver needs cyclonedds 0.10.2 ({err}); install the extra: pip install '.[g1]' "
                "(built against the system's cyclonedds-dev, see docs/g1.md)"
            ) from None
        try:
            participant = idl.join_domain(self.config.dds_domain_id, self.config.network_interface)
            command_topic = Topic(participant, idl.ARM_SDK_TOPIC, idl.LowCmd_)
            state_topic = Topic(participant, idl.LOWSTATE_TOPIC, idl.LowState_)
            self._writer = DataWriter(participant, command_topic)
            self._reader = DataReader(participant, state_topic)
        except ConfigError:
            raise
        except Exception as err:  # Cyclone raises its own DDSException
            raise RobotError(
                f"could not join DDS domain {self.config.dds_domain_id} on interface "
                f"{self.config.network_interface or '(default)'}: {err}"
            ) from None
        self._participant = participant
        self._message = idl.LowCmd_()
        self._halt.clear()
        self._reader_thread = threading.Thread(
            target=self._read_loop, args=(self._reader, idl.LowState_), name="g1_lowstate", daemon=True
        )
        self._reader_thread.start()

    def _read_loop(self, reader: Any, state_type: type) -> None:
        poll_s = min(self.period_s / 2.0, 0.01)
        while not self._halt.is_set():
            try:
                samples = [s for s in reader.take(N=4) if isinstance(s, state_type)]
            except Exception:  # a DDS hiccup must not end the reading; silence is caught as a fault
                log.exception("reading rt/lowstate failed")
                samples = []
            newest = self._newest_intact(samples)
            if newest is not None:
                self._mailbox.put(newest)
            self._halt.wait(poll_s)

    def _newest_intact(self, samples: list[Any]) -> Any:
        """The newest sample whose crc matches (the newest at all without ``check_lowstate_crc``);
        the corrupted ones are counted. Older samples are not checked: only the newest is used."""
        for sample in reversed(samples):
            if not self.config.check_lowstate_crc or low_state_crc(sample) == sample.crc:
                return sample
            self._mailbox.bad_crc += 1
        return None

    def _crc_hint(self) -> str:
        bad = self._mailbox.bad_crc
        if not bad:
            return ""
        return (f"; {bad} rt/lowstate samples failed their crc check and were dropped (corrupted on the "
                "network, or a firmware that leaves the crc empty: then set check_lowstate_crc: false)")

    def _wait_for_lowstate(self) -> LowStateSample:
        deadline = time.monotonic() + self.config.connect_timeout_s
        while time.monotonic() < deadline:
            sample = self._mailbox.latest()
            if sample is not None:
                return sample
            time.sleep(0.005)
        raise RobotError(
            f"no rt/lowstate from the G1 within {self.config.connect_timeout_s:.1f} s on interface "
            f"{self.config.network_interface or '(default)'}, DDS domain {self.config.dds_domain_id}; is the robot "
            "on, the cable plugged in, and network_interface the PC's port on the robot's network? Nothing was "
            f"sent{self._crc_hint()}."
        )

    def disconnect(self) -> None:
        """Release the arms (hold, ramp the weight down), stop the command thread and leave DDS."""
        self.stop()
        self.wait_released(self._release_timeout_s)
        self._halt.set()
        for thread in (self._thread, self._reader_thread):
            if thread is not None:
                thread.join(timeout=2.0)
        self._thread = self._reader_thread = None
        # Dropping the last references deletes the DDS entities (Cyclone keeps them weakly).
        self._reader = self._writer = self._participant = self._message = None

    @property
    def _release_timeout_s(self) -> float:
        return self.config.weight_ramp_s + 1.0

    @property
    def _engage_timeout_s(self) -> float:
        return self.config.weight_ramp_s * 1.5 + 1.0

    @property
    def prepare_timeout_s(self) -> float:
        """The longest ``prepare_motion`` blocks: the last release finishing, the first rt/lowstate, the
        ramp up. The controller allows its real-time loop this long without news before a run."""
        return self._release_timeout_s + self.config.connect_timeout_s + self._engage_timeout_s

    def prepare_motion(self) -> None:
        """Take the arms over (first run, or again after a stop or a fault released them); blocks for
        the weight ramp. Raises ``RobotError`` when the robot is silent or an arm joint is outside its
        limits."""
        if self._participant is None:
            raise RobotError("the G1 driver is not connected; call connect() first")
        self._take_over()

    # -- commands ----------------------------------------------------------------------------------
    def servo_joints(self, q: np.ndarray) -> None:
        with self._lock:
            if self._fault:
                raise RobotError(self._fault)
            self._commander.set_target(q)

    def stop(self) -> None:
        """Hold the current command and ramp the weight to 0 (returns at once; see ``wait_released``)."""
        with self._lock:
            self._commander.release("stopped on request")

    def wait_released(self, timeout_s: float) -> bool:
        """Wait until the weight is back at 0 and nothing more is sent; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                if self._commander.phase is Phase.RELEASED:
                    return True
            if time.monotonic() >= deadline or self._thread is None or not self._thread.is_alive():
                return False
            time.sleep(0.005)

    # -- state -------------------------------------------------------------------------------------
    def read_state(self) -> RobotState:
        sample = self._mailbox.latest()
        with self._lock:
            phase, fault = self._commander.phase, self._fault
            weight = self._commander.weight
        self.stats.extra.update(
            phase=phase.value, weight=weight, commands_sent=self._commands_sent,
            lowstate_received=self._mailbox.received, lowstate_bad_crc=self._mailbox.bad_crc,
        )
        if sample is None:
            q = np.full(self.model.dof, np.nan)
            return RobotState(stamp_s=time.time(), q=q, tcp=self.model.fk(q), connected=False, ready=False,
                              fault=fault)
        q = sample.q[self._arm_slots]
        age_s = time.monotonic() - sample.received_mono_s
        # Ready: following setpoints, or released without a fault (``prepare_motion`` takes over again).
        return RobotState(
            stamp_s=sample.received_wall_s,
            robot_clock=float(sample.tick),
            q=q,
            tcp=self.model.fk(q),
            connected=self._participant is not None and age_s <= self.config.lowstate_timeout_s,
            ready=phase is Phase.ENGAGED or (phase is Phase.RELEASED and not fault),
            fault=fault,
            qd=sample.dq[self._arm_slots],
            other_joints={name: (float(sample.q[slot]), float(sample.dq[slot]))
                          for name, slot in self._other_slots.items()},
        )

    # -- command thread ----------------------------------------------------------------------------
    def _command_loop(self) -> None:
        next_s = last_s = time.perf_counter()
        while not self._halt.is_set():
            now_s = time.perf_counter()
            elapsed_s, last_s = now_s - last_s, now_s
            try:
                self._tick(elapsed_s)
            except Exception as err:  # report, then keep holding and releasing
                log.exception("G1 command period failed")
                with self._lock:
                    self._set_fault(f"G1 command thread error: {err}")
            self.stats.periods += 1
            next_s += self.period_s
            delay = next_s - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                self.stats.missed_periods += 1
                next_s = time.perf_counter()

    def _set_fault(self, reason: str) -> None:
        """Record the first fault and start the release (call with the lock held)."""
        if not self._fault:
            self._fault = f"{reason}; held the pose and released the G1 arms (the next run takes them over again)"
            log.error("%s", self._fault)
        self._commander.release(self._fault)

    def _tick(self, elapsed_s: float) -> None:
        sample = self._mailbox.latest()
        with self._lock:
            commander = self._commander
            if commander.active:  # also while releasing: a silent robot is a fault to report either way
                age_s = np.inf if sample is None else time.monotonic() - sample.received_mono_s
                if age_s > self.config.lowstate_timeout_s:
                    self._set_fault(
                        f"rt/lowstate silent for {age_s:.2f} s (limit {self.config.lowstate_timeout_s} s): "
                        f"robot off, cable out or DDS blocked{self._crc_hint()}"
                    )
                else:
                    violation = commander.limit_violation(sample.q[self._sdk_slots])
                    if violation:
                        self._set_fault(violation)
            command = commander.step(elapsed_s)
        if command is not None:
            self._publish(*command)

    def _publish(self, q_cmd: np.ndarray, weight: float) -> None:
        msg = self._message
        for slot, q in zip(self._sdk_slots, q_cmd):
            m = msg.motor_cmd[slot]
            m.mode = MOTOR_MODE_ENABLE
            m.q = float(q)
            m.dq = 0.0
            m.tau = 0.0
            m.kp = self.config.kp
            m.kd = self.config.kd
        msg.motor_cmd[ARM_SDK_WEIGHT_SLOT].q = float(weight)
        msg.crc = low_cmd_crc(msg)
        self._writer.write(msg)
        self._commands_sent += 1
