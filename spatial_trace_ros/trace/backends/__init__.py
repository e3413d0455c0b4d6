"""Trace model backends (RoboTracer Flask API, OpenAI-compatible, the project's own server), built
by name through ``spatial_trace_ros.trace.model.make_trace_model``."""
