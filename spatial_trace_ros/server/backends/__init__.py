"""Ways to run a trace model inside the server: ONNX Runtime, TorchScript/torch.export, transformers."""
