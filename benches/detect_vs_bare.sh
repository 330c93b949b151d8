#!/usr/bin/env bash
# `POST /v1/detect` latency against a bare ONNX Runtime session call on the
# same model and thread count, side by side in one run, alternating rounds:
#   bare  — bare-inference --batch 1: P50 of session calls alone (no image
#           decoding, letterboxing, NMS or HTTP), the floor for a request;
#   c1    — benches/detect_latency.py at concurrency 1 against a running
#           release `vigil serve` (one session, THREADS intra-op threads,
#           the default [batch]): P50 latency and requests/s;
#   c8    — the same at concurrency 8: requests/s (what batching buys).
# Prints each round, then medians and the ratios detect-P50 / bare-P50
# (goal <= 1.1) and c8 / c1 throughput (goal >= 1.2).
#
# SESSIONS=N (default 1) runs the daemon with N sessions of THREADS threads
# each (`SESSIONS=2 ... 1` is the `auto` config on 2 cores); the bare floor
# stays one session of THREADS threads, what one request meets.
# VIGIL_NO_BUILD=1 uses the release binaries as they are.
#
# Usage: [SESSIONS=1] benches/detect_vs_bare.sh [ROUNDS=5] [REQUESTS=40] [THREADS=2] [IMAGE=data/photos/dog.jpg]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5} requests=${2:-40} threads=${3:-2} image=${4:-data/photos/dog.jpg}
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$PWD/third_party/onnxruntime/libonnxruntime.so}
sessions=${SESSIONS:-1}
[ -n "${VIGIL_NO_BUILD:-}" ] || cargo build -q --release -p vigil -p vigil-benches
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/vigil.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
[storage]
dir = "$work/store"
[model]
device = "cpu"
sessions = $sessions
intra_threads = $threads
TOML
clip=$work/clip.avi
ffmpeg -v error -i data/video/vtest.avi -frames:v 40 -c copy "$clip"
RUST_LOG=warn ./target/release/vigil serve --config "$work/vigil.toml" 2>"$work/serve.log" &
pid=$!
for _ in $(seq 1 240); do
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
  kill -0 "$pid" || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.5
done
url=http://127.0.0.1:$port/v1/detect
results=$work/results.txt
for r in $(seq 1 "$rounds"); do
  b=$(./target/release/bare-inference "$clip" --batch 1 --frames "$requests" --threads "$threads" --sessions 1 2>/dev/null)
  bare=$(echo "$b" | python3 -c 'import json,sys; print(json.load(sys.stdin)["p50_ms"])')
  out=$(python3 benches/detect_latency.py "$url" "$image" --requests "$requests" --concurrency 1 8)
  read -r c1_p50 c1_rps c8_rps < <(echo "$out" | python3 -c '
import json, sys
rows = {r["concurrency"]: r for r in map(json.loads, sys.stdin)}
print(rows[1]["p50_ms"], rows[1]["rps"], rows[8]["rps"])')
  echo "$bare $c1_p50 $c1_rps $c8_rps" >>"$results"
  printf 'round %s: bare p50 %.1f ms | detect c1 p50 %.1f ms, %.2f req/s | c8 %.2f req/s\n' \
    "$r" "$bare" "$c1_p50" "$c1_rps" "$c8_rps" >&2
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1])]
bare, p50, c1, c8 = (statistics.median(c) for c in zip(*rows))
print(f"median bare session call P50  {bare:.1f} ms")
print(f"median /v1/detect c1 P50       {p50:.1f} ms   ({c1:.2f} req/s)")
print(f"median /v1/detect c8           {c8:.2f} req/s")
per = [r[1] / r[0] for r in rows]
print(f"detect P50 / bare P50 = {p50 / bare:.3f}   (per round {', '.join(f'{x:.3f}' for x in per)}; median of rounds {statistics.median(per):.3f})")
print(f"c8 / c1 throughput    = {c8 / c1:.3f}   (per round {', '.join(f'{r[3] / r[2]:.3f}' for r in rows)})")
PY
