"""Frame sources (RealSense, recordings, simulation) behind one ``FrameSource`` interface."""
