#!/usr/bin/env bash
# The accuracy stage of `make test`: vigil's answers checked against
# independent Python implementations, not against vigil's own earlier output.
#
# 1. Detection: `vigil detect` on the four photos, `POST /v1/detect` on them and
#    on larger and EXIF-turned copies, and `vigil annotate --no-track`
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

# --- 1b. the same photos, and larger and EXIF-turned ones, over POST /v1/detect --
# The daemon decodes uploads for the model's eyes: a JPEG larger than the
# model needs at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling), a plain one
# with zune-jpeg; the reference decodes every picture whole with OpenCV.
ffmpeg_jpg() { bounded ffmpeg -hide_banner -nostdin -v error -y -i "$1" -vf "$2" -q:v 2 "$3"; }
ffmpeg_jpg data/photos/horses.jpg scale=1920:-2 "$tmp/horses-1920.jpg" || fail "ffmpeg could not scale a photo"
ffmpeg_jpg data/photos/dog.jpg scale=4032:3024 "$tmp/dog-4032.jpg" || fail "ffmpeg could not scale a photo"
# Stored turned a quarter left, with EXIF orientation 6 ("turn right to show").
ffmpeg_jpg data/photos/person.jpg transpose=2 "$tmp/person-stored.jpg" || fail "ffmpeg could not turn a photo"
"$py" - "$tmp/person-stored.jpg" "$tmp/person-exif6.jpg" <<'PY' || fail "could not write the EXIF block"
import struct, sys
src = open(sys.argv[1], "rb").read()
tiff = b"MM\0*" + struct.pack(">IH", 8, 1) + struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0) + b"\0" * 4
app1 = b"Exif\0\0" + tiff
open(sys.argv[2], "wb").write(src[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + src[2:])
PY
uploads=("${photos[@]}" "$tmp/horses-1920.jpg" "$tmp/dog-4032.jpg" "$tmp/person-exif6.jpg")
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$tmp/serve.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
[storage]
dir = "$tmp/store"
[model]
path = "$model"
device = "cpu"
TOML
"$vigil" serve --config "$tmp/serve.toml" 2> "$tmp/serve.log" &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
ready=
for _ in $(seq 1 240); do
  curl -sf "http://127.0.0.1:$port/readyz" > /dev/null && { ready=1; break; }
  kill -0 "$serve_pid" 2> /dev/null || break
  sleep 0.5
done
[ -n "$ready" ] || { cat "$tmp/serve.log" >&2; fail "vigil serve did not become ready within 120 s"; }
for p in "${uploads[@]}"; do
  out=$(curl -sS --max-time 60 -f --data-binary "@$p" "http://127.0.0.1:$port/v1/detect") ||
    fail "POST /v1/detect failed on $p"
  printf '%s' "$out" | "$py" -c 'import json, sys; d = json.load(sys.stdin); d["source"] = sys.argv[1]; print(json.dumps(d))' "$p"
done > "$tmp/vigil-uploads.jsonl"
kill "$serve_pid" 2> /dev/null; wait "$serve_pid" 2> /dev/null || true
bounded "$py" benches/reference.py detect "$model" "${uploads[@]}" > "$tmp/ref-uploads.jsonl" ||
  fail "benches/reference.py detect failed on the uploads"
# The turned photo is answered in its shown size, as the reference reads it.
"$py" - "$tmp/vigil-uploads.jsonl" "$tmp/ref-uploads.jsonl" <<'PY' || fail "uploads: sizes differ from the reference's"
import json, sys
v, r = ({d["source"]: (d["width"], d["height"]) for d in map(json.loads, open(p))} for p in sys.argv[1:])
bad = {k: (v.get(k), r[k]) for k in r if v.get(k) != r[k]}
sys.exit(f"sizes (vigil, reference): {bad}" if bad else 0)
PY
# 7 pictures; the reference finds 24 boxes with score >= 0.3 on them.
if ! bounded "$py" benches/compare.py "$tmp/vigil-uploads.jsonl" "$tmp/ref-uploads.jsonl" \
    --require 0.97 --min-boxes 22 --same-keys > "$tmp/uploads.json"; then
  cat "$tmp/uploads.json" >&2
  fail "uploads: POST /v1/detect and the reference disagree (above)"
fi
say "uploads (POST /v1/detect, 7 pictures): $(cat "$tmp/uploads.json")"

# --- 1c. 60 frames of the sample clip ----------------------------------------
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
