#!/usr/bin/env bash
# Side-by-side throughput of, in one run, alternating rounds:
#   bare     — session calls alone on pre-letterboxed frames (bare-inference)
#   vigil    — `vigil annotate --every 1 --no-track --jsonl` (decode, preprocess,
#              batched inference, NMS, JSON lines: the same work as the reference;
#              timed from the first frame to the last output, as the others are:
#              model loading excluded)
#   vigil+mp4 — the same plus drawing and H.264-encoding every frame
#   python   — benches/reference.py bench (onnxruntime + OpenCV + numpy, sequential)
# all at the same batch size and ONNX Runtime thread count, on the first
# FRAMES frames of the sample clip. Prints fps per round and the ratios
# vigil/bare and vigil/python (medians over rounds).
#
# SESSIONS > 1 runs that many inference sessions of THREADS threads each in
# vigil (model.sessions) and in bare; the Python reference, one session, gets
# the same total thread count (THREADS x SESSIONS; 0 = all cores).
#
# Usage: benches/throughput.sh [FRAMES=795] [BATCH=1] [ROUNDS=3] [THREADS=1] [SESSIONS=2]
# (the defaults are the CPU configuration BENCHMARKS.md reports: the whole
# sample clip, two single-thread sessions against Python on two threads)
set -euo pipefail
cd "$(dirname "$0")/.."
frames=${1:-795} batch=${2:-1} rounds=${3:-3} threads=${4:-1} sessions=${5:-2}
py_threads=$((threads * sessions))
py=${PYTHON:-.venv/bin/python}
[ -x "$py" ] || { echo "run 'make bench-setup' for the Python reference venv" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
clip=$work/clip.avi
ffmpeg -v error -i data/video/vtest.avi -frames:v "$frames" -c copy "$clip"
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$PWD/third_party/onnxruntime/libonnxruntime.so}
cargo build -q --release -p vigil -p vigil-benches

results=$work/results.txt
# The fps vigil annotate logs when its pipeline finishes.
pipeline_fps() {
  "$py" -c 'import json,sys
for l in open(sys.argv[1]):
    try: r = json.loads(l)
    except ValueError: continue
    if r.get("fields", {}).get("message") == "pipeline finished": print(r["fields"]["fps"])' "$1"
}
for r in $(seq 1 "$rounds"); do
  b=$(./target/release/bare-inference "$clip" --batch "$batch" --frames "$frames" --threads "$threads" --sessions "$sessions" 2>/dev/null)
  echo "bare $(echo "$b" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["fps"])')" >> "$results"
  cfg=$work/vigil.toml
  printf '[model]\nintra_threads = %s\nsessions = %s\ndevice = "cpu"\n' "$threads" "$sessions" > "$cfg"
  # JSON lines only: the same work as the Python reference (no video encoding).
  # Timed by vigil itself from the first frame to the last output, like the
  # other two (model loading excluded); the fps of its "pipeline finished" log.
  RUST_LOG=vigil=info ./target/release/vigil --log-format json --config "$cfg" annotate "$clip" \
    --jsonl "$work/out.jsonl" --every 1 --no-track --batch "$batch" 2> "$work/vigil.log"
  echo "vigil $(pipeline_fps "$work/vigil.log")" >> "$results"
  # Plus drawing and H.264 encoding of every frame.
  RUST_LOG=vigil=info ./target/release/vigil --log-format json --config "$cfg" annotate "$clip" \
    -o "$work/out.mp4" --every 1 --no-track --batch "$batch" 2> "$work/vigil-mp4.log"
  echo "vigil+mp4 $(pipeline_fps "$work/vigil-mp4.log")" >> "$results"
  p=$("$py" benches/reference.py bench models/yolov12n-dyn.onnx "$clip" --frames "$frames" --batch "$batch" --threads "$py_threads")
  echo "python $(echo "$p" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["fps"])')" >> "$results"
  echo "round $r: $(tail -4 "$results" | tr '\n' ' ')" >&2
done
"$py" - "$results" "$frames" "$batch" "$threads" "$sessions" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for k, v in rows:
    by.setdefault(k, []).append(float(v))
m = {k: statistics.median(v) for k, v in by.items()}
print(f"frames={sys.argv[2]} batch={sys.argv[3]} threads={sys.argv[4] or 'all'} sessions={sys.argv[5]} rounds={len(by['vigil'])}")
for k in ("bare", "vigil", "vigil+mp4", "python"):
    print(f"  {k:9s} median {m[k]:.2f} fps  ({', '.join(f'{x:.2f}' for x in by[k])})")
print(f"  vigil / bare   = {m['vigil'] / m['bare']:.3f}")
print(f"  vigil / python = {m['vigil'] / m['python']:.3f}")
print(f"  vigil+mp4 / bare = {m['vigil+mp4'] / m['bare']:.3f}")
PY
