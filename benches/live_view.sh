#!/usr/bin/env bash
# The console's live view: latency (processed frame -> viewer) with 1 and 8
# viewers, and the pipeline's processed fps and CPU with 0, 1 and 8 viewers,
# in alternating rounds against one daemon. The daemon runs STREAMS copies of
# the sample clip (looping, paced at 10 fps each) so that the detector, not
# the clip, limits the frame rate: a watched stream that cost the pipeline
# anything would show up as fewer processed frames.
#
#   benches/live_view.sh [STREAMS=3] [ROUND_SECONDS=20] [ROUNDS=3]
# PROFILE=debug uses the debug build (when a release build is out of reach).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
streams=${1:-3}
seconds=${2:-20}
rounds=${3:-3}
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$root/third_party/onnxruntime/libonnxruntime.so}
profile=${PROFILE:-release}
if [ "$profile" = release ]; then
  cargo build -q --release -p vigil -p vigil-benches --bin vigil --bin live-view
else
  cargo build -q -p vigil -p vigil-benches --bin vigil --bin live-view
fi
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
{
  printf '[server]\nlisten = "127.0.0.1:%s"\n[storage]\ndir = "%s/store"\n' "$port" "$work"
  printf '[model]\ndevice = "cpu"\n[events]\nsnapshots = false\n'
  for i in $(seq 1 "$streams"); do
    printf '[[streams]]\nid = "s%s"\nurl = "data/video/vtest.avi"\nloop = true\n' "$i"
  done
} > "$work/vigil.toml"
RUST_LOG=warn target/$profile/vigil serve --config "$work/vigil.toml" 2>"$work/daemon.log" &
pid=$!
for _ in $(seq 1 240); do
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
  kill -0 "$pid" || { cat "$work/daemon.log" >&2; exit 1; }
  sleep 0.5
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
target/$profile/live-view "127.0.0.1:$port" s1 "$seconds" "$rounds"
