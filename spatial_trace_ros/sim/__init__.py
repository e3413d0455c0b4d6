"""MuJoCo simulation of the whole cell: a UR arm, a table with coloured objects, an RGB-D camera.

The simulation plugs into the same contracts as the hardware: ``sim.camera.SimFrameSource`` is a
``FrameSource`` (camera source ``sim``), ``sim.robot.SimRobotDriver`` a ``RobotDriver`` (driver
``sim``) and ``sim.oracle.OracleBackend`` a ``TraceModel`` (backend ``oracle``, an ORACLE that reads
the scene's ground truth; simulation only). ``sim.scene`` holds the seeded scene generator whose
``SceneSpec`` is the ground truth; ``sim.world`` the one MuJoCo model and data they all share.
Nothing here imports MuJoCo until a world is built, so a robot PC never pays for it.
"""
