#!/usr/bin/env bash
# The peers' Pythons for side_by_side.py, kept OUT of the TensorFlow environment (torch must not
# be importable there; TRL needs transformers 5, which has no TF classes). Offline: wheels come
# from local folders (this project's machine has /opt/wheels and /opt/pypi/files).
#   bash benchmarks/make_peer_envs.sh [PREFIX]      # default PREFIX: the folder above the checkout
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PREFIX="${1:-$(dirname "$(dirname "$HERE")")}"
WHEELS="${WHEELS:-/opt/wheels}"
PYPI="${PYPI:-/opt/pypi/files}"

# torch peer: plain PyTorch + the transformers 4.54 already installed for TF (system site packages)
python3 -m venv --system-site-packages "$PREFIX/torchenv"
"$PREFIX/torchenv/bin/pip" install --no-index --no-deps "$WHEELS"/torch-2.13.0*.whl \
    "$PYPI"/typing_extensions-4.16.0-py3-none-any.whl  # torch 2.13 needs typing_extensions >= 4.10

# TRL peer: an isolated environment (TRL 1.13 resolves transformers 5.17, accelerate, datasets)
python3 -m venv "$PREFIX/trlenv"
"$PREFIX/trlenv/bin/pip" install --no-index --find-links "$PYPI" --find-links "$WHEELS" torch==2.13.0 trl==1.13.0

echo "TORCH_PYTHON=$PREFIX/torchenv/bin/python TRL_PYTHON=$PREFIX/trlenv/bin/python python benchmarks/side_by_side.py"
