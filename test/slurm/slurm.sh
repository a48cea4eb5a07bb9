#!/usr/bin/env bash
# test/slurm/slurm.sh - a real Slurm (Debian's slurm-wlm: munged, slurmctld,
# slurmd) on this machine, for gorun's end-to-end tests (test/slurm_test.go):
# one node (this host), or N nodes inside the fake hosts of
# ../vcluster/vcluster.sh. No systemd, no cgroups, nothing in /etc: every
# file lives in one state folder. The facts behind each choice are in
# shared/slurm/NOTES.md beside the repository (measured on this kind of
# machine).
#
# Usage (as root):
#   slurm.sh deps   apt-get install slurmctld slurmd slurm-client munge if missing,
#                   starting no service; exit 1 when that is impossible
#   slurm.sh up [N] start a cluster of N nodes (default 1; runs deps first unless
#                   GORUN_SLURM_NO_INSTALL=1) and wait until every node is idle;
#                   replaces a cluster left in STATE
#   slurm.sh exec CMD...  run CMD where the controller is reachable, with SLURM_CONF
#                   set: here (N=1) or inside h1 (N>1); argv, environment and cwd kept
#   slurm.sh on NODE CMD...  the same on node NODE (h1..hN; N=1: here)
#   slurm.sh env    print the shell lines to use it (N=1: from here): eval "$(slurm.sh env)"
#   slurm.sh down   stop every process of the cluster (daemons, steps, their tasks)
#                   and delete STATE; idempotent
#   slurm.sh status daemons, sinfo, squeue
#
# N=1: the node is this host, NodeName=`hostname -s` on 127.0.0.1; slurmctld
# and slurmd take the first free port pair from 6817 up.
# N>1: the nodes are the fake hosts h1..hN of ../vcluster/vcluster.sh (each
# its own network stack, hostname and /dev/shm; the filesystem is shared, so
# a binary under /tmp has the same path everywhere). slurmctld and a slurmd
# run in h1, a slurmd in each other host, all on ports 6817/6818. The hosts
# have no route out: every client (srun, salloc, and a launcher that runs
# srun) must run inside h1, which is what `slurm.sh exec` does.
# munged runs here in both cases; Slurm finds its socket (a file under STATE)
# through AuthInfo. The CPUs declared may exceed the cores
# (SlurmdParameters=config_overrides), so `srun -n 3` runs on a 2-core
# machine. Jobs run as root.
#
# Environment:
#   GORUN_SLURM_STATE    state folder (default /run/gorun-slurm); not under /dev/shm
#   GORUN_SLURM_CPUS     CPUs declared per node (default 8)
#   GORUN_SLURM_TIMEOUT  seconds `up` waits for each stage, e.g. the nodes idle (default 60)
#   GORUN_SLURM_OWNER    a pid: the cluster belongs to that process. Any later `up`
#                        tears down every /run/gorun-slurm* cluster whose owner is
#                        gone (a test binary killed by its timeout has no cleanup).
#   GORUN_SLURM_NO_INSTALL=1  `up` fails instead of installing missing packages
#   GORUN_SLURM_VCLUSTER path of vcluster.sh (default ../vcluster/vcluster.sh from here);
#                        its cluster is named gsNNNNNN after STATE, its state is STATE/vc
#                        (it also starts an sshd per host, so it needs openssh-server)
#   GORUN_SLURM_NET      the fake hosts' /24, first three octets (default 10.213.0)
#
# No TTY or stdin is needed; the daemons get stdin /dev/null and log files
# (STATE/log), so `out=$(slurm.sh up)` does not hang.

set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
die() { echo "slurm.sh: $*" >&2; exit 1; }
log() { echo "slurm.sh: $*"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

STATE=$(readlink -m "${GORUN_SLURM_STATE:-/run/gorun-slurm}")
case "$STATE/" in /|/dev/shm/*) die "refusing GORUN_SLURM_STATE=$STATE" ;; esac
TIMEOUT=${GORUN_SLURM_TIMEOUT:-60}
PKGS="slurmctld slurmd slurm-client munge"
MARK=.gorun-slurm   # in every state folder this script made; holds its settings
VC=$(readlink -m "${GORUN_SLURM_VCLUSTER:-$(dirname "$SELF")/../vcluster/vcluster.sh}")

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (the daemons and the jobs run as root)"; }

# ---------------------------------------------------------------- deps --
pkg_ok() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

cmd_deps() {
  local p missing='' made_policy='' rc=0
  need_root
  { command -v dpkg-query && command -v apt-get; } >/dev/null || die "no apt-get/dpkg here: install $PKGS yourself"
  for p in $PKGS; do pkg_ok "$p" || missing+=" $p"; done
  [ -n "$missing" ] || return 0
  # The postinsts would start the daemons with the config in /etc
  # (invoke-rc.d); a policy-rc.d that exits 101 forbids that.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  log "installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing </dev/null >/dev/null ||
    { apt-get update -q </dev/null >/dev/null && apt-get install -y -q --no-install-recommends $missing </dev/null >/dev/null; } ||
    rc=$?
  [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
  [ $rc = 0 ] || die "apt-get install$missing failed"
}

# ----------------------------------------------------------- processes --
# Is PID alive and not a zombie? (pid 1 may reap orphans late.)
alive() {
  local st
  st=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

starttime() { sed -n 's/^.*) //p' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }

# The pids of every live process holding a file under DIR open (each daemon
# and slurmstepd holds its log file) and all their descendants (a step's
# tasks), never this script or its ancestors.
pids_of() { # DIR
  local roots
  # find and cat exit 1 when a process vanishes during the walk: normal.
  roots=$(find /proc/[0-9]*/fd -maxdepth 1 -lname "$1/*" 2>/dev/null | cut -d/ -f3 | sort -u | paste -sd' ') || true
  [ -n "$roots" ] || return 0
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v roots="$roots" -v self=$$ '
    { s = $0; sub(/^.*\) /, "", s); split(s, a, " "); pp[$1] = a[2]; st[$1] = a[1] }
    END {
      n = split(roots, r, " "); for (i = 1; i <= n; i++) mine[r[i]] = 1
      for (p = self; p > 1 && (p in pp); p = pp[p]) no[p] = 1
      do { ch = 0; for (p in pp) if (!(p in mine) && (pp[p] in mine)) { mine[p] = 1; ch = 1 } } while (ch)
      for (p in mine) if (!(p in no) && (p in pp) && st[p] != "Z") printf "%s ", p
    }' || true
}

# TERM the pids, KILL what is left after 2 s; wait until all are gone.
stop_pids() {
  local pids="$*" p i left
  [ -n "${pids// /}" ] || return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    left=
    for p in $pids; do if alive "$p"; then left+=" $p"; fi; done
    [ -n "$left" ] || return 0
    # shellcheck disable=SC2086
    [ $i != 40 ] || kill -KILL $left 2>/dev/null || true
    sleep 0.05
  done
  echo "slurm.sh: still alive:$left" >&2
}

# ------------------------------------------------------------- cluster --
# The settings of the cluster in a state folder, kept in its marker.
N=0 VCNAME='' NET=''
load() { # DIR
  N=0 VCNAME='' NET=''
  # shellcheck disable=SC1090
  [ ! -f "$1/$MARK" ] || . "$1/$MARK"
}

# vc DIR ARGS...: vcluster.sh on the fake hosts of the cluster in DIR.
vc() {
  local d=$1
  shift
  VCLUSTER_NAME=$VCNAME VCLUSTER_STATE=$d/vc VCLUSTER_NET=$NET bash "$VC" "$@"
}

# on DIR CMD...: run a client command where the controller of the cluster in
# DIR is reachable (here, or in h1), with its SLURM_CONF.
on() {
  local d=$1
  shift
  if [ -z "$VCNAME" ]; then SLURM_CONF=$d/slurm.conf "$@"; else SLURM_CONF=$d/slurm.conf vc "$d" exec h1 "$@"; fi
}

port_busy() { # PORT [PID]: is anything listening on PORT (TCP) in PID's network namespace?
  awk -v h="$(printf ':%04X' "$1")" '$4 == "0A" && substr($2, length($2) - 4) == h { f = 1 } END { exit !f }' \
    "/proc/${2:-self}/net/tcp" "/proc/${2:-self}/net/tcp6" 2>/dev/null
}

pick_port() {
  local p
  for ((p = 6817; p < 7817; p += 2)); do
    if ! port_busy $p && ! port_busy $((p + 1)); then echo $p; return; fi
  done
  die "no free port pair in 6817-7817"
}

write_conf() { # CTLD PORT NODE-LINE...
  local cpus=${GORUN_SLURM_CPUS:-8} ctld=$1 port=$2 line
  shift 2
  [[ $cpus =~ ^[1-9][0-9]*$ ]] || die "GORUN_SLURM_CPUS must be a positive number"
  {
    cat <<EOF
# made by test/slurm/slurm.sh up $N
ClusterName=gorun
SlurmctldHost=$ctld
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$STATE/munge/munge.sock
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool/%n
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.%n.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.%n.log
PlugStackConfig=$STATE/plugstack.conf
# No cgroups: processes are tracked through /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
# A cancelled step is SIGKILLed 2 s after its SIGTERM.
KillWait=2
MessageTimeout=10
InactiveLimit=0
SchedulerParameters=batch_sched_delay=0
MinJobAge=4
EOF
    for line in "$@"; do echo "$line CPUs=$cpus State=UNKNOWN"; done
    echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO"
  } >"$STATE/slurm.conf"
  # slurmd 22.05 loads a cgroup plugin whatever the plugins above; naming
  # one skips the autodetection (which fails where /sys/fs/cgroup is bare).
  echo 'CgroupPlugin=cgroup/v1' >"$STATE/cgroup.conf"
  : >"$STATE/plugstack.conf"
}

# start_daemon NAME HOST CMD...: CMD in HOST ("-": here) in a session of its
# own, stdin /dev/null, output to STATE/log/NAME.out, pid in STATE/pids/NAME
# (`vcluster.sh exec` ends in an exec of CMD: $! is the daemon).
start_daemon() {
  local name=$1 h=$2
  shift 2
  if [ "$h" = - ]; then
    setsid "$@" </dev/null >>"$STATE/log/$name.out" 2>&1 8<&- &
  else
    VCLUSTER_NAME=$VCNAME VCLUSTER_STATE=$STATE/vc VCLUSTER_NET=$NET \
      setsid bash "$VC" exec "$h" "$@" </dev/null >>"$STATE/log/$name.out" 2>&1 8<&- &
  fi
  echo $! >"$STATE/pids/$name"
}

check_daemons() {
  local f
  for f in "$STATE"/pids/*; do
    [ -f "$f" ] || continue
    if ! alive "$(cat "$f")"; then
      echo "slurm.sh: ${f##*/} died; the end of its output and log:" >&2
      tail -n 15 "$STATE/log/${f##*/}.out" "$STATE/log/${f##*/}.log" >&2 2>/dev/null || true
      return 1
    fi
  done
}

wait_for() { # WHAT CMD...: until CMD succeeds, a daemon dies or TIMEOUT
  local what=$1 end=$(($(date +%s) + TIMEOUT))
  shift
  until "$@"; do
    check_daemons || return 1
    [ "$(date +%s)" -lt "$end" ] || { echo "slurm.sh: $what: not after ${TIMEOUT}s" >&2; return 1; }
    sleep 0.05
  done
}

nodes_idle() { [ "$(on "$STATE" sinfo -h -N -o %T </dev/null 2>/dev/null | grep -c '^idle$')" = "$N" ]; }

# down_state DIR: stop what the cluster in DIR runs and delete DIR.
down_state() {
  local dir=$1 ids i pids
  local -
  set +e
  [ -d "$dir" ] || return 0
  if [ ! -f "$dir/$MARK" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    echo "slurm.sh: $dir was not made by this script: not touching it" >&2
    return 1
  fi
  load "$dir"
  if [ -f "$dir/pids/slurmctld" ] && alive "$(cat "$dir/pids/slurmctld")"; then
    # Cancel the jobs first: their sruns and sallocs are told and exit.
    ids=$(on "$dir" timeout 5 squeue -h -o %A </dev/null 2>/dev/null)
    if [ -n "$ids" ]; then
      # shellcheck disable=SC2086
      on "$dir" timeout 5 scancel $ids </dev/null >/dev/null 2>&1
      for ((i = 0; i < 30; i++)); do
        [ -z "$(on "$dir" timeout 5 squeue -h -o %A </dev/null 2>/dev/null)" ] && break
        sleep 0.1
      done
    fi
  fi
  # The fake hosts: vcluster kills every process in them and deletes them.
  # (It may complain about a process vanishing while it looks: harmless.)
  [ -z "$VCNAME" ] || vc "$dir" down 2>&1 | grep -v 'cmdline: No such file' >&2
  # Every process with a file of ours open (munged; for N=1 the daemons and
  # the slurmstepds, which outlive slurmd) and their descendants, twice: a
  # step may fork while we stop it.
  stop_pids "$(pids_of "$dir")"
  stop_pids "$(pids_of "$dir")"
  pids=$(pids_of "$dir")
  [ -z "${pids// /}" ] || echo "slurm.sh: left running: $pids" >&2
  rm -rf "$dir"
}

# Clusters whose owner process is gone (GORUN_SLURM_OWNER at their `up`).
sweep_orphans() {
  local d o t
  for d in /run/gorun-slurm*; do
    { [ -f "$d/$MARK" ] && [ "$d" != "$STATE" ]; } || continue
    { read -r o t <"$d/owner"; } 2>/dev/null || continue
    if ! alive "$o" || [ "$(starttime "$o")" != "$t" ]; then
      log "tearing down $d: its owner (pid $o) is gone"
      down_state "$d" || true
    fi
  done
}

take_lock() { # serializes up and down of every cluster of this script
  exec 8<"$SELF"
  flock -w 120 8 || die "another slurm.sh up/down holds the lock"
}

cmd_up() {
  local t0 p h port ctld nodes=() lines=() n=${1:-1}
  t0=$(now_ms)
  [[ $n =~ ^[1-9]$ ]] || die "usage: up [N] (N = 1..9)"
  need_root
  if [ "${GORUN_SLURM_NO_INSTALL:-}" = 1 ]; then
    for p in $PKGS; do pkg_ok "$p" || die "$p is not installed (GORUN_SLURM_NO_INSTALL=1; run: $SELF deps)"; done
  else
    cmd_deps
  fi
  for p in slurmctld slurmd munged mungekey srun sinfo squeue scancel setsid flock; do
    command -v $p >/dev/null || die "$p not found"
  done
  [ "$n" = 1 ] || [ -f "$VC" ] || die "$n nodes need the fake hosts of vcluster.sh: no $VC (GORUN_SLURM_VCLUSTER)"
  take_lock
  trap 'st=$?; trap - EXIT; if [ $st != 0 ]; then echo "slurm.sh: up failed, tearing down" >&2; down_state "$STATE"; fi; exit $st' EXIT
  trap 'exit 143' TERM; trap 'exit 130' INT; trap 'exit 129' HUP
  sweep_orphans
  [ ! -f "$STATE/$MARK" ] || log "replacing the cluster in $STATE"
  down_state "$STATE" || exit 1
  cd /   # the daemons must not hold the caller's folder

  N=$n VCNAME='' NET=''
  if [ "$N" = 1 ]; then
    port=$(pick_port)
    nodes=("$(hostname -s)")
    ctld="${nodes[0]}(127.0.0.1)"
    lines=("NodeName=${nodes[0]} NodeHostname=$(hostname) NodeAddr=127.0.0.1")
  else
    port=6817   # each fake host has a network stack of its own
    VCNAME=gs$(printf '%s' "$STATE" | cksum | cut -c1-6)
    NET=${GORUN_SLURM_NET:-10.213.0}
    ctld="h1($NET.1)"
    for ((p = 1; p <= N; p++)); do nodes+=("h$p"); lines+=("NodeName=h$p NodeAddr=$NET.$p"); done
  fi
  mkdir -p "$STATE"
  # First: a state folder that is not empty always has its marker.
  printf 'N=%q\nVCNAME=%q\nNET=%q\n' "$N" "$VCNAME" "$NET" >"$STATE/$MARK"
  if [ -n "${GORUN_SLURM_OWNER:-}" ]; then
    echo "$GORUN_SLURM_OWNER $(starttime "$GORUN_SLURM_OWNER")" >"$STATE/owner"
  fi
  # munged needs every folder above its socket searchable by all; the key
  # sits in a 0700 folder of its own.
  chmod 755 "$STATE"
  mkdir -p "$STATE"/{munge,munge-key,ctld,log,pids,run}
  chmod 700 "$STATE/munge-key"
  for h in "${nodes[@]}"; do mkdir -p "$STATE/spool/$h"; done   # slurmd does not make it
  write_conf "$ctld" "$port" "${lines[@]}"
  printf 'export SLURM_CONF=%q\n' "$STATE/slurm.conf" >"$STATE/env"

  mungekey --create --keyfile="$STATE/munge-key/munge.key" </dev/null
  start_daemon munged - munged -F --key-file="$STATE/munge-key/munge.key" \
    --socket="$STATE/munge/munge.sock" --pid-file="$STATE/munge/munged.pid" \
    --log-file="$STATE/log/munged.log" --seed-file="$STATE/munge/munged.seed"
  if [ -n "$VCNAME" ]; then
    # (vcluster also starts an sshd in each host; Slurm does not use them.)
    vc "$STATE" up "$N" >"$STATE/log/vcluster.out" 2>&1 ||
      { cat "$STATE/log/vcluster.out" >&2; die "vcluster.sh up $N failed"; }
  fi
  wait_for "munged's socket" test -S "$STATE/munge/munge.sock"
  # slurmctld first: a slurmd that finds no controller retries only 1 s later.
  if [ "$N" = 1 ]; then h=-; else h=h1; fi
  start_daemon slurmctld "$h" slurmctld -D -f "$STATE/slurm.conf"
  wait_for "slurmctld listening on port $port" port_busy "$port" "$(cat "$STATE/pids/slurmctld")"
  for p in "${nodes[@]}"; do
    if [ "$N" = 1 ]; then h=-; else h=$p; fi
    start_daemon "slurmd.$p" "$h" slurmd -D -N "$p" -f "$STATE/slurm.conf"
  done
  wait_for "$N node(s) idle" nodes_idle
  trap - EXIT INT TERM HUP
  log "${nodes[*]} idle in $(($(now_ms) - t0)) ms (slurmctld port $port; state $STATE)"
}

cmd_down() {
  local t0
  t0=$(now_ms)
  need_root
  take_lock
  if [ ! -e "$STATE" ]; then log "nothing in $STATE"; return 0; fi
  down_state "$STATE" || exit 1
  log "down in $(($(now_ms) - t0)) ms"
}

need_cluster() {
  load "$STATE"
  [ "$N" != 0 ] || die "no cluster in $STATE (run: $SELF up)"
}

cmd_env() { need_cluster; cat "$STATE/env"; }

cmd_on() { # NODE CMD...
  need_cluster
  [ $# -gt 1 ] || die "usage: on NODE CMD..."
  local h=$1
  shift
  export SLURM_CONF=$STATE/slurm.conf
  [ -n "$VCNAME" ] || exec "$@"
  VCLUSTER_NAME=$VCNAME VCLUSTER_STATE=$STATE/vc VCLUSTER_NET=$NET exec bash "$VC" exec "$h" "$@"
}

cmd_status() {
  local f
  need_cluster
  echo "$N node(s)${VCNAME:+ in fake hosts (vcluster $VCNAME)}, state $STATE"
  for f in "$STATE"/pids/*; do
    if alive "$(cat "$f")"; then echo "${f##*/}: running, pid $(cat "$f")"; else echo "${f##*/}: NOT running"; fi
  done
  on "$STATE" sinfo -N -l </dev/null || true
  on "$STATE" squeue </dev/null || true
}

cmd=${1:-}
shift || true
case "$cmd" in
  deps) cmd_deps ;;
  up) cmd_up "$@" ;;
  env) cmd_env ;;
  exec) cmd_on h1 "$@" ;;
  on) cmd_on "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) sed -n '/^# Usage/,/^# N=1/p' "$SELF" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
