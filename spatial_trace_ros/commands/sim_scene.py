"""``spatial-trace sim-scene``: write one simulated scene to a folder, to look at it or to launch with it.

Writes ``scene.json`` (the ground truth the oracle uses), ``calibration.yaml`` (the simulated camera's
extrinsics, for the planner), ``world.xml`` (the MJCF, viewable with MuJoCo's viewer), and one rendered
frame: ``color.png`` and ``depth.png`` (16-bit, millimetres).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "write a simulated scene (ground truth, camera calibration, MJCF, one RGB-D frame) to a folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="folder to write into (created if missing)")
    parser.add_argument("--seed", type=int, default=0, help="scene generator seed (default 0)")
    parser.add_argument("--robot", choices=["ur5", "ur5e"], default="ur5e", help="simulated arm (default ur5e)")
    parser.add_argument(
        "--camera-mount", choices=["eye_to_hand", "eye_in_hand"], default="eye_to_hand",
        help="fixed camera in front of the table, or on the wrist (default eye_to_hand)",
    )
    parser.add_argument("--n-objects", type=int, default=4, help="cubes and cylinders (default 4)")
    parser.add_argument("--n-receptacles", type=int, default=2, help="bowls and trays (default 2)")
    parser.add_argument("--width", type=int, default=640, help="image width in pixels (default 640)")
    parser.add_argument("--height", type=int, default=480, help="image height in pixels (default 480)")


def run(args: argparse.Namespace) -> int:
    import cv2

    from spatial_trace_ros.sim.camera import SimFrameSource
    from spatial_trace_ros.sim.config import world_config
    from spatial_trace_ros.sim.scene import write_calibration
    from spatial_trace_ros.sim.world import World

    world = World(
        world_config(
            robot=args.robot, scene_seed=args.seed, camera_mount=args.camera_mount, n_objects=args.n_objects,
            n_receptacles=args.n_receptacles, width=args.width, height=args.height,
        )
    )
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "scene.json").write_text(world.scene.to_json())
    write_calibration(world.scene, out / "calibration.yaml")
    (out / "world.xml").write_text(world.xml)
    with SimFrameSource(world=world, stamp_clock="sim") as camera:
        frame = camera.read(timeout_s=30.0)
    cv2.imwrite(str(out / "color.png"), cv2.cvtColor(frame.color, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(out / "depth.png"), frame.depth)
    print(f"scene seed {args.seed} ({args.robot}, {args.camera_mount}): {', '.join(world.scene.names)}")
    for name in ("scene.json", "calibration.yaml", "world.xml", "color.png", "depth.png"):
        print(f"  {out / name}")
    return 0
