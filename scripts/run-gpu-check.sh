#!/usr/bin/env bash
# The GPU check, run from the bundle `make gpu-check` builds (jem-gpu, jem-bench and their
# libraries in this folder). Needs only the vendor's OpenCL driver: bash, coreutils, awk, sed.
#   1. jem-gpu devices          (finds the vendor ICD; writes one of its own if none is registered)
#   2. selftest on the first GPU (every op against the CPU backend)
#   3. jem-gpu tune              (wrn-28-10, batch 64: convolution autotuning, winners cached)
#   4. jem-bench for wrn-28-10 and wrn-10-2 at batch 64: forward, SGLD step, training pass, JEM
#      iteration (each checked against the CPU backend first), peak device memory (nvidia-smi)
#   5. a 200-iteration JEM run on the built-in data with --backend opencl
# All into one JSON (gpu-check-results/gpu-check.json) with targets beside the figures.
# Without a GPU (e.g. PoCL here) it runs scaled down (wrn-16-2 / wrn-10-1, batch 8, 20 iterations)
# with the same JSON shape; --full forces the GPU sizes, --scaled the small ones.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${GPU_CHECK_OUT:-$PWD/gpu-check-results}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$HERE${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export JEM_GPU_CACHE_DIR=${JEM_GPU_CACHE_DIR:-$OUT/cache}
JEM="$HERE/jem-gpu"; BENCH="$HERE/jem-bench"
started=$(date +%s)
log() { echo "[$(( $(date +%s) - started )) s] $*"; }

# 1. The OpenCL driver: the registered ICDs, else the NVIDIA library wherever it is.
if [ -z "${OCL_ICD_VENDORS:-}" ] && ! "$JEM" devices >/dev/null 2>&1; then
  lib=$(find / -xdev \( -name 'libnvidia-opencl.so.1' -o -name 'libamdocl64.so' -o -name 'libintelocl.so' \) 2>/dev/null | head -1)
  if [ -n "$lib" ]; then
    mkdir -p "$OUT/icd"; echo "$lib" > "$OUT/icd/vendor.icd"; export OCL_ICD_VENDORS="$OUT/icd"
    log "no registered OpenCL driver worked; using $lib through $OUT/icd"
  fi
fi
log "jem-gpu devices"
"$JEM" devices | tee "$OUT/devices.txt"
"$JEM" devices --json > "$OUT/devices.json" 2> "$OUT/devices.err" || {
  echo "no OpenCL device: $(cat "$OUT/devices.err")"
  { echo "{\"error\": \"no OpenCL device\", \"detail\": \"$(tr -d '"\n' < "$OUT/devices.err")\"}"; } > "$OUT/gpu-check.json"
  exit 1
}
gpu=$(grep -c '"is_gpu" : true' "$OUT/devices.json")
mode=${1:-auto}
if [ "$mode" = "--full" ] || { [ "$mode" = "auto" ] && [ "$gpu" -gt 0 ]; }; then
  scaled=false; BIG=wrn-28-10; SMALL=wrn-10-2; BATCH=64; ITER=200; RUNS=5; MRUNS=""; TRAIN_EXTRA=""
else
  # A CPU stand-in: smaller models, batch and run (no final 100-step samples, 500 test images).
  scaled=true; BIG=wrn-16-2; SMALL=wrn-10-1; BATCH=8; ITER=20; RUNS=2; MRUNS="--quick"
  TRAIN_EXTRA="--final-sample-steps 0 --builtin-test 500"
fi
DEVICE=auto   # the first GPU, else the first device
log "device: $("$JEM" devices --json | awk '/"auto" : true/ {a=1} a && /"name"/ {sub(/.*"name" : "/, ""); sub(/",?$/, ""); print; exit}'), scaled=$scaled"

# 2. Selftest.
log "selftest"
"$JEM" selftest --backend opencl --device $DEVICE > "$OUT/selftest.txt" 2>&1; selftest_status=$?
selftest_summary=$(tail -1 "$OUT/selftest.txt")
log "selftest: $selftest_summary"

# 3. Tuning (timed).
log "tune $BIG batch $BATCH"
"$JEM" tune --backend opencl --device $DEVICE --model $BIG --batch-size $BATCH > "$OUT/tune.txt" 2> "$OUT/tune.err"
tune_status=$?
tune_seconds=$(sed -n 's/^Time spent tuning: \([0-9.]*\) s.*/\1/p' "$OUT/tune.txt")
log "tune: ${tune_seconds:-?} s (exit $tune_status)"

# 4. Benchmarks, with device memory sampled by nvidia-smi where there is one.
peak_file="$OUT/peak-mib"; echo 0 > "$peak_file"
if command -v nvidia-smi >/dev/null; then
  ( peak=0; while true; do
      used=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -1 | tr -d ' ')
      [ -n "$used" ] && [ "$used" -gt "$peak" ] && { peak=$used; echo $peak > "$peak_file"; }
      sleep 0.5; done ) & sampler=$!
fi
for model in $BIG $SMALL; do
  log "jem-bench $model batch $BATCH"
  "$BENCH" --backend opencl --device $DEVICE --model $model --batch $BATCH --filter "$model" --iterations $RUNS $MRUNS \
    --json "$OUT/bench-$model.json" > "$OUT/bench-$model.txt" 2>&1 || log "jem-bench $model failed (see bench-$model.txt)"
done
[ -n "${sampler:-}" ] && kill $sampler 2>/dev/null
peak_mib=$(cat "$peak_file")
command -v nvidia-smi >/dev/null || peak_mib=null

# 5. Training run.
log "train $ITER iterations"
"$JEM" train --backend opencl --device $DEVICE --max-iterations $ITER $TRAIN_EXTRA --out "$OUT/train" --overwrite \
  > "$OUT/train.txt" 2>&1; train_status=$?
train_rate=$(grep -o "[0-9.]* it/s" "$OUT/train.txt" | tail -1 | awk '{print $1}')
log "train: ${train_rate:-?} it/s (exit $train_status)"

# Figures from the bench tables ("name   <median> s (min ...").
median() { awk -v key="$2" 'index($0, key) == 1 { for (i = 1; i < NF; i++) if ($(i + 1) == "s") { print $i; exit } }' "$OUT/bench-$1.txt"; }
num() { [ -n "$1" ] && echo "$1" || echo null; }
figures() {
  local m=$1
  echo "    \"$m\": {\"forward_s\": $(num "$(median $m "model/forward $m")"), \"sgld_step_s\": $(num "$(median $m "sampling/sgld_step $m")"), \"training_pass_s\": $(num "$(median $m "model/training_pass $m")"), \"jem_iteration_s\": $(num "$(median $m "model/jem_iteration $m")"), \"checks_failed\": $(grep -c 'FAIL: not timed' "$OUT/bench-$m.txt")}"
}
jem_big=$(median $BIG "model/jem_iteration $BIG")
met=$(awk -v t="${jem_big:-}" 'BEGIN { if (t == "") print "null"; else print (t <= 0.5 ? "true" : "false") }')
elapsed=$(( $(date +%s) - started ))
esc() { tr -d '"\\' | tr '\n' ' '; }
cat > "$OUT/gpu-check.json" <<JSON
{
  "scaled_down": $scaled,
  "device": "$(head -1 "$OUT/selftest.txt" | sed 's/^Backend: //' | esc)",
  "devices": $(cat "$OUT/devices.json"),
  "selftest": {"exit_status": $selftest_status, "summary": "$(echo "$selftest_summary" | esc)"},
  "tune": {"model": "$BIG", "batch": $BATCH, "exit_status": $tune_status, "seconds_tuning": $(num "$tune_seconds")},
  "bench": {
    "batch": $BATCH,
$(figures $BIG),
$(figures $SMALL),
    "peak_device_memory_mib": $peak_mib
  },
  "train": {"iterations": $ITER, "flags": "$TRAIN_EXTRA", "exit_status": $train_status, "iterations_per_second": $(num "$train_rate")},
  "targets": {
    "$BIG jem_iteration_s": {"measured": $(num "$jem_big"), "target": 0.5, "applies_to": "wrn-28-10, batch 64, on an H100/H200-class GPU", "met": $met, "scaled_down_run": $scaled}
  },
  "wall_seconds": $elapsed
}
JSON
log "wrote $OUT/gpu-check.json"
cat "$OUT/gpu-check.json"
