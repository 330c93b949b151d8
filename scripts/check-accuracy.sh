#!/usr/bin/env bash
# The accuracy stage of `make test`: vigil's answers checked against
# independent Python implementations, not against vigil's own earlier output.
#
# 1. Detection: `vigil detect` on the four photos and `vigil annotate --no-track`
#    on the first 60 frames of the sample clip against benches/reference.py
#    (onnxruntime + OpenCV + numpy, Ultralytics-style pre/post-processing), same
#    model. benches/compare.py: at least 97 % of the boxes (score >= 0.3) of
#    each side have a same-class box with IoU >= 0.9 on the other side, the
#    same frames on both sides, and at least a known number of boxes (so an
#    empty answer cannot agree with an empty answer).
# 2. Tracking: benches/mot_eval.py with the reference ByteTrack (supervision)
#    on MOT15 ground truth with seeded detector noise, --require-all: vigil's
#    MOTA and IDF1 at least the reference's, within --margin.
#
# The clip is cut losslessly (FFV1), so both sides see identical pixels and the
# check measures letterbox, inference and NMS, not two different decoders.
#
# Usage: scripts/check-accuracy.sh [path/to/vigil]   (default target/debug/vigil)
# Needs: .venv from `make setup` (benches/requirements.txt), ffmpeg, the model
# and data from `make setup`. Exits 1 on any disagreement; every step is
# bounded by `timeout`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

fail() { printf 'check-accuracy: %s\n' "$*" >&2; exit 1; }
say() { printf 'check-accuracy: %s\n' "$*"; }

vigil=${1:-target/debug/vigil}
[ -x "$vigil" ] || fail "vigil binary '$vigil' not found (cargo build -p vigil)"
py=.venv/bin/python
[ -x "$py" ] || fail "$py missing: run \`make setup\` (it installs benches/requirements.txt)"
model=models/yolov12n.onnx
[ -f "$model" ] || fail "$model missing: run \`make setup\`"
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$root/third_party/onnxruntime/libonnxruntime.so}

# Each vigil / Python step gets its own wall-clock bound, so a hang fails the
# stage with its name instead of stalling CI.
STEP_LIMIT=${VIGIL_ACCURACY_STEP_LIMIT:-300}
bounded() { timeout --kill-after=10 "$STEP_LIMIT" "$@"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
# The same settings on both sides, whatever the environment says.
for v in $(env | grep -o '^VIGIL_[A-Z0-9_]*' || true); do unset "$v"; done
export RUST_LOG=warn

# --- 1a. photos -------------------------------------------------------------
photos=(data/photos/dog.jpg data/photos/person.jpg data/photos/giraffe.jpg data/photos/horses.jpg)
for p in "${photos[@]}"; do [ -f "$p" ] || fail "$p missing: run \`make setup\`"; done
bounded "$vigil" detect --model "$model" --device cpu "${photos[@]}" > "$tmp/vigil-photos.jsonl" ||
  fail "vigil detect failed on the photos"
bounded "$py" benches/reference.py detect "$model" "${photos[@]}" > "$tmp/ref-photos.jsonl" ||
  fail "benches/reference.py detect failed"
# 4 photos; the reference finds 13 boxes with score >= 0.3 on them.
if ! bounded "$py" benches/compare.py "$tmp/vigil-photos.jsonl" "$tmp/ref-photos.jsonl" \
    --require 0.97 --min-boxes 13 --same-keys > "$tmp/photos.json"; then
  cat "$tmp/photos.json" >&2
  fail "photos: vigil and the reference disagree (above)"
fi
say "photos: $(cat "$tmp/photos.json")"

# --- 1b. 60 frames of the sample clip ----------------------------------------
[ -f data/video/vtest.avi ] || fail "data/video/vtest.avi missing: run \`make setup\`"
bounded ffmpeg -hide_banner -nostdin -v error -y -i data/video/vtest.avi -frames:v 60 -c:v ffv1 "$tmp/clip.mkv" ||
  fail "ffmpeg could not cut the clip"
bounded "$vigil" annotate --model "$model" --device cpu "$tmp/clip.mkv" --no-track --jsonl "$tmp/vigil-clip.jsonl" \
  2> "$tmp/vigil-clip.log" || { cat "$tmp/vigil-clip.log" >&2; fail "vigil annotate failed on the clip"; }
bounded "$py" benches/reference.py video "$model" "$tmp/clip.mkv" > "$tmp/ref-clip.jsonl" ||
  fail "benches/reference.py video failed"
[ "$(wc -l < "$tmp/vigil-clip.jsonl")" = 60 ] || fail "vigil wrote $(wc -l < "$tmp/vigil-clip.jsonl") lines for 60 frames"
# The reference finds 367 boxes with score >= 0.3 in these 60 frames.
if ! bounded "$py" benches/compare.py "$tmp/vigil-clip.jsonl" "$tmp/ref-clip.jsonl" \
    --require 0.97 --min-boxes 350 --same-keys > "$tmp/clip.json"; then
  cat "$tmp/clip.json" >&2
  fail "clip: vigil and the reference disagree (above)"
fi
say "clip (60 frames): $(cat "$tmp/clip.json")"

# --- 2. tracking against the reference ByteTrack ------------------------------
seeds=${VIGIL_ACCURACY_MOT_SEEDS:-4}
if ! bounded "$py" benches/mot_eval.py --vigil "$vigil" --impl supervision --require-all \
    --seeds "$seeds" > "$tmp/mot.md" 2> "$tmp/mot.err"; then
  cat "$tmp/mot.md" "$tmp/mot.err" >&2
  fail "tracking: vigil falls short of the reference ByteTrack, or it could not run (above)"
fi
grep -E '^\| (supervision|vigil \(= supervision\)) \|' "$tmp/mot.md" | tail -2
grep -E '^- vigil vs ' "$tmp/mot.md"
say "ok ($((SECONDS - start)) s)"
