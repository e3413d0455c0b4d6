"""The GPU-hosted trace model server: ``spatial-trace serve`` (FastAPI + uvicorn)."""
