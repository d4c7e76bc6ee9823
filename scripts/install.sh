#!/usr/bin/env bash
# Install polytask and its dependencies into a virtual environment (default: .venv).
#
# PyTorch: on a machine with an NVIDIA GPU, the default (CUDA) build from PyPI; on any other
# machine, the CPU build — never the several GB of CUDA wheels an unpinned install would pull.
# Safe to run again: what is installed already is kept.
#
#   bash scripts/install.sh            # then: .venv/bin/polytask --help
#   VENV=/path/to/env bash scripts/install.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }

if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "NVIDIA GPU found: installing torch==$TORCH_VERSION (CUDA build)"
    pip install "torch==$TORCH_VERSION"
  else
    echo "no GPU: installing the CPU build of torch==$TORCH_VERSION"
    # A CPU wheel the local pip configuration provides (torch==X+cpu), else PyTorch's CPU index.
    pip install "torch==$TORCH_VERSION+cpu" \
      || pip install "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu \
           --extra-index-url https://pypi.org/simple
  fi
fi

# torch is installed by now, so this resolves everything else without touching it.
pip install -e ".[dev]"
"$VENV/bin/python" -c "import torch, polytask; print(f'polytask {polytask.__version__} with torch {torch.__version__} (CUDA: {torch.cuda.is_available()}) in $VENV')"
