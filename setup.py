"""ament_python build for spatial_trace_ros: `colcon build` on a robot PC, `pip install -e .` in .venv."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "spatial_trace_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["sim/assets/*", "server/*.json", "ros/*.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.xml")),
        # The Fast DDS profile also goes to share/ for launch files that start other packages' nodes.
        (f"share/{PACKAGE}/config", [*glob("config/*.yaml"), f"{PACKAGE}/ros/fastdds_large_messages.xml"]),
        (f"share/{PACKAGE}/config/rviz", glob("config/rviz/*.rviz")),
        (f"share/{PACKAGE}/requirements", ["requirements/robot-pc.txt"]),  # `spatial-trace doctor` checks it
    ],
    install_requires=["setuptools"],
    extras_require={
        "g1": ["cyclonedds==0.10.2"],
        "gpu": ["onnxruntime-gpu"],
    },
    zip_safe=True,
    maintainer="spatial_trace_ros developers",
    maintainer_email="dev@spatial-trace-ros.invalid",
    description="ROS 2 deployment stack for trace-predicting vision-language models.",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "spatial-trace = spatial_trace_ros.cli:main",
            "camera_node = spatial_trace_ros.nodes.camera_node:main",
            "trace_node = spatial_trace_ros.nodes.trace_node:main",
            "planner_node = spatial_trace_ros.nodes.planner_node:main",
            "controller_node = spatial_trace_ros.nodes.controller_node:main",
            "robot_state_node = spatial_trace_ros.nodes.robot_state_node:main",
        ],
        # A lab's own policy registers here from its own package, e.g.
        # "my_policy = my_pkg.policy:MyPolicy" (a subclass of policies.base.ControlPolicy).
        "spatial_trace_ros.control_policies": [
            "movel_path = spatial_trace_ros.policies.movel_path:MoveLPathPolicy",
            "servo_stream = spatial_trace_ros.policies.servo_stream:ServoStreamPolicy",
            "speed_track = spatial_trace_ros.policies.speed_track:SpeedTrackPolicy",
        ],
    },
)
