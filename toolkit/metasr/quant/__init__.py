"""Quantizer front-ends that turn float ONNX graphs into QDQ graphs for accelerators."""
