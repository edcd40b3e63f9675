"""Pretrained peers: published efficient-SR networks (SPAN, Real-ESRGAN's SRVGGNet, SRMD) read from the ncnn
files inside their pip wheels into torch. The benchmarks compare against them; ``metasr-train student
--teacher`` distils from them. Licences: ``benchmarks/peers/LICENSES.md``."""
