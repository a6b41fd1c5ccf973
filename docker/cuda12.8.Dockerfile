# syntax=docker/dockerfile:1
# nnr-profile on CUDA 12.8 + cuDNN 9: Hopper (sm_90) and Blackwell (sm_100, sm_120),
# also fine for Ampere and Ada. Minimum Linux driver 570.124.06.
# Versions here must match the "cuda12.8" entry of docker/compat.json
# (tests/test_docker.py checks this; docker/check_image.py checks the built image).
#
# Build from the repository root (the build context must be the repo):
#   docker build -f docker/cuda12.8.Dockerfile -t nnr-profile:0.1.0-cuda12.8 .
# or all images at once: docker/build.sh
FROM nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04

# The tag this image is built as; docker/docker-bake.hcl passes the real one.
# The environment fingerprint of every trial records it.
ARG NNR_PROFILE_IMAGE=nnr-profile:0.1.0-cuda12.8
# UID of the unprivileged user; match it to the host user that owns the results folder.
ARG NNR_UID=1000
ARG DEBIAN_FRONTEND=noninteractive

LABEL org.opencontainers.image.title="nnr-profile (CUDA 12.8)" \
      org.opencontainers.image.description="Measure the cost of deterministic GPU training (PyTorch, TensorFlow) on CUDA 12.8" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV NNR_PROFILE_IMAGE=${NNR_PROFILE_IMAGE} \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH} \
    LD_LIBRARY_PATH=/usr/local/cuda/extras/CUPTI/lib64:${LD_LIBRARY_PATH} \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Python and Nsight Systems. nsys comes from NVIDIA's CUDA apt repository, which the base
# image already configures and trusts; cuda-nsight-systems-12-8 pins the nsys release that
# ships with CUDA 12.8 (nsight-systems-cli lives in NVIDIA's separate devtools repo).
# Ubuntu 24.04 images have a default "ubuntu" user on UID 1000; it makes room for "nnr".
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates \
      python3 \
      python3-venv \
      cuda-nsight-systems-12-8 \
 && rm -rf /var/lib/apt/lists/* \
 && if ! command -v nsys >/dev/null; then \
      ln -s "$(find /opt/nvidia/nsight-systems /usr/local/cuda/ -path '*/bin/nsys' -type f | sort -V | tail -n 1)" /usr/local/bin/nsys; \
    fi \
 && nsys --version \
 && if id ubuntu >/dev/null 2>&1; then userdel --remove ubuntu; fi \
 && if getent group ubuntu >/dev/null; then groupdel ubuntu; fi \
 && groupadd --gid "${NNR_UID}" nnr \
 && useradd --create-home --uid "${NNR_UID}" --gid "${NNR_UID}" --shell /bin/bash nnr \
 && python3 -m venv "${VIRTUAL_ENV}" \
 && pip install --no-cache-dir pip==25.1.1

WORKDIR /opt/nnr-profile

# The CUDA 12.8 build of PyTorch from the PyTorch wheel index first, then TensorFlow (built
# against CUDA 12.5 / cuDNN 9.3; it uses this image's CUDA 12.8 / cuDNN 9 libraries through
# CUDA minor-version compatibility). Re-stating the torch pins keeps pip from replacing the
# CUDA build with the PyPI one.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cu128 \
      torch==2.9.1+cu128 \
      torchvision==0.24.1+cu128 \
 && pip install --no-cache-dir \
      tensorflow==2.20.0 \
      keras==3.11.3 \
      torch==2.9.1+cu128 \
      torchvision==0.24.1+cu128

# This package, last, so that code changes do not rebuild the framework layer.
COPY . /opt/nnr-profile/src
RUN pip install --no-cache-dir \
      "/opt/nnr-profile/src[all]" \
      tensorflow==2.20.0 \
      keras==3.11.3 \
      torch==2.9.1+cu128 \
      torchvision==0.24.1+cu128 \
 && python /opt/nnr-profile/src/docker/check_image.py --cuda 12.8 \
 && install -d -o nnr -g nnr /work/nnr-results

WORKDIR /work
USER ${NNR_UID}:${NNR_UID}

ENTRYPOINT ["nnr-profile"]
CMD ["--help"]
