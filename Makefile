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
# The cargo profile setup builds vigil in to prepare the model: the one the
# goal being made needs anyway, so a fresh `make run` compiles vigil once
# (release), not a debug build first and then a release one.
PROFILE ?= dev

.PHONY: setup run test build release bench bench-setup clean-models

## setup: system packages, ONNX Runtime, the default model (+ its batch-dynamic copy), sample media
setup:
	./scripts/setup.sh
	@if [ ! -f $(MODEL_DYN) ]; then \
	  echo "setup: writing the batch-dynamic model $(MODEL_DYN)"; \
	  $(CARGO) run -q --profile $(PROFILE) -p vigil -- model prepare $(MODEL) $(MODEL_DYN); \
	fi

build: setup
	$(CARGO) build --workspace

release: PROFILE = release
release: setup
	$(CARGO) build --release -p vigil

## run: vigil on its default config and the sample clip
run: PROFILE = release
run: release
	$(RUN_ENV) ./target/release/vigil serve --config $(CONFIG)

## test: formatting, lints, and every test against the real model, runtime and media.
# Each stage is one target in TEST_STAGES; `make -k` runs them all even when
# one fails (CI then shows every broken stage) and fails at the end.
# To add a stage: define `test-NAME:` below and append it to TEST_STAGES.
TEST_STAGES := test-fmt test-clippy test-cargo test-doc test-accuracy test-ops test-deploy test-fuzz-api test-gpu-check
.PHONY: $(TEST_STAGES) debug-vigil
test: setup
	@$(MAKE) --no-print-directory -k $(TEST_STAGES)

test-fmt:
	$(CARGO) fmt --all -- --check
test-clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
# Every test under nextest (.config/nextest.toml: a per-test time limit, no
# fail-fast); doctests separately, as nextest does not run them.
test-cargo:
	$(CARGO) nextest run --workspace --no-fail-fast
test-doc:
	$(CARGO) test --workspace --doc
# Detection and tracking against the independent Python references (.venv).
test-accuracy: debug-vigil
	./scripts/check-accuracy.sh target/debug/vigil
test-ops:
	./scripts/check-ops.sh
test-deploy: debug-vigil
	./scripts/check-deploy.sh target/debug/vigil
# CI replays one seed, so whether a commit lands does not depend on which
# cases a random seed draws; `make test-fuzz-api VIGIL_FUZZ_SEED=` explores
# with a random seed (printed, to replay a failure).
VIGIL_FUZZ_SEED ?= 1806921403
test-fuzz-api: debug-vigil
	VIGIL_FUZZ_SEED=$(VIGIL_FUZZ_SEED) ./scripts/fuzz-api.sh target/debug/vigil
# The GPU check's CPU-only parts (scripts/gpu-check.sh runs for real on a GPU machine).
test-gpu-check:
	./scripts/gpu-check.sh --dry-run
# The binary the script stages run (already built by test-cargo: a no-op then).
debug-vigil:
	$(CARGO) build -q -p vigil

## bench-setup: the Python reference pipeline's venv (onnxruntime, OpenCV, numpy from PyPI;
## the venv is made by `make setup` from benches/requirements.txt, shared with the accuracy stage)
bench-setup: setup
	@.venv/bin/python -c 'import onnxruntime, cv2, numpy' || { echo ".venv is incomplete: rm -rf .venv && make setup" >&2; exit 1; }

## bench: criterion benchmarks, then the side-by-side throughput comparison
bench: PROFILE = release
bench: bench-setup
	$(CARGO) bench -p vigil-benches
	./benches/throughput.sh

clean-models:
	rm -f $(MODEL_DYN)
