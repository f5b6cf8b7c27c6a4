#!/usr/bin/env bash
# Sets up cyclejax on one cloud GPU VM (jax with CUDA, cyclejax from this checkout) and
# trains a config on all the VM's GPUs: one process drives them all, no launcher needed.
#
# Usage: launch/cloud_vm.sh [options] CONFIG WORKDIR [-- cyclejax.main flags...]
#   --venv=DIR       virtual environment, made if missing (default: ~/cyclejax-venv)
#   --cuda=12|13|cpu which jax wheels: jax[cuda12], jax[cuda13] or plain CPU jax
#                    (default: 13 when the NVIDIA driver is 580 or newer, else 12)
#   --python=BIN     Python 3.11 or newer for the venv (default: python3)
#   --setup_only     install and check the GPUs, do not train
#   --reinstall      install again even if the venv is complete
#   --log=FILE       also append the output to FILE (default: WORKDIR/train.log)
#
# Examples (from the root of a cyclejax checkout on the VM):
#   launch/cloud_vm.sh configs/horse2zebra.py runs/horse2zebra
#   launch/cloud_vm.sh configs/ghibli.py runs/ghibli -- --config.data_dir=/data/photo2ghibli
#   launch/cloud_vm.sh --setup_only configs/shapes.py runs/x   # only install and check
#
# Run it in tmux or screen: an ssh disconnect must not end it. Rerunning the same command
# resumes from the workdir's latest checkpoint (setup is skipped once done). A SIGTERM
# (a spot VM's preemption notice, `kill`) makes the trainer save a checkpoint after the
# current step and exit with status 143. The compile cache goes to ~/.cache/jax unless
# JAX_COMPILATION_CACHE_DIR says otherwise, so a resumed run starts in seconds.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$HOME/cyclejax-venv"
CUDA=""
PYTHON="python3"
SETUP_ONLY=0
REINSTALL=0
LOG=""
POSITIONAL=()
while [ $# -gt 0 ]; do
  case "$1" in
    --venv=*) VENV="${1#*=}" ;;
    --cuda=*) CUDA="${1#*=}" ;;
    --python=*) PYTHON="${1#*=}" ;;
    --setup_only) SETUP_ONLY=1 ;;
    --reinstall) REINSTALL=1 ;;
    --log=*) LOG="${1#*=}" ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    -*) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) POSITIONAL+=("$1") ;;
  esac
  shift
done
if [ "${#POSITIONAL[@]}" -ne 2 ]; then
  echo "error: give CONFIG and WORKDIR (see --help)" >&2
  exit 2
fi
CONFIG="${POSITIONAL[0]}"
WORKDIR="${POSITIONAL[1]}"
[ -f "${CONFIG%%:*}" ] || { echo "error: config ${CONFIG%%:*} does not exist" >&2; exit 2; }

# Which jax: the CUDA 13 wheels need an NVIDIA driver >= 580, the CUDA 12 ones >= 525.
if [ -z "$CUDA" ]; then
  if ! command -v nvidia-smi >/dev/null; then
    echo "error: nvidia-smi not found: install the NVIDIA driver first, or pass --cuda=cpu" >&2
    exit 2
  fi
  DRIVER="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n1)"
  if [ "${DRIVER%%.*}" -ge 580 ]; then CUDA=13; else CUDA=12; fi
  echo "NVIDIA driver $DRIVER: using jax[cuda$CUDA]"
fi
case "$CUDA" in
  12|13) JAX_SPEC="jax[cuda$CUDA]>=0.10.2"; WANT_BACKEND=gpu ;;
  cpu) JAX_SPEC="jax>=0.10.2"; WANT_BACKEND=cpu ;;
  *) echo "error: --cuda=$CUDA: one of 12, 13, cpu" >&2; exit 2 ;;
esac

# Setup, once per venv and jax flavour.
MARK="$VENV/.cyclejax-setup-$CUDA"
if [ "$REINSTALL" = 1 ] || [ ! -f "$MARK" ]; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "error: $PYTHON is older than Python 3.11; pass --python=python3.12 or similar" >&2
    exit 2
  }
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q --upgrade "$JAX_SPEC" -e "$REPO"
  rm -f "$VENV"/.cyclejax-setup-*
fi
"$VENV/bin/python" - "$WANT_BACKEND" <<'EOF'
import sys
import jax
backend = jax.default_backend()
print(f"jax {jax.__version__}: {jax.device_count()} {backend} device(s): {jax.devices()}")
if backend != sys.argv[1]:
  sys.exit(f"error: jax runs on {backend}, expected {sys.argv[1]}: check the driver "
           "(nvidia-smi) and the --cuda choice, then rerun with --reinstall")
EOF
touch "$MARK"
[ "$SETUP_ONLY" = 1 ] && exit 0

mkdir -p "$WORKDIR"
LOG="${LOG:-$WORKDIR/train.log}"
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-$HOME/.cache/jax}"
echo "training: python -m cyclejax.main --config=$CONFIG --workdir=$WORKDIR $* (log: $LOG)"
# exec: the trainer takes this script's process, so a `kill` of it reaches the trainer
# (which then checkpoints); tee -i leaves a Ctrl-C to the trainer as well.
exec > >(tee -i -a "$LOG") 2>&1
exec "$VENV/bin/python" -m cyclejax.main --config="$CONFIG" --workdir="$WORKDIR" "$@"
