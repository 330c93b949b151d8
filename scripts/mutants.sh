#!/usr/bin/env bash
# Proves that the suite guards what it claims: each mutation below breaks one
# piece of the pipeline the way a plausible bug would, and the stages of
# `make test` that should notice are run against it. A mutation that leaves
# every selected stage green is a hole in the suite, and this script fails.
#
# Mutations (each applied alone, then reverted with `git checkout`):
#   letterbox  Letterbox::to_source forgets the vertical padding (pad_y).
#   nms-iou    NMS suppresses only above twice the configured IoU.
#   assoc2     ByteTrack's second association (low-score boxes) matches nothing
#              (its 1 - IoU gate set below zero).
#   batch      the batched detector hands image i the output of image n-1-i.
#
# Usage: scripts/mutants.sh [name...]   (default: all four; about 10 min on 2 cores)
# Needs: what `make setup` installs. Refuses to run on a dirty tree, because it
# edits and restores tracked files.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$root/third_party/onnxruntime/libonnxruntime.so}
CARGO=${CARGO:-cargo}

if ! git diff --quiet -- crates; then
  echo "mutants: crates/ has uncommitted changes; commit or stash them first" >&2
  exit 2
fi

# name | file | exact text to find | replacement | stages to run
mutations=(
  "letterbox|crates/vigil-detect/src/preprocess.rs|(b.y1 - self.pad_y) / self.gain|b.y1 / self.gain|detect accuracy"
  "nms-iou|crates/vigil-detect/src/postprocess.rs|k.bbox.iou(&c.bbox) > params.iou|k.bbox.iou(&c.bbox) > params.iou * 2.0|detect accuracy"
  "assoc2|crates/vigil-track/src/bytetrack.rs|            SECOND_MATCH_THRESH,|            -1.0,|track accuracy"
  "batch|crates/vigil-detect/src/detector.rs|let one = &out[i * stride..(i + 1) * stride];|let j = group.len() - 1 - i; let one = &out[j * stride..(j + 1) * stride];|batch annotate"
)

# Each stage prints its failing test names; exit status 0 means "all green".
stage() {
  case $1 in
    detect) timeout 900 "$CARGO" nextest run -p vigil-detect --no-fail-fast --status-level fail --final-status-level fail ;;
    track) timeout 900 "$CARGO" nextest run -p vigil-track --no-fail-fast --status-level fail --final-status-level fail ;;
    batch) timeout 900 "$CARGO" nextest run -p vigil-detect --test batch --no-fail-fast --status-level fail --final-status-level fail ;;
    annotate) timeout 900 "$CARGO" nextest run -p vigil --test annotate_cli --no-fail-fast --status-level fail --final-status-level fail ;;
    accuracy) "$CARGO" build -q -p vigil && timeout 900 ./scripts/check-accuracy.sh target/debug/vigil ;;
    *) echo "unknown stage $1" >&2; return 2 ;;
  esac
}

apply() { # file find replace
  python3 - "$@" <<'PY'
import sys
path, old, new = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path).read()
if text.count(old) < 1:
    sys.exit(f"mutants: '{old}' not found in {path}: the mutation is stale, update scripts/mutants.sh")
open(path, "w").write(text.replace(old, new, 1))
PY
}

tmpdir=$(mktemp -d)
trap 'rm -rf "$tmpdir"' EXIT
want=("$@")
summary=()
holes=0
for m in "${mutations[@]}"; do
  IFS='|' read -r name file find replace stages <<<"$m"
  if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " =~ " $name " ]]; then continue; fi
  echo "=== mutation $name: $file"
  apply "$file" "$find" "$replace" || exit 2
  # A mutant that does not build proves nothing: stop and say so.
  if ! "$CARGO" build -q --workspace --all-targets 2>"$tmpdir/build.log"; then
    git checkout -q -- "$file"
    tail -20 "$tmpdir/build.log" >&2
    echo "mutants: mutation $name does not compile; update scripts/mutants.sh" >&2
    exit 2
  fi
  caught=()
  for s in $stages; do
    log=$(mktemp)
    if stage "$s" >"$log" 2>&1; then
      echo "    stage $s: passed (did not notice)"
    else
      echo "    stage $s: FAILED (caught)"
      grep -E '^\s+FAIL|check-accuracy:' "$log" | awk '!seen[$0]++' | head -8 | sed 's/^/      /'
      caught+=("$s")
    fi
    rm -f "$log"
  done
  git checkout -q -- "$file"
  if [ ${#caught[@]} -eq 0 ]; then
    holes=$((holes + 1))
    summary+=("$name: NOT caught by: $stages")
  else
    summary+=("$name: caught by: ${caught[*]}")
  fi
done

echo "=== summary"
printf '  %s\n' "${summary[@]}"
[ "$holes" -eq 0 ] || { echo "mutants: $holes mutation(s) survived" >&2; exit 1; }
