#!/usr/bin/env bash
# Set up, lint, and run the whole test suite (slow end-to-end tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install-nsys.sh
bash scripts/install-chromium.sh  # chromium for tests/reports/test_report_html.py (skipped without)
bash scripts/start-slurm.sh  # a one-node Slurm for tests/profiler/runner/test_cluster.py (skipped without)
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
