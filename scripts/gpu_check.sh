#!/usr/bin/env bash
# The GPU check of ddnb (scripts/gpu_check.py: one table, JSON and markdown under --out).
#
#   bash scripts/gpu_check.sh --download-wheels [3.12 3.11 …] [--bare]
#        here, on a machine with PyPI: the wheels of what ddnb imports beyond torch, timm and accelerate, at the versions of
#        requirements.lock, into .wheels/ (py3/ pure Python; cpXY/ compiled, per target python). Git-ignore .wheels/.
#        Default target: 3.12, the lent GPU machines' python (requirements.lock was made with 3.11). Compiled wheels the GPU image
#        already has (scipy, scikit-learn, pandas, matplotlib, …) only with --bare, for a python that has nothing but torch,
#        timm and accelerate.
#   bash scripts/gpu_check.sh [--python PY] [--no-install] [gpu_check.py flags …]
#        on the GPU machine (carry .wheels): installs into $DDNB_GPU_SITE (default /tmp/ddnb-gpu-site) the carried wheels that
#        PY (default python3) lacks, puts that folder and the repository on PYTHONPATH, and runs
#        `PY scripts/gpu_check.py "$@"`. E.g. `bash scripts/gpu_check.sh --out "$OUT"`; `--dry-run --device cpu` on a CPU.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WHEELS=${DDNB_WHEELS:-$REPO/.wheels}
SITE=${DDNB_GPU_SITE:-/tmp/ddnb-gpu-site}
PY=python3
install=1
args=()
while (($#)); do
  case $1 in
    --download-wheels)
      shift
      versions=(); bare=()
      while (($#)); do
        case $1 in
          3.*) versions+=("$1") ;;
          --bare) bare=(--bare) ;;
          *) echo "gpu_check.sh --download-wheels: unknown argument $1 (python versions like 3.12, or --bare)" >&2; exit 2 ;;
        esac
        shift
      done
      DL=python3; [[ -x $REPO/.venv/bin/python ]] && DL=$REPO/.venv/bin/python   # needs pip and packaging
      exec "$DL" "$REPO/scripts/gpu_check.py" wheels-download --dir "$WHEELS" ${versions[@]:+--versions "${versions[@]}"} "${bare[@]}" ;;
    --python) PY=$2; shift 2 ;;
    --no-install) install=0; shift ;;
    *) args+=("$1"); shift ;;
  esac
done

cd "$REPO"
if ! "$PY" -c 'import torch' 2>/dev/null; then
  echo "gpu_check.sh: $PY cannot import torch; the GPU check needs a python with torch (and timm, accelerate)" >&2; exit 2
fi
if ((install)); then
  t0=$SECONDS
  # decide and install with PY itself, so the version, tags and installed distributions are the machine's
  "$PY" "$REPO/scripts/gpu_check.py" wheels-install --dir "$WHEELS" --site "$SITE" || rc=$?
  case ${rc:-0} in
    0) ;;
    3) echo "gpu_check.sh: some requirements are missing (above); the sections that need them will report errors" >&2 ;;
    *) echo "gpu_check.sh: installing the wheels failed (${rc})" >&2; exit "$rc" ;;
  esac
  echo "[gpu-check] wheels ready in $((SECONDS - t0)) s"
fi
export PYTHONPATH="$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
exec "$PY" "$REPO/scripts/gpu_check.py" ${args[@]:+"${args[@]}"}
