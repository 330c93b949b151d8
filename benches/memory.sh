#!/usr/bin/env bash
# Peak memory of `vigil annotate` against clip length: the sample clip once
# (795 frames) and four times over (3180 frames), same settings. Flat peak RSS
# means nothing grows with the length of the input (bounded rings and
# channels, no per-frame state kept). Peak RSS is GNU time's "Maximum
# resident set size" (VmHWM of the process).
#
# Usage: benches/memory.sh [EVERY=10]
set -euo pipefail
cd "$(dirname "$0")/.."
every=${1:-10}
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
printf "file '%s'\n" "$PWD/data/video/vtest.avi" "$PWD/data/video/vtest.avi" "$PWD/data/video/vtest.avi" "$PWD/data/video/vtest.avi" > "$work/list.txt"
ffmpeg -v error -f concat -safe 0 -i "$work/list.txt" -c copy "$work/x4.avi"
cargo build -q --release -p vigil
for clip in data/video/vtest.avi "$work/x4.avi"; do
  frames=$(ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 "$clip")
  rss=$( { /usr/bin/time -f "%M" ./target/release/vigil annotate "$clip" -o "$work/out.mp4" --jsonl "$work/out.jsonl" --every "$every" 2>&1 >/dev/null | tail -1; } )
  echo "frames=$frames every=$every peak_rss_kib=$rss"
done
