#!/usr/bin/env bash
# Create .venv and install tpsearch with its test tools. torch/torchvision are pinned by constraints.txt to the
# builds that lie on this project's machines; elsewhere delete that file's pins or pass your own constraints.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q -c constraints.txt -e ".[test]"
