#!/usr/bin/env bash
# Rewrite requirements.lock: every package that `pip install -e ".[test]"` installs, pinned, as the suite was last
# run with. pip-tools' pip-compile resolves it from pyproject.toml under constraints.txt (torch and torchvision: the
# builds on this project's machines' disk, with the nvidia-* wheels they pin), in a throwaway venv. Pins already in
# requirements.lock are kept wherever pyproject.toml still allows them; other flags go to pip-compile:
#   scripts/lock.sh                      add or drop what pyproject.toml added or dropped, nothing else moves
#   scripts/lock.sh --upgrade            the newest releases pyproject.toml and constraints.txt allow
#   scripts/lock.sh -c FREEZE.txt        the versions of an environment (`pip freeze`, its `-e` line removed)
# Then run the suite (scripts/test.sh) and commit the lock with it. It resolves for this Python (3.11, Linux x86_64).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
PIP_TOOLS="pip-tools==7.7.0"
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
"$PYTHON" -m venv "$tools"
"$tools/bin/python" -m pip install -q "$PIP_TOOLS"
# --strip-extras: pip refuses extras (ray[tune]) in a constraints file, which is what setup.sh makes of the lock.
CUSTOM_COMPILE_COMMAND="scripts/lock.sh" "$tools/bin/pip-compile" --quiet --extra test --strip-extras \
  --no-allow-unsafe --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
  -c constraints.txt --output-file requirements.lock "$@" pyproject.toml
