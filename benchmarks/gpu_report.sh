#!/usr/bin/env bash
# Every GPU benchmark in one run, one JSON report: the day a GPU is lent, the figures are one command away.
#
#   bash benchmarks/gpu_report.sh [REPORT.json]      # default: gpu_report.json; about 10 minutes on one H100
#   TPSEARCH_GPU_SEARCH=1 bash benchmarks/gpu_report.sh   # also time a 200-trial resnet_5m search (the 1-hour goal)
#
# Each benchmark's last line is JSON; the report holds them by name, with the GPU and the versions. Data: CIFAR-10
# when it is under data/ (nothing is downloaded here), else the synthetic 32x32 set of the same shape, which times
# the same work but ranks nothing (the report says which it used).
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
REPORT="${1:-gpu_report.json}"
export RAY_USAGE_STATS_ENABLED=0 PYTHONUNBUFFERED=1
DATASET=synthetic
[ -d data/cifar-10-batches-py ] || [ -f data/cifar-10-python.tar.gz ] && DATASET=cifar10
LOGS="$(mktemp -d)"

run() {  # run NAME COMMAND...: its output to LOGS/NAME.log, its last line to LOGS/NAME.json (or an error object)
  local name="$1"; shift
  echo "== $name: $*" >&2
  if "$@" >"$LOGS/$name.log" 2>&1; then
    tail -n 1 "$LOGS/$name.log" >"$LOGS/$name.json"
  else
    printf '{"error": "exit %s", "tail": %s}\n' "$?" "$(tail -n 5 "$LOGS/$name.log" | "$PY" -c 'import json,sys; print(json.dumps(sys.stdin.read()))')" >"$LOGS/$name.json"
  fi
  cat "$LOGS/$name.log" >&2
}

run train "$PY" benchmarks/bench_train.py --device cuda --batch-size 512 --epochs 5
run loader "$PY" benchmarks/bench_loader.py --device cuda --images 50000 --batch-size 512
run overhead "$PY" benchmarks/bench_overhead.py --trials 40 --concurrency 4
run latency "$PY" benchmarks/bench_latency.py --device cuda
[ -f benchmarks/bench_fidelity.py ] && run fidelity "$PY" benchmarks/bench_fidelity.py --dataset "$DATASET" --device cuda
run cuda_tests "$PY" -m pytest -q -m cuda -p no:cacheprovider --no-header -rA
if [ "${TPSEARCH_GPU_SEARCH:-0}" = 1 ]; then
  tmp="$(mktemp -d)"
  start=$(date +%s)
  run search .venv/bin/tpsearch run --space resnet_5m --trials 200 --dataset "$DATASET" --storage "sqlite:///$tmp/s.db" \
    --runs-dir "$tmp/runs" --gpus-per-trial 0.25 --no-progress --json
  echo "{\"seconds\": $(( $(date +%s) - start ))}" >"$LOGS/search_seconds.json"
fi

"$PY" - "$LOGS" "$REPORT" "$DATASET" <<'PY'
import json, pathlib, subprocess, sys
logs, report, dataset = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
out = {"dataset": dataset}
try:
    out["gpu"] = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True).stdout.strip()
except OSError:
    out["gpu"] = None
import torch
out["torch"], out["cuda"] = torch.__version__, torch.version.cuda
for path in sorted(logs.glob("*.json")):
    try:
        out[path.stem] = json.loads(path.read_text())
    except json.JSONDecodeError:
        out[path.stem] = {"last_line": path.read_text().strip()[-500:]}
pathlib.Path(report).write_text(json.dumps(out, indent=2) + "\n")
print(json.dumps(out))
PY
