"""Evaluation: how close a model's traces come to the truth, on the benchmark and on your own cell.

``metrics`` (trace distances), ``success`` (TraceSpatial-Bench's rule and its collision check),
``reward`` (a decomposed RewardMap-style score), ``dataset`` (the TraceSpatial-Bench file layout),
``scoring`` (answers to per-sample scores), ``report`` (CSV and tables), ``finetune_export``
(conversation JSON for fine-tuning). No module here imports rclpy.
"""
