#!/usr/bin/env bash
# Build the nnr-profile images with docker buildx bake (docker/docker-bake.hcl).
#   docker/build.sh                 # every CUDA line
#   docker/build.sh cuda12-8        # one target; other arguments go to `bake` (--push, --print)
# VERSION defaults to the version in pyproject.toml; REGISTRY (e.g. ghcr.io/me/) is optional.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VERSION="${VERSION:-$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' pyproject.toml | head -n 1)}"
if [[ -z "${VERSION}" ]]; then
  echo "build.sh: no version found in pyproject.toml" >&2
  exit 1
fi
export VERSION
exec docker buildx bake -f docker/docker-bake.hcl "$@"
