"""End effectors: the tool description (TCP, collision geometry, gripper limits) and grippers."""
