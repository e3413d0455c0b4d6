"""MuJoCo simulation of the whole cell: a UR arm, a table with coloured objects, an RGB-D camera.

The simulation plugs into the same contracts as the hardware: ``sim.camera.SimFrameSource`` is a
``FrameSource`` (camera source ``sim``), ``sim.robot.SimRobotDriver`` a ``RobotDriver`` (driver
``sim``) and ``sim.oracle.OracleBackend`` a ``TraceModel`` (backend ``oracle``, an ORACLE that reads
the scene's ground truth; simulation only). ``sim.scene`` holds the seeded scene generator whose
``SceneSpec`` is the ground truth, ``sim.tasks`` the instruction templates and their trace programs,
``sim.world`` the one MuJoCo model and data they all share. Only the world, camera and driver modules
import MuJoCo; nothing is imported by the registries until a ``sim`` name is asked for.
"""
