#!/usr/bin/env bash
# Start a one-node Slurm (munge + slurmctld + slurmd) on this Debian machine, as root. Idempotent: installs the
# packages only if missing, creates the munge key only if missing, starts only the daemons not already running.
# The pids of what it starts go to /run/ddnb-slurm/*.pid (scripts/slurm-down.sh stops them). Prints the partition.
# Facts behind the settings: /work/shared/notes/slurm.md (Slurm 22.05 on Debian 12, cgroup v1, no systemd).
set -euo pipefail

PARTITION=debug
RUN=/run/ddnb-slurm
CONF=/etc/slurm/slurm.conf
CTLD_LOG=/var/log/slurmctld/slurmctld.log
SLURMD_LOG=/var/log/slurmd/slurmd.log
HOST=$(hostname -s)

log() { echo "slurm-up: $*" >&2; }
[ "$(id -u)" = 0 ] || { log "needs root"; exit 1; }
command -v apt-get >/dev/null || { log "needs Debian (apt-get)"; exit 1; }

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }   # a pid file whose process is alive

# --- packages
PKGS="slurmctld slurmd slurm-client munge"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  log "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q $PKGS >/dev/null
fi

mkdir -p "$RUN"

# --- munge: key, folders, daemon
install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  log "creating /etc/munge/munge.key"
  if command -v mungekey >/dev/null; then
    mungekey --create --keyfile=/etc/munge/munge.key --force
  else
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if ! munge_ok; then
  log "starting munged"
  rm -f /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do munge_ok && break; sleep 0.2; done
  munge_ok || { log "munged does not answer"; tail -n 20 /var/log/munge/munged.log >&2 || true; exit 1; }
  if [ -s /run/munge/munged.pid ]; then cp /run/munge/munged.pid "$RUN/munged.pid"
  else pgrep -u munge -x munged | head -n1 > "$RUN/munged.pid"; fi
fi

# --- slurm.conf (only written while no slurmctld runs: a running cluster keeps its config)
if ! alive "$RUN/slurmctld.pid" && ! pgrep -x slurmctld >/dev/null; then
  free_mb=$(free -m | awk '/^Mem:/ {print $4}')
  real_mb=$(( free_mb * 9 / 10 ))
  [ "$real_mb" -ge 1024 ] || real_mb=1024
  install -d -m 0755 /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurmctld /var/log/slurmd
  cat > "$CONF.tmp" <<EOF
# written by ddnb scripts/slurm-up.sh: a one-node test cluster
ClusterName=ddnb
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$CTLD_LOG
SlurmdLogFile=$SLURMD_LOG
SlurmctldPort=6817
SlurmdPort=6818
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$real_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$CONF.tmp" "$CONF"
  log "wrote $CONF (node $HOST, CPUs $(nproc), RealMemory ${real_mb} MB)"
fi

# --- daemons: slurmctld, then slurmd (both daemonize and write their pid files into $RUN)
if ! alive "$RUN/slurmctld.pid" && ! pgrep -x slurmctld >/dev/null; then
  log "starting slurmctld"
  rm -f "$RUN/slurmctld.pid"
  slurmctld -c        # -c: forget jobs of an earlier session
  for _ in $(seq 50); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
fi
if ! alive "$RUN/slurmd.pid" && ! pgrep -x slurmd >/dev/null; then
  log "starting slurmd"
  rm -f "$RUN/slurmd.pid"
  slurmd -c
fi

# --- wait for the node to be idle
for _ in $(seq 60); do
  state=$(sinfo -h -o %T 2>/dev/null | head -n1 || true)
  case "$state" in idle|mixed|allocated) break ;; esac
  sleep 1
done
case "${state:-}" in
  idle|mixed|allocated) ;;
  *) log "node not idle after 60 s (state: '${state:-none}')"
     for f in "$CTLD_LOG" "$SLURMD_LOG" /var/log/munge/munged.log; do
       echo "--- tail $f" >&2; tail -n 30 "$f" >&2 2>/dev/null || true
     done
     exit 1 ;;
esac
log "node $HOST $state; partition:"
echo "$PARTITION"
