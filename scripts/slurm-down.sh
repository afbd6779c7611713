#!/usr/bin/env bash
# Stop what scripts/slurm-up.sh started (pids in /run/ddnb-slurm/*.pid): first cancel the test jobs (slurmstepd and
# the job's processes outlive slurmd), then slurmd, slurmctld and munged. Missing or dead pids are fine.
set -uo pipefail
RUN=/run/ddnb-slurm
log() { echo "slurm-down: $*" >&2; }

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# jobs first, while slurmctld and slurmd still run to end them
if alive "$RUN/slurmctld.pid" && alive "$RUN/slurmd.pid"; then
  if [ -n "$(squeue -h -o %i 2>/dev/null)" ]; then
    log "cancelling jobs: $(squeue -h -o %i | tr '\n' ' ')"
    scancel --partition=debug 2>/dev/null || true
    for _ in $(seq 30); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 1; done
  fi
fi

stop() {  # name: TERM, wait up to 10 s, then KILL
  local f="$RUN/$1.pid" pid
  [ -s "$f" ] || { rm -f "$f"; return 0; }
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $1 ($pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { log "$1 ($pid) ignores TERM: KILL"; kill -KILL "$pid" 2>/dev/null || true; }
  fi
  rm -f "$f"
}
stop slurmd
stop slurmctld
stop munged
exit 0
