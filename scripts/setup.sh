#!/usr/bin/env bash
# Create .venv and install tpsearch with its test tools at the versions the suite passes with: requirements.lock
# (pip constraints, written by scripts/lock.sh) pins every dependency, torch and torchvision at the builds on this
# project's machines' disk among them; pyproject.toml keeps its ranges open for users, who need not use the lock.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q -c requirements.lock -e ".[test]"
