"""ament_python build for spatial_trace_ros: `colcon build` on a robot PC, `pip install -e .` in .venv."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "spatial_trace_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["sim/assets/*", "server/*.json"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.xml")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/config/rviz", glob("config/rviz/*.rviz")),
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
        ],
        "spatial_trace_ros.control_policies": [
        ],
    },
)
