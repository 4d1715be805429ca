#!/usr/bin/env bash
# Set up splitsim in ./.venv: Python >= 3.11, torch installed the safe way, then the project
# itself from its pyproject.toml (editable, with the dev, pretrained, ray, docs and nr extras).
#
# torch: an importable torch (in the venv or in the interpreter that makes it) is used as is.
# Otherwise a machine with an NVIDIA GPU gets the default wheel (with CUDA), and any other
# machine gets a CPU build: a locally available CPU wheel when pip resolves to one, else the
# PyTorch CPU index. CUDA wheels are never downloaded on a CPU machine.
#
# Re-running is cheap: the install step is skipped while pyproject.toml and setup.py are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_VERSION=${SPLITSIM_TORCH_VERSION:-2.13.0}
VENV=.venv
VPY="$VENV/bin/python"

log() { printf '[setup] %s\n' "$*" >&2; }

if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  log "Python >= 3.11 is required; $PYTHON is $("$PYTHON" -V 2>&1). Set PYTHON=/path/to/python3.11"
  exit 2
fi

if [ ! -x "$VPY" ]; then
  if "$PYTHON" -c 'import torch' >/dev/null 2>&1; then
    log "using the torch already installed for $PYTHON (venv with system site-packages)"
    "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    "$PYTHON" -m venv "$VENV"
  fi
fi

if "$VPY" -c 'import torch' >/dev/null 2>&1; then
  log "torch $("$VPY" -c 'import torch; print(torch.__version__)') already installed"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  log "NVIDIA GPU found: installing torch==$TORCH_VERSION with CUDA"
  "$VPY" -m pip install --quiet "torch==$TORCH_VERSION"
else
  report=$(mktemp)
  "$VPY" -m pip install --quiet --dry-run --ignore-installed --report "$report" "torch==$TORCH_VERSION" >/dev/null 2>&1 || true
  if [ -s "$report" ] && ! grep -q '"name": "nvidia-' "$report"; then
    log "no GPU: installing the CPU build of torch==$TORCH_VERSION that pip resolves to"
    "$VPY" -m pip install --quiet "torch==$TORCH_VERSION"
  else
    log "no GPU: installing torch==$TORCH_VERSION from the PyTorch CPU index"
    "$VPY" -m pip install --quiet "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu
  fi
  rm -f "$report"
fi

stamp="$VENV/.splitsim-install-stamp"
want=$(cat pyproject.toml setup.py | cksum)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing splitsim and its dependencies from pyproject.toml"
  "$VPY" -m pip install --quiet -e ".[dev,pretrained,ray,docs,nr]"
  printf '%s' "$want" > "$stamp"
fi
log "ready: $("$VENV/bin/splitsim" --version)"
