#!/usr/bin/env bash
# Set up, run a small sweep on whatever device exists (every GPU, else the CPU), write the report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
nnr-profile list
nnr-profile run --model smallcnn,resnet18,calibrate --gpu all --modes default,deterministic \
    --batch-size 16 --image-size 64 --iterations 20 --warmup 5 --repeats 3
nnr-profile report --out nnr-results/report
