#!/usr/bin/env bash
# GPU check, ready to run on a machine with an NVIDIA GPU (about 6-8 minutes):
#   1. installs what it needs from the registries: ONNX Runtime's CUDA build
#      (VIGIL_ORT_FLAVOR=gpu scripts/setup.sh, pinned + sha256) and the CUDA 13
#      runtime libraries it links (nvidia-* wheels from PyPI, pinned) into .venv-gpu;
#   2. builds vigil (release; ort's `cuda` feature is always compiled in) and
#      runs crates/vigil-detect's CUDA test with VIGIL_TEST_CUDA=1: a `cuda`
#      session is created on the CUDA execution provider, its boxes equal the
#      CPU session's, and `auto` resolves to cuda (without a GPU, `make test`
#      runs the same test asserting the error that names the missing library);
#   3. writes the FP16 model (vigil model convert --fp16, checked on the CPU);
#   4. checks CUDA FP32 and FP16 detections against CPU FP32 detections computed
#      in the same process (photos + every 5th clip frame; benches/agreement.rs);
#   5. measures, decode included: `vigil annotate --no-track` fps on a 1080p clip
#      made with ffmpeg at batch 1, 8 and 32 for FP32 and FP16; the most 25-fps
#      1080p streams `vigil serve` keeps up with (all within 5 % of real time);
#      the most GPU memory used (nvidia-smi);
#   6. prints one Markdown table (for BENCHMARKS.md "GPU").
#
# --dry-run (what CI runs): no GPU and no downloads; the same steps on the CPU
# provider with tiny sizes, so the script's plumbing cannot rot unnoticed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

dry=false
case ${1:-} in
  --dry-run) dry=true ;;
  '') ;;
  *) echo "usage: scripts/gpu-check.sh [--dry-run]" >&2; exit 2 ;;
esac
say() { printf 'gpu-check: %s\n' "$*" >&2; }
die() { printf 'gpu-check: error: %s\n' "$*" >&2; exit 1; }

# CUDA 13 runtime libraries for onnxruntime-gpu 1.31.1 (libcudart.so.13,
# libcublas(Lt).so.13, cuDNN 9, cuFFT, cuRAND, NVRTC, nvJitLink).
CUDA_WHEELS=(nvidia-cuda-runtime==13.5.37 nvidia-cublas==13.10.0.20 nvidia-cudnn-cu13==9.27.0.42
  nvidia-cufft==12.4.0.43 nvidia-curand==10.4.4.72 nvidia-cuda-nvrtc==13.5.37 nvidia-nvjitlink==13.5.37)

work=$(mktemp -d); trap 'rm -rf "$work"; [ -n "${serve_pid:-}" ] && kill "$serve_pid" 2>/dev/null || true' EXIT
gpu_mem_max=0
sample_gpu_mem() {
  $dry && return 0
  local m
  m=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1 | tr -d ' ')
  [ "${m:-0}" -gt "$gpu_mem_max" ] && gpu_mem_max=$m
  return 0
}

if $dry; then
  say "dry run: CPU provider, tiny sizes, nothing downloaded"
  lib=$root/third_party/onnxruntime/libonnxruntime.so
  [ -f "$lib" ] || die "$lib missing: run make setup"
  device=cpu profile=debug frames=8 size=640:360 batches=(1 8) streams_list=(1) stream_secs=4 every=100
  cargo build -q -p vigil -p vigil-benches
else
  command -v nvidia-smi >/dev/null || die "no NVIDIA GPU here (nvidia-smi not found); use --dry-run"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2
  VIGIL_ORT_FLAVOR=gpu ./scripts/setup.sh
  [ -x .venv-gpu/bin/python ] || python3 -m venv .venv-gpu
  say "installing CUDA runtime wheels: ${CUDA_WHEELS[*]}"
  .venv-gpu/bin/pip install -q "${CUDA_WHEELS[@]}"
  site=$(.venv-gpu/bin/python -c 'import site; print(site.getsitepackages()[0])')
  LD_LIBRARY_PATH=$(find "$site/nvidia" -maxdepth 2 -name lib -type d | tr '\n' ':')${LD_LIBRARY_PATH:-}
  export LD_LIBRARY_PATH
  lib=$root/third_party/onnxruntime-gpu/libonnxruntime.so
  device=cuda profile=release frames=600 size=1920:1080 batches=(1 8 32) streams_list=(4 8 16 32) stream_secs=20 every=5
  cargo build -q --release -p vigil -p vigil-benches
  say "CUDA tests (VIGIL_TEST_CUDA=1)"
  ORT_DYLIB_PATH=$lib VIGIL_TEST_CUDA=1 timeout 1200 \
    cargo nextest run -p vigil-detect --test batch --no-fail-fast >&2 ||
    die "the CUDA tests failed (above)"
fi
bin=$root/target/$profile
fp16=$work/yolov12n-dyn-fp16.onnx
say "writing the FP16 model"
ORT_DYLIB_PATH=$root/third_party/onnxruntime/libonnxruntime.so \
  "$bin/vigil" model convert --fp16 models/yolov12n-dyn.onnx "$fp16" >&2

say "agreement with CPU FP32"
ORT_DYLIB_PATH=$lib "$bin/agreement" --every "$every" --calls 10 \
  --variant "$device FP32=$device:fp32" --variant "$device FP16=$device:fp16:$fp16" > "$work/agreement.md"
sample_gpu_mem

say "making a ${size/:/x} clip ($frames frames)"
ffmpeg -v error -y -stream_loop -1 -i data/video/vtest.avi -frames:v "$frames" \
  -vf "scale=$size" -r 25 -c:v libx264 -preset ultrafast -pix_fmt yuv420p "$work/1080p.mp4"

pipeline_fps() { # log -> fps of the "pipeline finished" line
  python3 -c 'import json,sys
for l in open(sys.argv[1]):
    try: r = json.loads(l)
    except ValueError: continue
    if r.get("fields", {}).get("message") == "pipeline finished": print(round(r["fields"]["fps"], 1))' "$1"
}
declare -A fps
# Frames processed by all streams so far, from the daemon's /metrics.
count_processed() {
  curl -sf "http://127.0.0.1:$1/metrics" |
    awk '/^vigil_frames_total\{/ && /outcome="processed"/ { s += $NF } END { print s + 0 }'
}
for prec in fp32 fp16; do
  model=models/yolov12n-dyn.onnx
  [ "$prec" = fp16 ] && model=$fp16
  for b in "${batches[@]}"; do
    printf '[model]\npath = "%s"\ndevice = "%s"\nsessions = 1\n[batch]\nmax_size = %s\nmax_wait_ms = 50\n' \
      "$model" "$device" "$b" > "$work/a.toml"
    ORT_DYLIB_PATH=$lib RUST_LOG=vigil=info "$bin/vigil" --log-format json --config "$work/a.toml" \
      annotate "$work/1080p.mp4" --jsonl "$work/out.jsonl" --no-track --batch "$b" 2> "$work/a.log" &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do sample_gpu_mem; sleep 1; done
    wait "$pid" || { tail -5 "$work/a.log" >&2; die "annotate failed ($prec, batch $b)"; }
    fps[$prec.$b]=$(pipeline_fps "$work/a.log")
    say "annotate $prec batch $b: ${fps[$prec.$b]} fps"
  done
done

# Concurrent live 1080p streams: the most N at which every stream's processed
# rate stays within 5 % of its 25 fps input.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
kept=0
for n in "${streams_list[@]}"; do
  {
    printf '[server]\nlisten = "127.0.0.1:%s"\n[storage]\ndir = "%s/store"\n' "$port" "$work"
    printf '[model]\ndevice = "%s"\nsessions = 1\n[batch]\nmax_size = 32\nmax_wait_ms = 20\n' "$device"
    for i in $(seq 1 "$n"); do printf '[[streams]]\nid = "s%s"\nurl = "%s"\nloop = true\n' "$i" "$work/1080p.mp4"; done
  } > "$work/serve.toml"
  ORT_DYLIB_PATH=$lib RUST_LOG=warn "$bin/vigil" serve --config "$work/serve.toml" 2> "$work/serve.log" &
  serve_pid=$!
  for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 1; done
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { tail -5 "$work/serve.log" >&2; die "serve not ready"; }
  sleep 3 # let every stream open before counting
  p0=$(count_processed "$port")
  for _ in $(seq 1 "$stream_secs"); do sample_gpu_mem; sleep 1; done
  p1=$(count_processed "$port")
  kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=
  rate=$(python3 -c "print(round(($p1 - $p0) / $stream_secs / $n, 1))")
  say "$n streams: $rate processed fps per stream"
  if python3 -c "import sys; sys.exit(0 if $rate >= 0.95 * 25 else 1)"; then kept=$n; else break; fi
done

if $dry; then
  what="DRY RUN on the CPU provider"
  mem="n/a (dry run)"
else
  what=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
  mem="$gpu_mem_max MiB"
fi
header="| \`vigil annotate --no-track\`, ${size/:/x}, decode included |"
rule="| --- |"
for b in "${batches[@]}"; do
  header+=" batch $b |"
  rule+=" --- |"
done
echo "## GPU check ($(date -u +%F), $what)"
echo
cat "$work/agreement.md"
echo
echo "$header"
echo "$rule"
for prec in fp32 fp16; do
  row="| $device $prec (fps) |"
  for b in "${batches[@]}"; do row+=" ${fps[$prec.$b]} |"; done
  echo "$row"
done
echo
echo "Concurrent 25-fps ${size/:/x} streams kept within 5 % of real time: **$kept** (tried ${streams_list[*]})."
echo "Most GPU memory used: $mem."
