"""spatial_trace_ros: from what you say to where the robot moves.

Data flows one way: camera -> trace -> planning -> controller. Each stage has a plain-Python core
(no rclpy import) and a thin node under ``nodes/``.
"""

__version__ = "0.1.0"
