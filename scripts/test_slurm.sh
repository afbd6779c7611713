#!/usr/bin/env bash
# End-to-end check that `ddnb reproduce --cluster slurm` gives the same numbers as a local run (`make test-slurm`).
# It starts a one-node Slurm on this machine (scripts/slurm-up.sh: installs slurmctld, slurmd, slurm-client and
# munge with apt-get if missing, partition `debug`), runs the smoke profile twice with fresh caches and reports
# folders under .test-tmp/slurm/ — once locally, once with its cells run as dask-jobqueue SLURMCluster worker jobs
# (squeue printed every 20 s to .test-tmp/slurm/squeue.log) — then compares, for every results/*.json of the two
# runs, the top1 of each row keyed by (method, ipc, recipe, student, label_mode, seed); it prints `N of M rows equal`
# and both wall times, exits nonzero on any difference, and stops the Slurm daemons it started on any exit
# (scripts/slurm-down.sh). It needs root and Debian (apt-get, and daemons started by hand: no systemd needed), and
# a ddnb whose `reproduce` has the --cluster option; it fails at once, before starting anything, without it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

T=${TEST_SLURM_DIR:-.test-tmp/slurm}   # (make test empties .test-tmp/: do not run both at once, or point this elsewhere)
DDNB=${TEST_SLURM_DDNB:-.venv/bin/ddnb}   # override only to dry-run this harness with a stand-in
PY=.venv/bin/python
SLURM_OPTS=(--cluster slurm --cluster-opt queue=debug --cluster-opt walltime=00:30:00 --cluster-opt memory=3GB)
RUN_TIMEOUT=${TEST_SLURM_TIMEOUT:-3600}   # seconds per run: a hung run fails the test instead of blocking it

compare() {  # compare <reports-a> <reports-b>: top1 of every row of smoke/results/*.json; exit 1 on any difference
  "$PY" - "$1/smoke/results" "$2/smoke/results" <<'EOF'
import glob, json, os, sys
KEY = ('method', 'ipc', 'recipe', 'student', 'label_mode', 'seed')
def load(d):
    out = {}
    for f in sorted(glob.glob(os.path.join(d, '*.json'))):
        res = json.load(open(f))
        for r in (res.get('rows') or []) if isinstance(res, dict) else []:
            out.setdefault((os.path.basename(f),) + tuple(r.get(k) for k in KEY), []).append(r.get('top1'))
    return out, len(glob.glob(os.path.join(d, '*.json')))
(a, na), (b, nb) = load(sys.argv[1]), load(sys.argv[2])
n_a, n_b = sum(map(len, a.values())), sum(map(len, b.values()))
equal, bad = 0, []
for k in sorted(set(a) | set(b), key=str):
    va, vb = a.get(k, []), b.get(k, [])
    equal += sum(x == y for x, y in zip(va, vb))
    if va != vb: bad.append((k, va, vb))
print(f"results files: {na} local, {nb} slurm; rows: {n_a} local, {n_b} slurm")
for k, va, vb in bad[:20]: print(f"  DIFFERENT {k[0]} {dict(zip(KEY, k[1:]))}: local {va} slurm {vb}")
if len(bad) > 20: print(f"  ... and {len(bad) - 20} more")
total = max(n_a, n_b)
print(f"{equal} of {total} rows equal")
sys.exit(0 if not bad and na == nb and total > 0 else 1)
EOF
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

main() {
  [ "$(id -u)" = 0 ] || { echo "test_slurm: needs root (it installs and starts Slurm)" >&2; exit 1; }
  [ -x "$DDNB" ] || { echo "test_slurm: $DDNB missing: run make install first" >&2; exit 1; }
  help=$("$DDNB" reproduce --help 2>&1 || true)   # (no `| grep -q`: with pipefail its early exit fails the pipe)
  if ! grep -qE -- '--cluster([^-]|$)' <<< "$help"; then
    echo "test_slurm: FAIL: '$DDNB reproduce --help' has no --cluster option: this ddnb cannot run on Slurm yet" >&2
    exit 2
  fi

  rm -rf "$T" && mkdir -p "$T"
  # the worker jobs' stdout/stderr: without log_directory Slurm writes slurm-<id>.out into the repo root
  SLURM_OPTS+=(--cluster-opt "log_directory=$(realpath -m "$T")/slurm-logs")
  SQ_PID="" SLURM_PID=""
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  bash scripts/slurm-up.sh > "$T/partition"
  echo "== Slurm up, partition $(cat "$T/partition")"; sinfo

  export DDNB_PROGRESS=0
  echo "== (a) local run"
  t0=$(now)
  rc=0; timeout "$RUN_TIMEOUT" "$DDNB" reproduce --profile smoke --reports-dir "$T/local" --cache-dir "$T/cache-local" \
    > "$T/local.log" 2>&1 || rc=$?
  [ "$rc" = 0 ] || { echo "local run failed (rc $rc; 124: over ${RUN_TIMEOUT} s):"; tail -n 40 "$T/local.log"; exit 1; }
  WALL_LOCAL=$(since "$t0"); echo "local run: ${WALL_LOCAL} s"

  echo "== (b) Slurm run ($(printf '%s ' "${SLURM_OPTS[@]}"))"
  ( while :; do echo "--- $(date '+%F %T')"; squeue 2>&1; sleep 20; done ) > "$T/squeue.log" 2>&1 &
  SQ_PID=$!
  t0=$(now)
  timeout "$RUN_TIMEOUT" "$DDNB" reproduce --profile smoke --reports-dir "$T/slurm" --cache-dir "$T/cache-slurm" \
    "${SLURM_OPTS[@]}" > "$T/slurm.log" 2>&1 &
  SLURM_PID=$!
  rc=0; wait "$SLURM_PID" || rc=$?; SLURM_PID=""
  WALL_SLURM=$(since "$t0")
  kill "$SQ_PID" 2>/dev/null || true; wait "$SQ_PID" 2>/dev/null || true; SQ_PID=""
  echo "squeue while the Slurm run ran ($T/squeue.log):"; cat "$T/squeue.log"
  [ "$rc" = 0 ] || { echo "Slurm run failed (rc $rc; 124: over ${RUN_TIMEOUT} s):"; tail -n 40 "$T/slurm.log"; exit 1; }
  echo "slurm run: ${WALL_SLURM} s"

  echo "== (c) compare"
  rc=0; compare "$T/local" "$T/slurm" || rc=$?
  echo "wall times: local ${WALL_LOCAL} s, slurm ${WALL_SLURM} s"
  [ "$rc" = 0 ] && echo "test_slurm: OK" || echo "test_slurm: FAIL: the Slurm run's numbers differ from the local run's"
  exit "$rc"
}

cleanup() {  # (d) on any exit: stop the squeue loop, a Slurm run still going, and the daemons slurm-up started
  local rc=$?
  [ -n "${SQ_PID:-}" ] && kill "$SQ_PID" 2>/dev/null
  if [ -n "${SLURM_PID:-}" ] && kill -0 "$SLURM_PID" 2>/dev/null; then
    kill -TERM "$SLURM_PID" 2>/dev/null; sleep 2; kill -KILL "$SLURM_PID" 2>/dev/null
  fi
  bash scripts/slurm-down.sh || true
  exit "$rc"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
