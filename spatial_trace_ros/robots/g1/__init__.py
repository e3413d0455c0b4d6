"""Unitree G1 arms: kinematics (plain Python) and the DDS ``rt/arm_sdk`` driver.

Only ``idl.py`` and ``driver.py`` touch ``cyclonedds`` (the optional ``[g1]`` extra), and ``driver.py``
only when it connects, so the kinematics and the CRC work on machines without it.
"""
