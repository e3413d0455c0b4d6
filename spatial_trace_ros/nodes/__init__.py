"""Thin rclpy nodes: parameters, QoS, topics and threads around the plain-Python cores."""
