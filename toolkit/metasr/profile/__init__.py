"""On-device profiling: the benchmark results the demo apps write and metasr-profile reads."""
