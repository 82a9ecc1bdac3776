#!/usr/bin/env bash
# make test-portability: the selftest and a short training run on every OpenCL device of every
# implementation this machine can have without a GPU: PoCL, Mesa Rusticl (llvmpipe) and Intel's
# OpenCL CPU runtime (installed by scripts/opencl-implementations.sh into .build/portability, with
# an ICD vendors folder of our own: /etc/OpenCL/vendors is never written to). One table at the end:
# implementation, device, ops passed, worst error, iteration time. Logs in .build/portability/results.
# Exit status 1 when any selftest or training run fails.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${JEM_GPU_BIN:-.build/release/jem-gpu}
TRAIN_ITERATIONS=${PORTABILITY_TRAIN_ITERATIONS:-3}
RESULTS=.build/portability/results
rm -rf "$RESULTS"; mkdir -p "$RESULTS"
VENDORS=$(scripts/opencl-implementations.sh | tail -1)
export OCL_ICD_VENDORS=$VENDORS RUSTICL_ENABLE=llvmpipe
export JEM_GPU_CACHE_DIR=$PWD/.build/portability/cache
echo "ICD vendors folder: $VENDORS"; cat "$VENDORS"/*.icd
"$BIN" devices | tee "$RESULTS/devices.txt"
"$BIN" devices --json > "$RESULTS/devices.json" || { echo "no OpenCL device found"; exit 1; }
count=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))))" "$RESULTS/devices.json")
status=0
rows=()
for ((i = 0; i < count; i++)); do
  read -r platform device < <(python3 -c "import json,sys; d=json.load(open(sys.argv[1]))[int(sys.argv[2])]; print(d['platform'].replace(' ','_'), d['name'].replace(' ','_'))" "$RESULTS/devices.json" $i)
  echo; echo "== #$i ${platform//_/ }: ${device//_/ }"
  timeout -s KILL 1200 "$BIN" selftest --backend opencl --device $i > "$RESULTS/selftest-$i.txt" 2>&1
  st=$?
  summary=$(tail -1 "$RESULTS/selftest-$i.txt")
  echo "selftest: $summary (exit $st)"
  passed=$(echo "$summary" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1\/\2/p' | awk -F/ '{print $1 "/" $1+$2}')
  worst=$(echo "$summary" | sed -n 's/.*worst relative error \([^,]*\),.*/\1/p')
  [ $st -ne 0 ] && { status=1; [ -z "$passed" ] && passed="error: $(grep -m1 -i error "$RESULTS/selftest-$i.txt" | cut -c1-60)"; }
  # A short run of the default preset on the built-in data (batch 16, 2 SGLD steps, no final
  # samples, 64 validation and 64 test images: the evaluation at the end stays short on slow devices).
  timeout -s KILL 1200 "$BIN" train --backend opencl --device $i --max-iterations $TRAIN_ITERATIONS --batch-size 16 \
    --sgld-steps 2 --final-sample-steps 0 --valid 64 --builtin-test 64 --out "$RESULTS/train-$i" --overwrite > "$RESULTS/train-$i.txt" 2>&1
  tr=$?
  rate=$(grep -o "[0-9.]* it/s" "$RESULTS/train-$i.txt" | tail -1 | awk '{print $1}')
  if [ $tr -eq 0 ] && [ -n "$rate" ]; then
    iteration=$(awk -v r="$rate" 'BEGIN { if (r > 0) printf "%.2f s", 1 / r; else print "?" }')
  else
    iteration="train failed (exit $tr)"; status=1
  fi
  echo "train: $iteration per iteration ($TRAIN_ITERATIONS iterations, first-use kernel builds included)"
  rows+=("${platform//_/ }|${device//_/ }|${passed:-?}|${worst:-?}|$iteration")
done
echo
echo "Portability ($(date -u +%Y-%m-%d), $(nproc) cores; iteration: wrn-10-1, batch 16, 2 SGLD steps, mean over $TRAIN_ITERATIONS iterations incl. kernel builds)"
{
  echo "implementation|device|ops passed|worst error|iteration time"
  echo "---|---|---|---|---"
  printf '%s\n' "${rows[@]}"
} | column -t -s '|' | tee "$RESULTS/table.txt"
exit $status
