#!/usr/bin/env bash
# The GPU checks, for a machine with an NVIDIA GPU (CI has none, so `make test`
# cannot cover the CUDA path; run this wherever a GPU is available):
#
# 1. crates/vigil-detect's CUDA test with VIGIL_TEST_CUDA=1: a `cuda` session
#    is created on the CUDA execution provider and its boxes equal the CPU
#    session's; `auto` resolves to cuda.
# 2. `vigil detect --device cuda` on the photos exits 0 with boxes (`cuda` never
#    falls back to the CPU: a session that cannot use CUDA is an error).
#
# Needs: nvidia-smi and a driver for CUDA 13 (R580+); the CUDA build of ONNX
# Runtime (VIGIL_ORT_FLAVOR=gpu ./scripts/setup.sh puts it in
# third_party/onnxruntime-gpu/); the CUDA 13 runtime, cuBLAS and cuDNN 9
# libraries on the loader path (docker/Dockerfile.cuda's base image has them).
# A missing piece is named and fails the script; nothing is skipped.
#
# Usage: scripts/check-gpu.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
fail() { printf 'check-gpu: %s\n' "$*" >&2; exit 1; }

command -v nvidia-smi >/dev/null || fail "nvidia-smi not found: this is not a GPU machine (or the driver is not installed)"
timeout 60 nvidia-smi -L || fail "nvidia-smi sees no GPU"

gpu_lib=third_party/onnxruntime-gpu/libonnxruntime.so
[ -e "$gpu_lib" ] || fail "$gpu_lib missing: run VIGIL_ORT_FLAVOR=gpu ./scripts/setup.sh"
provider=third_party/onnxruntime-gpu/libonnxruntime_providers_cuda.so
missing=$(ldd "$provider" | awk '/not found/ {print $1}' | tr '\n' ' ')
[ -z "$missing" ] || fail "$provider cannot load; missing libraries: $missing(CUDA 13 runtime, cuBLAS, cuDNN 9)"

export ORT_DYLIB_PATH=$root/$gpu_lib
export VIGIL_TEST_CUDA=1
timeout 1200 cargo nextest run -p vigil-detect --test batch --no-fail-fast ||
  fail "the CUDA tests failed (above)"

cargo build -q -p vigil
out=$(timeout 300 target/debug/vigil detect --device cuda data/photos/dog.jpg data/photos/horses.jpg) ||
  fail "vigil detect --device cuda failed"
[ "$(grep -c '"class_id"' <<<"$out")" = 2 ] || fail "vigil detect --device cuda: expected 2 lines with boxes, got: $out"
echo "check-gpu: ok"
