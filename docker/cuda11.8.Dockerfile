# syntax=docker/dockerfile:1
# nnr-profile on CUDA 11.8 + cuDNN 8: Pascal, Volta, Turing and Ampere (sm_60 to sm_86),
# the generations of the original study. Ships nvprof (legacy GPUs, compute capability
# below 8.0) as well as nsys. Minimum Linux driver 520.61.05.
# Versions here must match the "cuda11.8" entry of docker/compat.json
# (tests/test_docker.py checks this; docker/check_image.py checks the built image).
#
# Build from the repository root (the build context must be the repo):
#   docker build -f docker/cuda11.8.Dockerfile -t nnr-profile:0.1.0-cuda11.8 .
# or all images at once: docker/build.sh
FROM nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04

# The tag this image is built as; docker/docker-bake.hcl passes the real one.
# The environment fingerprint of every trial records it.
ARG NNR_PROFILE_IMAGE=nnr-profile:0.1.0-cuda11.8
# UID of the unprivileged user; match it to the host user that owns the results folder.
ARG NNR_UID=1000
ARG DEBIAN_FRONTEND=noninteractive

LABEL org.opencontainers.image.title="nnr-profile (CUDA 11.8)" \
      org.opencontainers.image.description="Measure the cost of deterministic GPU training (PyTorch, TensorFlow) on CUDA 11.8" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV NNR_PROFILE_IMAGE=${NNR_PROFILE_IMAGE} \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH} \
    LD_LIBRARY_PATH=/usr/local/cuda/extras/CUPTI/lib64:${LD_LIBRARY_PATH} \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Python and Nsight Systems. nsys comes from NVIDIA's CUDA apt repository, which the base
# image already configures and trusts; cuda-nsight-systems-11-8 pins the nsys release that
# ships with CUDA 11.8 (nsight-systems-cli lives in NVIDIA's separate devtools repo).
# nvprof is part of the devel base image (cuda-nvprof-11-8); the check below fails the
# build if it is missing.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates \
      python3 \
      python3-venv \
      cuda-nsight-systems-11-8 \
 && rm -rf /var/lib/apt/lists/* \
 && if ! command -v nsys >/dev/null; then \
      ln -s "$(find /opt/nvidia/nsight-systems /usr/local/cuda/ -path '*/bin/nsys' -type f | sort -V | tail -n 1)" /usr/local/bin/nsys; \
    fi \
 && nsys --version \
 && test -x /usr/local/cuda/bin/nvprof \
 && if id ubuntu >/dev/null 2>&1; then userdel --remove ubuntu; fi \
 && if getent group ubuntu >/dev/null; then groupdel ubuntu; fi \
 && groupadd --gid "${NNR_UID}" nnr \
 && useradd --create-home --uid "${NNR_UID}" --gid "${NNR_UID}" --shell /bin/bash nnr \
 && python3 -m venv "${VIRTUAL_ENV}" \
 && pip install --no-cache-dir pip==25.1.1

WORKDIR /opt/nnr-profile

# The CUDA 11.8 build of PyTorch from the PyTorch wheel index first (2.7 is the last
# release with cu118 wheels), then TensorFlow 2.14, the last release built against
# CUDA 11.8 / cuDNN 8.7; it uses this image's CUDA 11.8 / cuDNN 8 libraries.
# Re-stating the torch pins keeps pip from replacing the CUDA build with the PyPI one.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cu118 \
      torch==2.7.1+cu118 \
      torchvision==0.22.1+cu118 \
 && pip install --no-cache-dir \
      tensorflow==2.14.1 \
      keras==2.14.0 \
      torch==2.7.1+cu118 \
      torchvision==0.22.1+cu118

# This package, last, so that code changes do not rebuild the framework layer.
# [torch] and not [all]: the [tf] extra asks for tensorflow>=2.16 (CUDA 12), which this
# CUDA 11.8 image cannot run; TensorFlow 2.14.1 is pinned explicitly instead.
COPY . /opt/nnr-profile/src
RUN pip install --no-cache-dir \
      "/opt/nnr-profile/src[torch]" \
      tensorflow==2.14.1 \
      keras==2.14.0 \
      torch==2.7.1+cu118 \
      torchvision==0.22.1+cu118 \
 && python /opt/nnr-profile/src/docker/check_image.py --cuda 11.8 \
 && install -d -o nnr -g nnr /work/nnr-results

WORKDIR /work
USER ${NNR_UID}:${NNR_UID}

ENTRYPOINT ["nnr-profile"]
CMD ["--help"]
