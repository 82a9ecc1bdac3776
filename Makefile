# jem-gpu: two commands do everything on a fresh Debian 12 machine with Swift installed.
#   make demo   train on the built-in dataset, write samples and metrics
#   make test   run the whole test suite (CPU backend and OpenCL backend on PoCL)
#   make compare  train a JEM and a cross-entropy baseline, then write a report comparing them
#   make demo-fashion  the same on a Fashion-MNIST subset (Debian's dataset-fashion-mnist, no download)
# Both install missing system packages first (apt-get; needs root or sudo).

SHELL := /bin/bash
SWIFT ?= swift
APT_PACKAGES := ocl-icd-opencl-dev opencl-headers libclblast-dev libopenblas-dev pocl-opencl-icd clinfo \
                zlib1g-dev pkg-config mesa-opencl-icd libclc-15 libllvmspirvlib15 libopenmpi-dev openmpi-bin
RELEASE_FLAGS := -c release
TEST_FLAGS := -c release -Xswiftc -enable-testing
BIN := .build/release/jem-gpu

.PHONY: deps python-deps fashion-deps build test test-long test-portability gpu-check demo compare demo-fashion bench bench-compare clean

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# The checkpoint interoperability test loads our files with Python's safetensors + numpy.
# A dependency that cannot be installed stops the run here (the checks that need it would otherwise
# skip), with the reason.
python-deps:
	@python3 -c "import numpy, safetensors" 2>/dev/null || \
	  python3 -m pip install -q --disable-pip-version-check numpy safetensors 2>&1 | grep -v "WARNING: Running pip as" || true
	@python3 -c "import numpy, safetensors" || { \
	  echo "make: python3 cannot import numpy and safetensors, which the checkpoint and evaluation checks need (pip install numpy safetensors)"; exit 1; }

build: deps
	$(SWIFT) build $(RELEASE_FLAGS) --product jem-gpu

# Release build with testable imports: the numeric tests run 10-50x faster than in debug.
# The suite is XCTest only; the last line is the plain "N passed, N failed" count.
test: deps python-deps
	$(SWIFT) build $(TEST_FLAGS) --build-tests
	@set -o pipefail; $(SWIFT) test $(TEST_FLAGS) --skip-build --disable-swift-testing 2>&1 | tee .build/test.log
	@awk '/Executed [0-9]+ tests?, with/ { n = $$2; f = 0; k = 0; \
	       if (match($$0, /[0-9]+ failures?/)) f = substr($$0, RSTART, RLENGTH) + 0; \
	       if (match($$0, /[0-9]+ tests? skipped/)) k = substr($$0, RSTART, RLENGTH) + 0 } \
	     END { if (n == "") exit 1; printf "%d passed, %d failed, %d skipped\n", n - f - k, f, k }' .build/test.log

# The selftest and a short training run on every OpenCL device of PoCL, Mesa Rusticl (llvmpipe)
# and Intel's OpenCL CPU runtime (PyPI intel-opencl-rt), installed here on first use, registered in
# .build/portability/vendors (never /etc/OpenCL/vendors); one table at the end. About 10 minutes
# on 2 cores. (Rusticl's selftest also runs in `make test`, as PortabilityTests.)
test-portability: deps
	$(SWIFT) build $(RELEASE_FLAGS) --product jem-gpu
	scripts/test-portability.sh

# A self-contained bundle for a GPU machine without Swift (gpu-bundle/: static-stdlib jem-gpu and
# jem-bench, their non-glibc libraries, run-gpu-check.sh), then the check itself here, on PoCL as a
# stand-in device (scaled down; same JSON). On the GPU machine: ./gpu-bundle/run-gpu-check.sh
gpu-check: deps
	scripts/gpu-check.sh --run

# The long variants (fuzzing loops, kill tests) of the reliability suite.
test-long: deps python-deps
	JEM_TEST_LONG=1 $(SWIFT) test $(TEST_FLAGS) --disable-swift-testing

# The default preset on the built-in dataset, CPU backend: about 6 minutes on 2 cores.
demo: build
	$(BIN) train --backend auto --overwrite --out runs/demo
	$(BIN) eval --backend auto --model runs/demo/checkpoints/best.safetensors --out runs/demo/eval \
	  --ood synthetic:uniform --ood synthetic:interp --ood synthetic:permuted
	@echo "Results in runs/demo: metrics.jsonl, samples/*.png, checkpoints/, eval/metrics.json + plots"

# After training a JEM ($(1)) and its baseline ($(2)): calibrate both, measure the JEM's samples
# with the baseline as reference, and write the report ($(4)) with the OOD sets $(3).
define evaluate_pair
$(BIN) calibrate --backend auto --model $(1)/checkpoints/best.safetensors
$(BIN) calibrate --backend auto --model $(2)/checkpoints/best.safetensors
$(BIN) sample-quality --backend auto --model $(1)/checkpoints/best.safetensors \
  --reference $(2)/checkpoints/best.safetensors --n $(SAMPLE_QUALITY_N) --out $(1)/sample_quality
$(BIN) report --backend auto --reevaluate --run $(1) --baseline $(2) $(3) --out $(4)
@echo "Report in $(4) and $(basename $(4)).html"
endef

# A JEM and a cross-entropy baseline, both with the default preset on the built-in dataset
# (about 4 and 1 minutes on 2 cores), each temperature-calibrated on its validation split, the
# JEM's samples measured with the baseline as reference (conditional accuracy, FD, KID), and one
# page comparing them: accuracy, NLL, ECE raw and scaled, OOD AUROCs (the synthetic sets and the
# Fashion-MNIST test images, from Debian's dataset-fashion-mnist, installed here if missing),
# curves, reliability diagrams, samples. The report evaluates each run into its eval/.
DIGITS_OOD = --ood $(FASHION_DATA):fashion --ood synthetic:uniform --ood synthetic:interp --ood synthetic:permuted

compare: build fashion-deps
	$(BIN) fetch fashion-mnist $(FASHION_DATA)
	$(BIN) train --backend auto --overwrite --out runs/compare-jem
	$(BIN) train --backend auto --overwrite --mode baseline --out runs/compare-baseline
	$(call evaluate_pair,runs/compare-jem,runs/compare-baseline,$(DIGITS_OOD),runs/compare/report.md)

# Real data: a JEM and a cross-entropy baseline on the first FASHION_LIMIT Fashion-MNIST training
# images (default preset, 6 epochs: about 9 minutes of CPU for the JEM and 2 for the baseline on
# 2 cores, the setting of docs/training-defaults.md), each temperature-calibrated on its validation split, the JEM's
# samples measured with the baseline as reference (conditional accuracy, FD, KID), and the
# `make compare` report with the built-in digits and the synthetic sets as OOD sets.
# Fashion-MNIST comes from Debian's dataset-fashion-mnist package (installed here if missing):
# `jem-gpu fetch` copies it, checking the decompressed content, with no network.
FASHION_DATA := data/fashion-mnist
FASHION_LIMIT := 12000
FASHION_EPOCHS := 6
FASHION_FLAGS := --backend auto --overwrite --data $(FASHION_DATA) --train-limit $(FASHION_LIMIT) --epochs $(FASHION_EPOCHS)
FASHION_OOD := --ood builtin:digits --ood synthetic:uniform --ood synthetic:interp --ood synthetic:permuted
SAMPLE_QUALITY_N := 1000

fashion-deps:
	@dpkg-query -W -f='$${Status}' dataset-fashion-mnist 2>/dev/null | grep -q "install ok installed" || { \
	  echo "Installing system package: dataset-fashion-mnist"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null; }

demo-fashion: build fashion-deps
	$(BIN) fetch fashion-mnist $(FASHION_DATA)
	$(BIN) train $(FASHION_FLAGS) --out runs/fashion-jem
	$(BIN) train $(FASHION_FLAGS) --mode baseline --out runs/fashion-baseline
	$(call evaluate_pair,runs/fashion-jem,runs/fashion-baseline,$(FASHION_OOD),runs/fashion/report.md)

bench: deps
	$(SWIFT) build $(RELEASE_FLAGS) --product jem-bench
	.build/release/jem-bench --json bench.json

# Optional: one JEM iteration of our CPU backend against PyTorch, alternating runs, in one go
# (table + ratio, JSON in bench-compare.json). The first use makes a virtualenv with torch and numpy.
# A torch wheel in pip's find-links (e.g. a CPU-only build) is preferred, since PyPI's default wheel
# pulls ~3 GB of CUDA libraries; without one, pip fetches the default wheel from PyPI.
BENCH_VENV := .venv-bench
bench-compare: deps
	@test -x $(BENCH_VENV)/bin/python || python3 -m venv $(BENCH_VENV)
	@$(BENCH_VENV)/bin/python -c "import torch, numpy" 2>/dev/null || { \
	  $(BENCH_VENV)/bin/pip install -q --disable-pip-version-check --no-index --no-deps torch 2>/dev/null; \
	  $(BENCH_VENV)/bin/pip install -q --disable-pip-version-check torch numpy; }
	$(SWIFT) build $(RELEASE_FLAGS) --product jem-bench
	$(BENCH_VENV)/bin/python Benchmarks/torch/compare.py --jem-bench .build/release/jem-bench --json bench-compare.json

clean:
	rm -rf .build
