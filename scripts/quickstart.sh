#!/usr/bin/env bash
# Set up and run the main job on an embedded default that works offline: the resnet_5m space on the 8x8 digits
# that ship with scikit-learn, local Ray, SQLite studies.db. Extra flags go to `tpsearch run`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export RAY_USAGE_STATS_ENABLED=0
.venv/bin/tpsearch run --space resnet_5m --dataset digits --trials 20 --epochs 8 --max-params 200000 \
  --train-images 512 --reproducible "$@"
.venv/bin/tpsearch status --study resnet_5m-digits
