# syntax=docker/dockerfile:1
#
# bertscope image. CPU by default:
#
#   docker build -t bertscope:cpu .
#
# For NVIDIA GPUs, swap the base image for a CUDA runtime and pull torch from a CUDA wheel index:
#
#   docker build -t bertscope:gpu \
#     --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
#   docker run --gpus all -p 8000:8000 -e BERTSCOPE_DEVICE=cuda bertscope:gpu
#
# CUDA base images ship without Python; the first RUN step installs python3 + venv from apt when needed.
# Everything is installed into a virtualenv at /opt/venv (Ubuntu 24.04's system Python is
# "externally managed", so pip refuses to install into it directly).

ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG TORCH_SPEC="torch==2.13.0"
# extras installed with bertscope: "ray" lets the same image serve as the app and as Ray head or worker
ARG EXTRAS=ray
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# Python for base images that lack it (e.g. nvidia/cuda:*). python:*-slim already has it, so this is a no-op there.
RUN if ! command -v python3 >/dev/null 2>&1 || ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            python3 python3-venv python3-pip ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# torch first, from the chosen index (CPU or CUDA wheels), so `pip install .` finds it already satisfied
# and does not pull the default (CUDA-bundled) wheel from PyPI.
RUN pip install --no-cache-dir --upgrade pip \
    && pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "${TORCH_SPEC}"

COPY pyproject.toml README.md /src/
COPY app/ /src/app/
COPY templates/ /src/templates/
COPY static/ /src/static/
RUN pip install --no-cache-dir "/src[${EXTRAS}]" && rm -rf /src

# Unprivileged runtime user (no fixed UID: ubuntu-based CUDA images already use 1000 for "ubuntu").
RUN useradd --create-home --shell /usr/sbin/nologin bertscope
USER bertscope
WORKDIR /home/bertscope

# NUMBA_CACHE_DIR: the neuron index's compiled CPU kernel is cached there (site-packages is read-only).
# MALLOC_ARENA_MAX=2: fewer glibc arenas for the server's many request threads keeps resident memory flat
# under concurrent load (bench/load.py: +85 MiB instead of +145 MiB over the last three quarters of 1,200 requests).
ENV BERTSCOPE_HOST=0.0.0.0 \
    BERTSCOPE_PORT=8000 \
    MALLOC_ARENA_MAX=2 \
    HF_HUB_OFFLINE=1 \
    HF_HOME=/home/bertscope/.cache/huggingface \
    NUMBA_CACHE_DIR=/home/bertscope/.cache/numba

EXPOSE 8000

# The model loads at startup, hence the generous start period.
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=5)"]

CMD ["bertscope", "serve"]
