#!/usr/bin/env bash
# Create ./.venv with memtsm and the torch build that fits this machine.
#
#   ./install.sh                      # CPU build of torch without an NVIDIA GPU, CUDA build with one
#   MEMTSM_TORCH=cpu ./install.sh     # force a build: cpu | cuda
#   MEMTSM_EXTRAS=dev,dali-cuda130 ./install.sh   # extras of memtsm to install (default: dev)
#
# Why: on PyPI, `torch` is the CUDA build (several GB); the CPU build lives on PyTorch's CPU index
# as 2.13.0+cpu. With that index added, pip prefers the +cpu build (a local version sorts above
# the plain one); without it pip takes PyPI's CUDA build. A machine that already has a torch wheel
# on disk (pip's find-links) takes that file either way.
set -euo pipefail
cd "$(dirname "$0")"

TORCH_VERSION=2.13.0
CPU_INDEX=https://download.pytorch.org/whl/cpu
PYTHON=${PYTHON:-python3}
EXTRAS=${MEMTSM_EXTRAS:-dev}
BUILD=${MEMTSM_TORCH:-}
if [[ -z "$BUILD" ]]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        BUILD=cuda
    else
        BUILD=cpu
    fi
fi

case "$BUILD" in
    cpu|cuda) ;;
    *) echo "install.sh: MEMTSM_TORCH must be cpu or cuda, got '$BUILD'" >&2; exit 2 ;;
esac

"$PYTHON" -m venv .venv
case "$BUILD" in
    cpu)
        echo "install.sh: no NVIDIA GPU (or MEMTSM_TORCH=cpu): the CPU build of torch $TORCH_VERSION"
        # --retries 1: where the CPU index is unreachable (offline mirrors), fall back quickly
        .venv/bin/pip install --retries 1 --extra-index-url "$CPU_INDEX" "torch==$TORCH_VERSION" ;;
    cuda)
        echo "install.sh: NVIDIA GPU (or MEMTSM_TORCH=cuda): the CUDA build of torch $TORCH_VERSION"
        .venv/bin/pip install "torch==$TORCH_VERSION" ;;
esac
.venv/bin/pip install -e ".[$EXTRAS]"
.venv/bin/python -c "import torch; print('install.sh: torch', torch.__version__, '| CUDA', torch.version.cuda or 'none')"
