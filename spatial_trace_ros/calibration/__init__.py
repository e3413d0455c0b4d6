"""Hand-eye calibration: the ChArUco board, the solve, pose sets, sample collection, the simulated cell."""
