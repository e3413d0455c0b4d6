"""``spatial-trace serve``: host a trace model over HTTP on a GPU machine (see docs/server.md)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = ("serve a trace model (ONNX, TorchScript/torch.export or a transformers VLM) over HTTP, or relay frames to a "
        "RoboTracer spatial-encoder server")

# options passed to ServerSettings only when given, so its defaults (and their docs) live in one place
_OPTIONAL_FIELDS = (
    "device", "host", "port", "token_file", "model_name", "model_version", "precision", "max_batch_size",
    "max_batch_wait_ms", "max_queue", "request_timeout_s", "max_body_bytes", "max_image_side_px", "warmup_batches",
    "cpu_threads", "prompt_template", "convention", "depth_format", "upstream_timeout_s",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    model = parser.add_argument_group("model")
    model.add_argument("--backend", required=True, choices=("onnx", "torch", "transformers", "robotracer-relay"),
                       help="onnx: .onnx file; torch: TorchScript .pt or torch.export .pt2; "
                       "transformers: local checkpoint folder; robotracer-relay: pass frames to a RoboTracer "
                       "spatial-encoder server on this host (--upstream, --spool)")
    model.add_argument("--model", type=Path, help="path of the model file or checkpoint folder (not for the relay)")
    model.add_argument("--device", help="auto (default: CUDA when present), cpu, cuda or cuda:N")
    model.add_argument("--precision", choices=("auto", "fp32", "fp16"),
                       help="auto (default): fp16 on CUDA where the model allows it")
    model.add_argument("--input-size", metavar="WxH", help="model input size, e.g. 320x240 (required for torch)")
    model.add_argument("--model-name", help="name reported to clients (default: file name)")
    model.add_argument("--model-version", help="version reported to clients (default: content hash)")
    model.add_argument("--prompt-template", help="text models: template name or text with {instruction} "
                       "(default robotracer_3d)")
    model.add_argument("--convention", help="text models: answer coordinate convention (default robotracer)")
    model.add_argument("--trust-remote-code", action="store_true",
                       help="text models: allow Python code shipped in the checkpoint folder")
    model.add_argument("--cpu-threads", type=int, help="intra-op CPU threads (default: library default)")
    model.add_argument("--warmup-batches", type=int, help="dummy batches before ready (default 2)")
    relay = parser.add_argument_group("robotracer-relay")
    relay.add_argument("--upstream", help="the RoboTracer spatial-encoder server, e.g. http://127.0.0.1:25554")
    relay.add_argument("--spool", type=Path, help="folder for the frame files the RoboTracer server reads")
    relay.add_argument("--depth-format", choices=("png16_mm", "npy_m"),
                       help="depth files: 16-bit PNG in mm (default) or float32 .npy in metres")
    relay.add_argument("--enable-spatial", action=argparse.BooleanOptionalAction, default=None,
                       help="spatial encoder on when a request does not say (default on)")
    relay.add_argument("--upstream-timeout-s", type=float, help="time limit of one upstream answer (default 120)")
    net = parser.add_argument_group("network and security")
    net.add_argument("--host", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all interfaces)")
    net.add_argument("--port", type=int, help="TCP port (default 8500)")
    net.add_argument("--token-file", type=Path,
                     help="file holding the bearer token (else the SPATIAL_TRACE_SERVER_TOKEN variable)")
    net.add_argument("--allow-no-auth", action="store_true", help="serve without a token (trusted networks only)")
    net.add_argument("--max-body-bytes", type=int, help="largest request body (default 33554432)")
    net.add_argument("--max-image-side-px", type=int, help="largest image width or height (default 4096)")
    net.add_argument("--request-timeout-s", type=float, help="time limit per request (default 30)")
    batching = parser.add_argument_group("batching")
    batching.add_argument("--max-batch-size", type=int, help="largest micro-batch; 1 turns batching off (default 8)")
    batching.add_argument("--max-batch-wait-ms", type=float, help="how long a batch waits to fill (default 2)")
    batching.add_argument("--max-queue", type=int, help="queued requests beyond this get 503 (default 64)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--no-access-log", action="store_true", help="do not log one line per request")


def run(args: argparse.Namespace) -> int:
    from spatial_trace_ros.server.runner import serve
    from spatial_trace_ros.server.settings import build_settings, parse_size

    values: dict[str, object] = {"backend": args.backend}
    for option, field in (("model", "model_path"), ("upstream", "upstream_url"), ("spool", "spool_dir"),
                          ("enable_spatial", "enable_spatial")):
        if getattr(args, option) is not None:
            values[field] = getattr(args, option)
    values.update({name: getattr(args, name) for name in _OPTIONAL_FIELDS if getattr(args, name) is not None})
    if args.input_size is not None:
        values["input_size"] = parse_size(args.input_size)
    values["allow_no_auth"] = args.allow_no_auth
    values["trust_remote_code"] = args.trust_remote_code
    settings = build_settings(**values)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return serve(settings, log_level=args.log_level, access_log=not args.no_access_log)
