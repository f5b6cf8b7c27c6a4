#!/usr/bin/env bash
# The GPU check: on a machine with a GPU and Python 3.12 (jax, flax, optax, orbax, chex
# and a CUDA torch installed) that reaches no package registry, installs what cyclejax
# lacks from prepared wheels, then measures, writing every JSON line to one file:
#   1. the environment (GPU, versions);
#   2. bench all --torch on the grid 1:float32 (the reference setting: resnet_9blocks,
#      256x256, batch 1, beside the PyTorch step) and 16:bfloat16, then the shapes
#      config, then Score-CAM at 256 (vectorized and the per-map loop);
#   3. a short training run of the shapes config (its metrics.jsonl lines).
# Each stage has a time limit (the whole fits in about 8 minutes) and ends with a
# {"stage": ..., "rc": ..., "seconds": ...} line; a failed stage does not stop the next.
#
# Usage: launch/gpu_bench.sh [--out=FILE] [--wheels=DIR] [--python=BIN] [--dry_run]
#   --out=FILE     the JSON lines (default: $OUT/gpu_bench.jsonl if OUT is set, else
#                  runs/gpu_bench.jsonl)
#   --wheels=DIR   the prepared wheels (default: .gpu_wheels; prepare them on a machine
#                  with registry access: python launch/gpu_wheels.py download)
#   --python=BIN   the interpreter (default: python3)
#   --dry_run      on the CPU with tiny settings, to test this script: installs only
#                  cyclejax (the wheels, where the folder exists, are checked, and
#                  installed too when BIN is 3.12)
#
# Example (the GPU machine's copy of this checkout, with .gpu_wheels carried along):
#   launch/gpu_bench.sh --out=$OUT/gpu_bench.jsonl
set -uo pipefail

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUTFILE="${OUT:+$OUT/gpu_bench.jsonl}"
OUTFILE="${OUTFILE:-$REPO/runs/gpu_bench.jsonl}"
WHEELS="$REPO/.gpu_wheels"
PYTHON=python3
DRY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out=*) OUTFILE="${1#*=}" ;;
    --wheels=*) WHEELS="${1#*=}" ;;
    --python=*) PYTHON="${1#*=}" ;;
    --dry_run) DRY=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
command -v "$PYTHON" >/dev/null || { echo "error: --python=$PYTHON not found" >&2; exit 2; }
mkdir -p "$(dirname "$OUTFILE")"
: > "$OUTFILE"
OUTFILE="$(cd "$(dirname "$OUTFILE")" && pwd)/$(basename "$OUTFILE")"
WORK="$(mktemp -d)"
SITE="$WORK/site"
LOGS="$WORK/logs"
mkdir -p "$SITE" "$LOGS"
trap 'rm -rf "$WORK"' EXIT

if [ "$DRY" = 1 ]; then
  export JAX_PLATFORMS=cpu
  # Tiny settings: the same stages and flags, seconds on a CPU.
  BENCH=(--grid=1:float32 "--grid_config=$REPO/configs/shapes.py:tiny"
         "--config=$REPO/configs/shapes.py:tiny" --steps=1 --input_batches=1
         --size=32 --ndf=4 --variants=vectorized,loop)
  TRAIN=("--config=$REPO/configs/shapes.py:tiny" --config.num_steps=2)
  LIMITS=(120 300 120)
else
  BENCH=(--grid=1:float32,16:bfloat16 "--grid_config=$REPO/configs/horse2zebra.py"
         "--config=$REPO/configs/shapes.py" --steps=40 --input_batches=20
         --size=256 --repeats=2)
  TRAIN=("--config=$REPO/configs/shapes.py" --config.num_steps=400 --config.log_every=50
         --config.sample_every=400 --config.checkpoint_every=400)
  LIMITS=(60 330 75)  # install, bench, train: seconds
  # JAX takes this share of the GPU's memory up front; PyTorch's step (batch 1) the rest.
  export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.85}"
fi

# One JSON line per stage: {"stage", "rc", "seconds", "log_tail"} (rc 124: timed out).
record() {  # STAGE RC START_NS END_NS LOG
  "$PYTHON" - "$@" >>"$OUTFILE" <<'EOF'
import json, sys
stage, rc, start, end, log = sys.argv[1:6]
try:
  tail = open(log, errors="replace").read()[-3000:]
except OSError:
  tail = ""
print(json.dumps({"stage": stage, "rc": int(rc), "seconds": (int(end) - int(start)) / 1e9,
                  "log_tail": tail}))
EOF
}

# A stage: STAGE LIMIT COMMAND...; its stdout lines that are JSON objects go to the file
# as they come, everything else to its log.
stage() {
  local name="$1" limit="$2"
  shift 2
  local log="$LOGS/$name.log" start rc
  echo "[gpu_bench] $name (limit ${limit}s): $*" >&2
  start=$(date +%s%N)
  timeout --kill-after=10 "$limit" "$@" 2>"$log.err" \
    | tee "$log.out" | grep --line-buffered '^{' >>"$OUTFILE"
  rc=${PIPESTATUS[0]}
  grep -v '^{' "$log.out" | cat - "$log.err" >"$log"
  record "$name" "$rc" "$start" "$(date +%s%N)" "$log"
  echo "[gpu_bench] $name: exit status $rc" >&2
  return "$rc"
}

# 1. The environment.
"$PYTHON" - "$DRY" >>"$OUTFILE" 2>"$LOGS/environment.log" <<'EOF'
import importlib.metadata as md, json, platform, subprocess, sys
names = ["jax", "jaxlib", "jax-cuda13-plugin", "jax-cuda12-plugin", "flax", "optax",
         "orbax-checkpoint", "chex", "numpy", "protobuf", "etils", "torch"]
versions = {}
for n in names:
  try:
    versions[n] = md.version(n)
  except md.PackageNotFoundError:
    pass
try:
  gpus = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                         "--format=csv,noheader"], capture_output=True, text=True,
                        timeout=30).stdout.strip().splitlines()
except (OSError, subprocess.SubprocessError):
  gpus = []
print(json.dumps({"stage": "environment", "dry_run": sys.argv[1] == "1",
                  "python": platform.python_version(), "machine": platform.machine(),
                  "nvidia_smi": gpus, "versions": versions}))
EOF

# 2. Install: the wheels, then cyclejax from this checkout, all with --no-index --no-deps.
export PYTHON REPO WHEELS SITE WORK DRY
install() {
  local py
  py="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  if [ "$DRY" = 1 ] && [ ! -d "$WHEELS" ]; then
    # A dry run tests this script, not a prepared folder (the GPU run requires one).
    echo "dry run: no wheel folder $WHEELS; the wheels are neither checked nor installed"
  else
    "$PYTHON" "$REPO/launch/gpu_wheels.py" check --dir="$WHEELS" || return 1
  fi
  if [ "$DRY" = 1 ] && [ ! -d "$WHEELS" ]; then
    :
  elif [ "$py" = 3.12 ]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --target "$SITE" "$WHEELS"/*.whl || return 1
  else
    echo "Python $py: the cp312 wheels are checked, not installed (a dry run)"
  fi
  "$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile \
    --no-cache-dir --target "$SITE" "$REPO" || return 1
  # The checks run where the stages run (outside the checkout): the installed copies.
  (cd "$WORK" && PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -c '
import cyclejax, grain, ml_collections, tensorboardX, jax
print("cyclejax from", cyclejax.__file__)
print("jax", jax.__version__, "backend", jax.default_backend(), jax.devices())
try:
  import tensorflow_datasets
except Exception as e:  # only the tfds data sources need it
  print("warning: tensorflow_datasets does not import:", repr(e)[:300])
')
}
export -f install
stage install "${LIMITS[0]}" bash -c install
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
if [ "$DRY" = 1 ]; then  # a dry run may reuse its caller's cache (the tests' one)
  export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-$WORK/jax_cache}"
else
  export JAX_COMPILATION_CACHE_DIR="$WORK/jax_cache"
fi

# 3. The benchmarks, from outside the checkout (so the installed cyclejax runs).
cd "$WORK" || exit 1
stage bench "${LIMITS[1]}" "$PYTHON" -m cyclejax.bench all --torch "${BENCH[@]}"

# 4. A short training run; its metrics.jsonl lines follow, tagged.
stage train "${LIMITS[2]}" "$PYTHON" -m cyclejax.main "${TRAIN[@]}" --workdir="$WORK/train"
"$PYTHON" - "$WORK/train/metrics.jsonl" >>"$OUTFILE" <<'EOF'
import json, sys
try:
  lines = open(sys.argv[1]).read().splitlines()
except OSError:
  lines = []
for line in lines:
  try:
    print(json.dumps({"stage": "train_metrics", **json.loads(line)}))
  except json.JSONDecodeError:
    pass
EOF
echo "[gpu_bench] wrote $(wc -l <"$OUTFILE") JSON lines to $OUTFILE" >&2
