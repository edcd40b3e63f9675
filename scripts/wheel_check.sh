#!/usr/bin/env bash
# Build the wheel from this checkout, install it into a fresh venv and use it from outside the repository:
# the recipes, device tables and weights must come from the installed package, not from the source tree.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3.11}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$root/.venv/bin/python" -m pip wheel --quiet --no-deps -w "$work/dist" "$root"
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
"$work/venv/bin/python" -m pip install --quiet torch==2.13.0
"$work/venv/bin/python" -m pip install --quiet "$work"/dist/metasr_edge-*.whl

mkdir "$work/elsewhere" && cd "$work/elsewhere"
bin="$work/venv/bin"
"$bin/metasr-export" --version
"$bin/metasr-export" --list
"$bin/metasr-export" --target onnx --out cli
"$bin/python" -c "import metasr; r = metasr.export('onnx', out='api'); print(r.artifact, round(r.parity.min_psnr_db, 1))"
"$bin/metasr-profile" cli/onnx/metasr_x2_router.onnx --device estimate:pixel-8 --input-size 544x960
for f in cli/onnx/*.onnx; do cmp "$f" "api/onnx/$(basename "$f")"; done
echo "wheel check passed: $(ls "$work"/dist)"
