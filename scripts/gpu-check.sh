#!/usr/bin/env bash
# GPU check, in under 8 minutes on one GPU: environment, calibrate fidelity with CUDA events,
# resnet50 default vs deterministic (100 iterations, 3 repeats), an nsys kernel capture with
# attribution, and `verify` on resnet18. Prints one table of what it measured, and leaves the
# store and reports under ${NNR_CHECK_DIR:-gpu-check}.
#   bash scripts/gpu-check.sh            # uses .venv when present, else the current python
set -uo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/nnr-profile ] && export PATH="$PWD/.venv/bin:$PATH"
out=${NNR_CHECK_DIR:-gpu-check}
gpu=${NNR_CHECK_GPU:-0}
mkdir -p "$out"
db="$out/nnr.db"
log="$out/check.log"
: > "$log"
step() {  # name, command...: run, log, remember the exit status
    local name=$1; shift
    local began=$SECONDS
    echo "== $name: $*" | tee -a "$log"
    timeout "${NNR_CHECK_STEP_TIMEOUT:-240}" "$@" >> "$log" 2>&1
    local rc=$?
    echo "$name rc=$rc seconds=$((SECONDS - began))" | tee -a "$log" "$out/steps.txt"
}
: > "$out/steps.txt"
step environment nnr-profile env --gpu "$gpu"
for overhead in 0 0.2 1.0; do
    step "calibrate-$overhead" nnr-profile run --model calibrate --workload-arg "overhead=$overhead" \
        --gpu "$gpu" --modes default,deterministic --iterations 100 --warmup 10 --repeats 3 \
        --db "$db"
done
step resnet50 nnr-profile run --model resnet50 --gpu "$gpu" --modes default,deterministic \
    --batch-size 64 --iterations 100 --warmup 10 --repeats 3 --db "$db"
step nsys-resnet50 nnr-profile run --model resnet50 --gpu "$gpu" --modes default,deterministic \
    --batch-size 64 --iterations 20 --warmup 5 --repeats 1 --collector timing,nsys --db "$db"
step verify-resnet18 nnr-profile verify --model resnet18 --gpu "$gpu" --batch-size 16 \
    --iterations 10 --json
step report nnr-profile report --db "$db" --out "$out/report"
python - "$out" <<'PY'
import sys
from pathlib import Path

import pandas as pd

out = Path(sys.argv[1])
print("\nsteps (exit status, seconds):")
print((out / "steps.txt").read_text())
overhead = out / "report" / "overhead.csv"
if overhead.exists():
    table = pd.read_csv(overhead)
    keep = [c for c in ("workload", "workload_args", "gpu_name", "baseline_mode", "mode",
                        "baseline_median_ms", "median_ms", "ratio", "overhead_pct",
                        "ci_low_pct", "ci_high_pct", "n_trials", "noisy") if c in table]
    table = table[table["baseline_mode"] == "default"][keep] if "baseline_mode" in table else table
    print(table.to_markdown(index=False, floatfmt=".2f"))
attribution = out / "report" / "attribution.csv"
if attribution.exists():
    rows = pd.read_csv(attribution)
    col = "delta_ms_per_iter"
    if col in rows:
        top = rows.reindex(rows[col].abs().sort_values(ascending=False).index).head(10)
        print("\ntop kernel deltas (deterministic vs default):")
        print(top.to_markdown(index=False, floatfmt=".4f"))
PY
grep -h '"reproducible"' "$log" | head -3
