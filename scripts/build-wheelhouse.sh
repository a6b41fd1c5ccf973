#!/usr/bin/env bash
# Download into ${NNR_WHEELHOUSE:-.whl}/ (git-ignored) the wheels of nnr-profile's
# dependencies that the borrowed GPU machine's image lacks (Python 3.12, x86-64 manylinux, no
# network there); carry .whl with the tree: scripts/gpu-check.sh installs them offline.
#   bash scripts/build-wheelhouse.sh     # NNR_DEVICE_MISSING overrides the package names
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
[ -x "$python" ] || python=python3
missing=${NNR_DEVICE_MISSING:-orjson ijson submitit nvtx}
# the version ranges are pyproject.toml's, so the wheelhouse never drifts from the package
mapfile -t requirements < <("$python" - "$missing" <<'PY'
import re
import sys
import tomllib

wanted = set(sys.argv[1].split())
with open("pyproject.toml", "rb") as handle:
    dependencies = tomllib.load(handle)["project"]["dependencies"]
for requirement in dependencies:
    name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()
    if name in wanted:
        print(requirement)
PY
)
dest=${NNR_WHEELHOUSE:-.whl}
rm -rf "$dest"
mkdir -p "$dest"
platforms=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1; do
    platforms+=(--platform "${tag}_x86_64")
done
"$python" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp "${platforms[@]}" -d "$dest" "${requirements[@]}"
ls "$dest"
