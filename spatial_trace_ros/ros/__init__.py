"""The only place besides ``nodes/`` that imports rclpy or ROS messages: conversions, QoS, parameters."""
