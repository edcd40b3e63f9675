"""Pretrained SR peers (SPAN, Real-ESRGAN animevideov3, SRMD) read from their ncnn weights for the benchmarks."""
