#!/usr/bin/env bash
# Create .venv and install nnr-profile with PyTorch, TensorFlow (CPU builds), timm and the
# dev tools.
# GPU users: install the package with `pip install -e '.[all]'` to get their own CUDA builds.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" torch==2.14.1 torchvision==0.29.1 tensorflow-cpu==2.21.0
"${pip[@]}" -e '.[dev,timm,docs,jax]'
