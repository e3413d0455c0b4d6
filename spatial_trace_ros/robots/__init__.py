"""Robot models (kinematics) and drivers (UR over ur_rtde, G1 over DDS, MuJoCo sim)."""
