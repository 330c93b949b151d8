# vigil — the README's two commands are `make run` and `make test`.
# Both run `make setup` first; it is idempotent and only fetches what is missing.

SHELL := /bin/bash
CARGO ?= cargo
ROOT := $(CURDIR)
# The tests and `vigil model` commands run on the CPU-only ONNX Runtime (the
# OpenVINO tests name their library themselves; ort loads one per process).
export ORT_DYLIB_PATH ?= $(ROOT)/third_party/onnxruntime/libonnxruntime.so
# `make run` leaves the choice to vigil: model.device = "auto" then loads the
# onnxruntime-openvino library (README "Back ends"). A caller's ORT_DYLIB_PATH wins.
RUN_ENV := $(if $(filter environment,$(origin ORT_DYLIB_PATH)),,env -u ORT_DYLIB_PATH)
MODEL := models/yolov12n.onnx
MODEL_DYN := models/yolov12n-dyn.onnx
CONFIG ?= configs/vigil.toml

.PHONY: setup run test build release bench bench-setup clean-models

## setup: system packages, ONNX Runtime, the default model (+ its batch-dynamic copy), sample media
setup:
	./scripts/setup.sh
	@if [ ! -f $(MODEL_DYN) ]; then \
	  echo "setup: writing the batch-dynamic model $(MODEL_DYN)"; \
	  $(CARGO) run -q -p vigil -- model prepare $(MODEL) $(MODEL_DYN); \
	fi

build: setup
	$(CARGO) build --workspace

release: setup
	$(CARGO) build --release -p vigil

## run: vigil on its default config and the sample clip
run: release
	$(RUN_ENV) ./target/release/vigil serve --config $(CONFIG)

## test: formatting, lints, and every test against the real model, runtime and media
test: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test --workspace
	./scripts/check-ops.sh
	./scripts/check-deploy.sh target/debug/vigil
	./scripts/fuzz-api.sh target/debug/vigil

## bench-setup: the Python reference pipeline's venv (onnxruntime, OpenCV, numpy from PyPI)
bench-setup: setup
	@[ -x .venv/bin/python ] || python3 -m venv .venv
	.venv/bin/pip install -q onnxruntime==1.32.0 opencv-python-headless==5.0.0.93 numpy==2.4.6

## bench: criterion benchmarks, then the side-by-side throughput comparison
bench: bench-setup
	$(CARGO) bench -p vigil-benches
	./benches/throughput.sh

clean-models:
	rm -f $(MODEL_DYN)
