"""Where each G1 joint sits in the 35-slot ``motor_cmd`` / ``motor_state`` arrays of ``unitree_hg``.

The order is the G1 29-DoF joint order the robot firmware uses: legs 0-11, waist 12-14, left arm
15-21, right arm 22-28. ``arm_sdk`` takes over the waist and both arms; slot 29 of ``motor_cmd`` is not
a motor there: its ``q`` is the arm_sdk blend weight (0 = robot's own controller, 1 = ours).
"""

from __future__ import annotations

NUM_MOTORS = 35
ARM_SDK_WEIGHT_SLOT = 29

WAIST_JOINTS: tuple[str, ...] = ("waist_yaw_joint", "waist_roll_joint", "waist_pitch_joint")
ARM_JOINT_SUFFIXES: tuple[str, ...] = (
    "shoulder_pitch_joint",
    "shoulder_roll_joint",
    "shoulder_yaw_joint",
    "elbow_joint",
    "wrist_roll_joint",
    "wrist_pitch_joint",
    "wrist_yaw_joint",
)
LEFT_ARM_JOINTS: tuple[str, ...] = tuple(f"left_{s}" for s in ARM_JOINT_SUFFIXES)
RIGHT_ARM_JOINTS: tuple[str, ...] = tuple(f"right_{s}" for s in ARM_JOINT_SUFFIXES)

# Every joint arm_sdk commands, in motor-slot order (slots 12..28).
ARM_SDK_JOINTS: tuple[str, ...] = WAIST_JOINTS + LEFT_ARM_JOINTS + RIGHT_ARM_JOINTS
MOTOR_SLOT: dict[str, int] = {name: 12 + i for i, name in enumerate(ARM_SDK_JOINTS)}


def slots(joint_names: tuple[str, ...] | list[str]) -> list[int]:
    """Motor slots of ``joint_names`` (each must be an arm_sdk joint)."""
    return [MOTOR_SLOT[name] for name in joint_names]
