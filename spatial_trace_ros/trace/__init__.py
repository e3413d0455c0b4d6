"""From a model's answer to a camera-frame 3D trace: backends, parser, consensus."""
