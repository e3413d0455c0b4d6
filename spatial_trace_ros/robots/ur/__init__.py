"""Universal Robots arms: closed-form UR5 / UR5e kinematics (``kinematics``) and the ur_rtde driver."""
