#!/usr/bin/env bash
# Soak test of `vigil serve`: STREAMS looping file streams (the sample clip,
# 10 fps) at every = 2 (5 fps each) for MINUTES minutes; samples the daemon's
# RSS, the queue-stage latency and the processed fps of the last 30 s every
# 30 s. Flat RSS after warm-up, a bounded queue stage and processed fps at
# STREAMS x 5 mean no backlog grows and the streams hold their rate (run it
# with the capacity `vigil bench --fps 5` reports).
#
# Usage: benches/serve_soak.sh [MINUTES=10] [BINARY=target/release/vigil] [STREAMS=4]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
bin=${2:-target/release/vigil}
streams=${3:-4}
[ -x "$bin" ] || cargo build -q --release -p vigil
work=$(mktemp -d); trap '{ kill $pid && wait $pid; } 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
{
  printf '[server]\nlisten = "127.0.0.1:%s"\n[storage]\ndir = "%s/store"\n' "$port" "$work"
  for i in $(seq 1 "$streams"); do
    printf '[[streams]]\nid = "cam%s"\nurl = "%s"\nloop = true\nevery = 2\n' "$i" "$PWD/data/video/vtest.avi"
  done
} > "$work/vigil.toml"
RUST_LOG=warn "$bin" serve --config "$work/vigil.toml" 2> "$work/log" &
pid=$!
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
echo "t_s rss_mib queue_p_mean_ms frames_processed frames_dropped processed_fps_last_30s"
last=0
end=$(( $(date +%s) + minutes * 60 ))
while [ "$(date +%s)" -lt "$end" ]; do
  sleep 30
  rss=$(awk '/VmRSS/ {print int($2/1024)}' /proc/$pid/status)
  m=$(curl -sf "http://127.0.0.1:$port/metrics")
  q=$(echo "$m" | awk '/^vigil_stage_seconds_sum\{stage="queue"\}/ {s=$2} /^vigil_stage_seconds_count\{stage="queue"\}/ {c=$2} END {if (c>0) printf "%.1f", 1000*s/c; else print "nan"}')
  p=$(echo "$m" | awk '/^vigil_frames_total\{outcome="processed"/ {s+=$2} END {print s+0}')
  d=$(echo "$m" | awk '/^vigil_frames_total\{outcome="dropped"/ {s+=$2} END {print s+0}')
  echo "$(( minutes * 60 - end + $(date +%s) )) $rss $q $p $d $(awk -v a="$p" -v b="$last" 'BEGIN {printf "%.2f", (a - b) / 30}')"
  last=$p
done
