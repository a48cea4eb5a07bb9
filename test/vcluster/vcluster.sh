#!/usr/bin/env bash
# vcluster.sh - N fake hosts on this Linux machine, for gorun's multi-host tests.
#
# Host hI (I = 1..N) is a set of namespaces held by one "anchor" process
# (a `sleep infinity` named gorun-vcluster:NAME:hI):
#   net   its own netns NAME-hI: lo and eth0 = NET.I/24, a veth cabled to port
#         hI of a bridge that lives alone in the netns NAME-sw. No default
#         route, and nothing is added to the root namespace.
#   mount a private tmpfs on /dev/shm, and bind mounts of a generated
#         /etc/hosts (h1..hN) and /etc/ssh/ssh_config (so plain `ssh h2` works
#         from inside a host). The rest of the filesystem is shared: a test's
#         binaries have the same path on every host.
#   uts   hostname hI;  ipc: its own SysV IPC.
# There is no pid namespace: /proc is the same everywhere, so a test sees and
# can signal every process of every host. Each host runs an sshd on NET.I:22
# that lets root in with a key made by `up`.
#
# Usage, as root:
#   vcluster.sh up N           create h1..hN (first removes a cluster of the same NAME)
#   vcluster.sh down           kill every process of the hosts, delete the namespaces and
#                              the state folder; a no-op when there is nothing (idempotent)
#   vcluster.sh exec HOST CMD  run CMD inside HOST (argv, environment and cwd kept)
#   vcluster.sh status         one line per host
#   vcluster.sh check          hostnames, ssh from h1 to every host, private /dev/shm
#   vcluster.sh kill HOST      SIGKILL every process of HOST but its anchor (the host's
#                              kernel lives on: peers get RST at once)
#   vcluster.sh unplug HOST    set HOST's switch port down (a partition: peers hear nothing)
#   vcluster.sh plug HOST      set it up again
#
# Environment:
#   VCLUSTER_NAME   [a-z0-9]{1,8}, prefix of the namespaces (default gv). Clusters of
#                   different names may run at the same time.
#   VCLUSTER_STATE  state folder, seen at the same path by the hosts
#                   (default /run/gorun-vcluster-NAME)
#   VCLUSTER_NET    first three octets of the hosts' /24 (default 10.213.0)
#
# The state folder holds: hosts, ssh_config, id_ed25519 (client key), host_key,
# hI/{anchor.pid,sshd_config,sshd.log}, N (the number of hosts) and NET.
# Facts behind the choices below: ../../../shared/vcluster/NOTES.md.

set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
SSHD=/usr/sbin/sshd # sshd re-executes itself: it needs its absolute path
NAME=${VCLUSTER_NAME:-gv}
STATE=$(readlink -m "${VCLUSTER_STATE:-/run/gorun-vcluster-$NAME}")
SW=$NAME-sw
# A running cluster's size and network are in its state folder.
N=$(cat "$STATE/N" 2>/dev/null || echo 0)
NET=${VCLUSTER_NET:-$(cat "$STATE/NET" 2>/dev/null || echo 10.213.0)}
[ "${1:-}" != up ] || NET=${VCLUSTER_NET:-10.213.0}

die() { echo "vcluster: $*" >&2; exit 1; }
[[ $NAME =~ ^[a-z0-9]{1,8}$ ]] || die "VCLUSTER_NAME must be 1-8 of [a-z0-9]"
[[ $NET =~ ^10\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "VCLUSTER_NET must be 10.x.y"
[ "$STATE" != / ] || die "refusing STATE=/"
ns() { echo "$NAME-$1"; }
ip_of() { echo "$NET.${1#h}"; }

# One lock for up, down and kill, on this file (not on /run/netns, which
# `ip netns add` flocks itself).
lock() { exec 9<"$SELF"; flock -w 120 9 || die "lock held too long"; }

valid_host() {
  [[ ${1:-} =~ ^h([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -ge 1 ] && [ "${BASH_REMATCH[1]}" -le "$N" ] ||
    die "no host '${1:-}' in cluster $NAME ($N hosts)"
}

# The anchor's pid, checked against the netns so that a recycled pid is not taken.
anchor() {
  local pid ino
  pid=$(cat "$STATE/$1/anchor.pid" 2>/dev/null) || return 1
  ino=$(stat -L -c %i "/run/netns/$(ns "$1")" 2>/dev/null) || return 1
  [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "net:[$ino]" ] || return 1
  echo "$pid"
}

# SIGKILL every process in the given namespaces except the pids in $KEEP,
# until none is left. `ip netns pids` finds them whoever their parent is.
KEEP=
kill_in() {
  local i pids p n
  for ((i = 0; i < 200; i++)); do
    pids=
    for n in "$@"; do
      for p in $(ip netns pids "$n" 2>/dev/null); do
        [[ " $KEEP " == *" $p "* ]] || pids+=" $p"
      done
    done
    [ -n "$pids" ] || return 0
    kill -KILL $pids 2>/dev/null || true
    sleep 0.02
  done
  die "still alive in $*:$pids"
}

# --- inside the anchor: runs in the host's fresh namespaces
anchor_main() {
  local h=$1 fd
  cd /
  mount -t tmpfs -o mode=1777,nosuid,nodev,size=512m "$NAME-$h" /dev/shm
  mount --bind "$STATE/hosts" /etc/hosts
  [ ! -f /etc/ssh/ssh_config ] || mount --bind "$STATE/ssh_config" /etc/ssh/ssh_config
  echo "$h" >/proc/sys/kernel/hostname
  # Hold no descriptor of the caller: a pipe kept open would hang its reader.
  for fd in /proc/$$/fd/*; do
    fd=${fd##*/}
    [ "$fd" -le 2 ] || eval "exec $fd>&-" 2>/dev/null || true
  done
  echo $$ >"$STATE/$h/anchor.pid"
  exec -a "gorun-vcluster:$NAME:$h" sleep infinity
}

write_files() {
  local i usepam=no
  # sshd refuses a locked account ('!' in shadow) even with a key unless PAM decides.
  case "$(getent shadow root | cut -d: -f2)" in '!'*) usepam=yes ;; esac
  echo "$N" >"$STATE/N"
  echo "$NET" >"$STATE/NET"
  { echo "127.0.0.1 localhost"; for ((i = 1; i <= N; i++)); do echo "$(ip_of h$i) h$i"; done; } >"$STATE/hosts"
  cat >"$STATE/ssh_config" <<EOF
Host *
  User root
  IdentityFile $STATE/id_ed25519
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  GlobalKnownHostsFile /dev/null
  BatchMode yes
  LogLevel ERROR
  ConnectTimeout 5
EOF
  ssh-keygen -q -t ed25519 -N '' -C "vcluster-$NAME" -f "$STATE/host_key" </dev/null
  ssh-keygen -q -t ed25519 -N '' -C "vcluster-$NAME" -f "$STATE/id_ed25519" </dev/null
  for ((i = 1; i <= N; i++)); do
    mkdir -p "$STATE/h$i"
    # StrictModes no: the keys may live under a world-writable folder.
    # MaxStartups: a launcher opens many sessions at once (default drops beyond 10).
    # ClientAlive: a session whose client is cut off ends within seconds.
    cat >"$STATE/h$i/sshd_config" <<EOF
ListenAddress $(ip_of h$i)
HostKey $STATE/host_key
PidFile none
AuthorizedKeysFile $STATE/id_ed25519.pub
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM $usepam
StrictModes no
UseDNS no
PrintMotd no
MaxStartups 256
MaxSessions 256
ClientAliveInterval 2
ClientAliveCountMax 3
LogLevel ERROR
EOF
  done
}

cmd_up() {
  local i h p
  [[ ${1:-} =~ ^[1-9][0-9]?$ ]] || die "usage: up N (1..99)"
  [ "$(id -u)" = 0 ] || die "must run as root"
  for p in ip nsenter unshare setsid ss flock ssh ssh-keygen $SSHD; do
    command -v "$p" >/dev/null || die "missing $p (apt-get install iproute2 util-linux openssh-client openssh-server)"
  done
  lock
  do_down # leftovers of a run killed before its down
  N=$1
  trap 'st=$?; [ $st = 0 ] || { echo "vcluster: up failed, removing what it made" >&2; do_down; }' EXIT
  trap 'exit 143' TERM INT HUP
  mkdir -p "$STATE"
  chmod 700 "$STATE"
  write_files
  [ -d /run/sshd ] || install -d -m 0755 /run/sshd # sshd's privilege separation dir
  ip netns add "$SW"
  ip -n "$SW" link add br0 type bridge
  ip -n "$SW" link set br0 up
  for ((i = 1; i <= N; i++)); do
    h=h$i
    ip netns add "$(ns $h)"
    # Made directly in both namespaces: the root namespace never holds it.
    ip link add eth0 netns "$(ns $h)" type veth peer name "$h" netns "$SW"
    ip -n "$SW" link set "$h" master br0 up
    ip -n "$(ns $h)" link set lo up
    ip -n "$(ns $h)" addr add "$(ip_of $h)/24" dev eth0
    ip -n "$(ns $h)" link set eth0 up
    # slave: the host's mounts never reach the root namespace. 9<&-: not the lock.
    VCLUSTER_NAME=$NAME VCLUSTER_STATE=$STATE VCLUSTER_NET=$NET \
      setsid nsenter --net="/run/netns/$(ns $h)" -- unshare --mount --uts --ipc --propagation slave -- \
      bash "$SELF" _anchor "$h" </dev/null >"$STATE/$h/anchor.log" 2>&1 9<&- &
  done
  for ((i = 1; i <= N; i++)); do
    h=h$i
    for ((p = 0; p < 500; p++)); do anchor $h >/dev/null && break; sleep 0.01; done
    anchor $h >/dev/null || { cat "$STATE/$h/anchor.log" >&2; die "$h: anchor did not start"; }
    setsid nsenter -t "$(anchor $h)" --net --mount --uts --ipc --wd=/ -- \
      "$SSHD" -D -f "$STATE/$h/sshd_config" -E "$STATE/$h/sshd.log" </dev/null >/dev/null 2>&1 9<&- &
  done
  for ((i = 1; i <= N; i++)); do
    h=h$i
    for ((p = 0; p < 500; p++)); do
      [ -z "$(ss -N "$(ns $h)" -Hltn 'sport = :22' 2>/dev/null)" ] || continue 2
      sleep 0.01
    done
    cat "$STATE/$h/sshd.log" >&2 2>/dev/null || true
    die "$h: sshd does not listen"
  done
  trap - EXIT TERM INT HUP
  echo "vcluster: $NAME up: h1..h$N, state in $STATE"
}

do_down() {
  local names f a0
  names=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$NAME-(h[0-9]+|sw)\$" || true)
  KEEP= kill_in $names
  # Anchors and sshds whose netns name is already gone, by their argv[0]
  # (sshd rewrites its own to "sshd: /usr/sbin/sshd -D -f CONFIG ...").
  for f in /proc/[0-9]*/cmdline; do
    a0=
    IFS= read -r -d '' a0 2>/dev/null <"$f" || true # (the process may be gone)
    [[ $a0 == "gorun-vcluster:$NAME:h"* || $a0 == *" -f $STATE/h"*/sshd_config* ]] || continue
    f=${f#/proc/}
    kill -KILL "${f%/cmdline}" 2>/dev/null || true
  done
  for f in $names; do ip netns del "$f" 2>/dev/null || true; done
  # Only a folder this script made (it holds N) is removed.
  [ ! -f "$STATE/N" ] || rm -rf "$STATE"
}

cmd_exec() {
  local h=${1:-} wd=$PWD a
  valid_host "$h"
  shift
  [ $# -gt 0 ] || die "usage: exec HOST CMD..."
  a=$(anchor "$h") || die "$h is down"
  case "$wd/" in /dev/shm/*) wd=/ ;; esac # the host's /dev/shm is another folder
  exec nsenter -t "$a" --net --mount --uts --ipc --wd="$wd" -- "$@"
}

cmd_status() {
  local i h st link procs
  [ "$N" -gt 0 ] || { echo "vcluster: no cluster $NAME (state $STATE)"; return 0; }
  for ((i = 1; i <= N; i++)); do
    h=h$i
    if anchor $h >/dev/null; then st=up; else st=down; fi
    link=$(ip -n "$SW" -br link show "$h" 2>/dev/null | awk '{print $2}') || true
    procs=$(ip netns pids "$(ns $h)" 2>/dev/null | wc -l) || true
    printf '%-4s %-14s %-4s link=%-5s processes=%s\n' "$h" "$(ip_of $h)" "$st" "${link:-none}" "$procs"
  done
}

cmd_check() {
  local i h got tok=vcluster-check-$$ fail=0
  [ "$N" -gt 0 ] || die "no cluster $NAME"
  for ((i = 1; i <= N; i++)); do
    h=h$i
    got=$("$SELF" exec h1 ssh "$h" "hostname; touch /dev/shm/$tok" </dev/null) || true
    [ "$got" = "$h" ] || { echo "vcluster: ssh h1 -> $h gave '$got'" >&2; fail=1; }
  done
  for ((i = 1; i <= N; i++)); do
    got=$("$SELF" exec h$i sh -c "ls /dev/shm | grep -c '^$tok\$'") || true
    [ "$got" = 1 ] || { echo "vcluster: h$i sees $got of its own /dev/shm file" >&2; fail=1; }
    "$SELF" exec h$i rm -f "/dev/shm/$tok"
  done
  [ ! -e "/dev/shm/$tok" ] || { rm -f "/dev/shm/$tok"; echo "vcluster: /dev/shm is not private" >&2; fail=1; }
  [ $fail = 0 ] || die "check failed"
  echo "vcluster: check ok ($N hosts)"
}

cmd=${1:-}
shift || true
case "$cmd" in
  up) cmd_up "$@" ;;
  down) lock; do_down ;;
  exec) cmd_exec "$@" ;;
  status) cmd_status ;;
  check) cmd_check ;;
  kill) valid_host "${1:-}"; lock; KEEP=$(anchor "$1" || true) kill_in "$(ns "$1")" ;;
  unplug | plug)
    valid_host "${1:-}"
    ip -n "$SW" link set "$1" "$([ "$cmd" = plug ] && echo up || echo down)" ;;
  _anchor) anchor_main "$@" ;;
  *) sed -n '/^# Usage/,/^# Environment/p' "$SELF" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
