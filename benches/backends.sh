#!/usr/bin/env bash
# End-to-end speed of the back ends side by side, in one run, alternating
# rounds: `vigil annotate --every 1 --no-track --jsonl` on the first FRAMES
# frames of the sample clip (decode, letterbox, batched inference, NMS, JSON
# lines; timed by vigil from the first frame to the last output), plus the
# Python reference (benches/reference.py: onnxruntime CPU, 2 threads).
#
#   cpu-today   ONNX Runtime 1.32 CPU provider FP32, the old default config
#               (sessions = 1, intra_threads = 0 = all cores)
#   cpu-2x1     the same, two single-thread sessions (the best CPU-provider config)
#   ov-fp32     OpenVINO FP32, default config (sessions/intra_threads = auto)
#   ov-bf16     OpenVINO BF16, default config = what `make run` gets here
#   ov-bf16-1x2 OpenVINO BF16, one two-thread session
#   ov-int8     OpenVINO with models/yolov12n-dyn-int8.onnx (when present)
#   python      the reference
#
# Usage: benches/backends.sh [FRAMES=400] [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
frames=${1:-400} rounds=${2:-3}
py=${PYTHON:-.venv/bin/python}
[ -x "$py" ] || { echo "run 'make bench-setup' for the Python reference venv" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
clip=$work/clip.avi
ffmpeg -v error -i data/video/vtest.avi -frames:v "$frames" -c copy "$clip"
cargo build -q --release -p vigil
cpu_lib=$PWD/third_party/onnxruntime/libonnxruntime.so
ov_lib=$PWD/third_party/onnxruntime-openvino/libonnxruntime.so
int8=models/yolov12n-dyn-int8.onnx

variant() { # name -> "LIB|toml body"
  case $1 in
    cpu-today) echo "$cpu_lib|device = \"cpu\"\nsessions = 1\nintra_threads = 0" ;;
    cpu-2x1) echo "$cpu_lib|device = \"cpu\"\nsessions = 2\nintra_threads = 1" ;;
    ov-fp32) echo "$ov_lib|device = \"openvino\"\nprecision = \"fp32\"" ;;
    ov-bf16) echo "$ov_lib|device = \"auto\"" ;;
    ov-bf16-1x2) echo "$ov_lib|device = \"openvino\"\nprecision = \"bf16\"\nsessions = 1\nintra_threads = 2" ;;
    ov-int8) echo "$ov_lib|device = \"openvino\"\nprecision = \"int8\"\npath = \"$int8\"" ;;
  esac
}
names=(cpu-today cpu-2x1 ov-fp32 ov-bf16 ov-bf16-1x2)
[ -f "$int8" ] && names+=(ov-int8)
results=$work/results.txt
for r in $(seq 1 "$rounds"); do
  for n in "${names[@]}"; do
    v=$(variant "$n")
    printf '[model]\n%b\n' "${v#*|}" > "$work/$n.toml"
    ORT_DYLIB_PATH=${v%%|*} RUST_LOG=vigil=info ./target/release/vigil --log-format json \
      --config "$work/$n.toml" annotate "$clip" --jsonl "$work/out.jsonl" --every 1 --no-track 2> "$work/$n.log"
    fps=$("$py" -c 'import json,sys
for l in open(sys.argv[1]):
    try: r = json.loads(l)
    except ValueError: continue
    if r.get("fields", {}).get("message") == "pipeline finished": print(r["fields"]["fps"])' "$work/$n.log")
    echo "$n $fps" >> "$results"
  done
  p=$("$py" benches/reference.py bench models/yolov12n-dyn.onnx "$clip" --frames "$frames" --batch 1 --threads 2)
  echo "python $(echo "$p" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["fps"])')" >> "$results"
  echo "round $r: $(tail -$((${#names[@]} + 1)) "$results" | tr '\n' ' ')" >&2
done
"$py" - "$results" "$frames" <<'PY'
import statistics, sys
by = {}
for l in open(sys.argv[1]):
    k, v = l.split()
    by.setdefault(k, []).append(float(v))
m = {k: statistics.median(v) for k, v in by.items()}
print(f"frames={sys.argv[2]} rounds={len(by['python'])}  (fps, median; per round in brackets)")
for k, v in by.items():
    print(f"  {k:12s} {m[k]:6.2f}  ({', '.join(f'{x:.2f}' for x in v)})  x{m[k] / m['cpu-today']:.2f} vs cpu-today, x{m[k] / m['python']:.2f} vs python")
PY
