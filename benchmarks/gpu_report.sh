#!/usr/bin/env bash
# Every GPU benchmark in one run, one JSON report: the day a GPU is lent, the figures are one command away.
#
#   bash benchmarks/gpu_report.sh [REPORT.json]      # default: gpu_report.json; about 10 minutes on one H100
#   TPSEARCH_GPU_SEARCH=1 bash benchmarks/gpu_report.sh   # also time a 200-trial resnet_5m search (the 1-hour goal)
#
# Each benchmark's last line is JSON; the report holds them by name, with the GPU and the versions. A benchmark
# that fails (an error, or a claim of its own that did not hold: each exits 1 then) is recorded as an error object
# and the others still run; the report then names the failed steps under "failed", and the script exits 1 once it
# is written. Anything else that fails stops the script at once.
# Data: CIFAR-10 when it is under data/ (nothing is downloaded here). Without it the search runs on a stand-in of
# CIFAR-10's size and format (benchmarks/cifar_standin.py: 45,000 training and 5,000 validation 32x32 images,
# generated), which costs the same GPU time and ranks nothing; the fidelity benchmark, which needs rankings that
# mean something, then runs on synthetic-hard. The report says which data each used.
#
# Knobs (for a smoke run on a CPU): TPSEARCH_GPU_BENCHES (the benchmarks to run, space-separated; default all),
# TPSEARCH_GPU_TRIALS (default 200), TPSEARCH_GPU_SEARCH_ARGS (extra `tpsearch run` flags), TPSEARCH_STANDIN_SIZE
# (the stand-in's images; default CIFAR-10's 50,000), TPSEARCH_GPU_DEVICE (default cuda).
set -euo pipefail
case "${1:-}" in  # the one argument is the report's path: `--help` must not name a report and start the run
  -h|--help)
    echo "usage: bash benchmarks/gpu_report.sh [REPORT.json]"
    sed -n '2,/^set /{/^#/s/^# \{0,1\}//p}' "$0"  # the comment above
    exit 0 ;;
  -*) echo "gpu_report.sh: no option $1 (usage: bash benchmarks/gpu_report.sh [REPORT.json])" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
REPORT="${1:-gpu_report.json}"
DEVICE="${TPSEARCH_GPU_DEVICE:-cuda}"
BENCHES="${TPSEARCH_GPU_BENCHES-train loader overhead latency fidelity cuda_tests}"
export RAY_USAGE_STATS_ENABLED=0 PYTHONUNBUFFERED=1
LOGS="$(mktemp -d)"
FAILED=()  # the steps that exited non-zero, for the report and the exit status
if [ -d data/cifar-10-batches-py ] || [ -f data/cifar-10-python.tar.gz ]; then
  DATASET=cifar10 DATA_DIR=data FIDELITY_DATASET=cifar10
else
  DATASET=cifar10-standin DATA_DIR="$LOGS/standin" FIDELITY_DATASET=synthetic-hard
fi

run() {  # run NAME COMMAND...: its output to LOGS/NAME.log, its last line to LOGS/NAME.json (or an error object)
  local name="$1" code=0; shift
  echo "== $name: $*" >&2
  "$@" >"$LOGS/$name.log" 2>&1 || code=$?
  if [ "$code" = 0 ]; then
    tail -n 1 "$LOGS/$name.log" >"$LOGS/$name.json"
  else
    FAILED+=("$name")
    printf '{"error": "exit %s", "tail": %s}\n' "$code" "$(tail -n 5 "$LOGS/$name.log" | "$PY" -c 'import json,sys; print(json.dumps(sys.stdin.read()))')" >"$LOGS/$name.json"
  fi
  cat "$LOGS/$name.log" >&2
}

wanted() { case " $BENCHES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

if wanted train; then run train "$PY" benchmarks/bench_train.py --device "$DEVICE" --batch-size 512 --epochs 5; fi
if wanted loader; then run loader "$PY" benchmarks/bench_loader.py --device "$DEVICE" --images 50000 --batch-size 512; fi
if wanted overhead; then run overhead "$PY" benchmarks/bench_overhead.py --trials 40 --concurrency 4; fi
if wanted latency; then run latency "$PY" benchmarks/bench_latency.py --device "$DEVICE"; fi
if wanted fidelity; then
  run fidelity "$PY" benchmarks/bench_fidelity.py --dataset "$FIDELITY_DATASET" --device "$DEVICE" --data-dir data
fi
if wanted cuda_tests; then run cuda_tests "$PY" -m pytest -q -m cuda -p no:cacheprovider --no-header -rA; fi
if [ "${TPSEARCH_GPU_SEARCH:-0}" = 1 ]; then
  if [ "$DATASET" = cifar10-standin ]; then
    run standin "$PY" benchmarks/cifar_standin.py "$DATA_DIR" --size "${TPSEARCH_STANDIN_SIZE:-50000}"
  fi
  tmp="$(mktemp -d)"
  start=$(date +%s)
  # The defaults are what is timed: --gpus-per-trial auto packs trials on the GPU, --max-macs auto caps MACs.
  # shellcheck disable=SC2086  # the extra flags are words on purpose
  run search "$PY" -m tpsearch run --space resnet_5m --trials "${TPSEARCH_GPU_TRIALS:-200}" --dataset cifar10 \
    --data-dir "$DATA_DIR" --storage "sqlite:///$tmp/s.db" --runs-dir "$tmp/runs" --no-progress --json \
    ${TPSEARCH_GPU_SEARCH_ARGS:-}
  echo "{\"seconds\": $(( $(date +%s) - start )), \"data\": \"$DATASET\"}" >"$LOGS/search_seconds.json"
fi

"$PY" - "$LOGS" "$REPORT" "$DATASET" "$FIDELITY_DATASET" "${FAILED[@]}" <<'PY'
import json, pathlib, subprocess, sys
logs, report, dataset, fidelity = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
failed = sys.argv[5:]
out = {"dataset": dataset, "fidelity_dataset": fidelity}
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
    except json.JSONDecodeError:  # the cuda tests' pytest summary
        out[path.stem] = {"last_line": path.read_text().strip()[-500:]}
out["failed"] = sorted(set(failed))
pathlib.Path(report).write_text(json.dumps(out, indent=2) + "\n")
if failed:  # before the JSON line, which stays last
    print(f"gpu_report: failed: {', '.join(out['failed'])} (report: {report})", file=sys.stderr, flush=True)
print(json.dumps(out), flush=True)
sys.exit(1 if failed else 0)
PY
