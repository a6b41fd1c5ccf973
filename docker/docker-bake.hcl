// Build matrix for the nnr-profile images: one target per CUDA line.
//
// Run from the repository root (contexts below are relative to the working directory):
//   docker buildx bake -f docker/docker-bake.hcl              # all images
//   docker buildx bake -f docker/docker-bake.hcl cuda12-8     # one image
//   VERSION=0.1.0 REGISTRY=ghcr.io/me/ docker buildx bake -f docker/docker-bake.hcl --push
// or simply docker/build.sh, which reads VERSION from pyproject.toml.
//
// Each target's tag is also passed as NNR_PROFILE_IMAGE, which the image stores in its
// environment so every trial's fingerprint names the image it ran in.
// VERSION must equal the version in pyproject.toml (tests/test_docker.py checks it).

variable "VERSION" {
  default = "0.1.0"
}

// Optional registry/namespace prefix, with a trailing slash, e.g. "ghcr.io/me/".
variable "REGISTRY" {
  default = ""
}

group "default" {
  targets = ["cuda11-8", "cuda12-6", "cuda12-8"]
}

target "_common" {
  context   = "."
  platforms = ["linux/amd64"]
  labels = {
    "org.opencontainers.image.version" = "${VERSION}"
  }
}

target "cuda11-8" {
  inherits   = ["_common"]
  dockerfile = "docker/cuda11.8.Dockerfile"
  tags       = ["${REGISTRY}nnr-profile:${VERSION}-cuda11.8"]
  args = {
    NNR_PROFILE_IMAGE = "${REGISTRY}nnr-profile:${VERSION}-cuda11.8"
  }
}

target "cuda12-6" {
  inherits   = ["_common"]
  dockerfile = "docker/cuda12.6.Dockerfile"
  tags       = ["${REGISTRY}nnr-profile:${VERSION}-cuda12.6"]
  args = {
    NNR_PROFILE_IMAGE = "${REGISTRY}nnr-profile:${VERSION}-cuda12.6"
  }
}

target "cuda12-8" {
  inherits   = ["_common"]
  dockerfile = "docker/cuda12.8.Dockerfile"
  tags       = ["${REGISTRY}nnr-profile:${VERSION}-cuda12.8"]
  args = {
    NNR_PROFILE_IMAGE = "${REGISTRY}nnr-profile:${VERSION}-cuda12.8"
  }
}
