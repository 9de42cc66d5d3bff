#!/usr/bin/env bash
# Chaos benchmark: a local cluster under a codex load, one fault injected
# per run once at least --open requests are open, and a table of what became
# of the requests and how long the cluster took to be whole again.
#
#   bench/chaos.sh [--bin-dir DIR] [--faults LIST] [--open N] [--duration S]
#
# Faults: worker-kill (SIGKILL of a worker), worker-stop (SIGSTOP of a
# worker for --stop-ms, then SIGCONT), scheduler-kill (SIGKILL of the
# scheduler; infsched-cluster restarts it), supervisor-kill (SIGKILL of
# infsched-cluster, then a new one is started), partition (a worker's link
# cut for --stop-ms and healed; needs root, the worker runs in a network
# namespace of its own).
#
# "recover" is the time from the end of the fault (the kill, the SIGCONT,
# the heal) until every worker is registered again with a scheduler. Every
# address is on loopback, or link-local on links that exist only inside
# this machine.
set -euo pipefail

usage() {
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
  cat <<EOF

Options:
  --bin-dir DIR   where the infsched programs are (default: build/bin)
  --faults LIST   comma-separated faults (default: all five)
  --open N        requests open when the fault is injected (default 20)
  --duration S    seconds of load per run (default 10)
  --stop-ms N     how long a SIGSTOP or a cut link lasts (default 2000)
  -h, --help      this text
EOF
}

BIN=build/bin
FAULTS=worker-kill,worker-stop,scheduler-kill,supervisor-kill,partition
OPEN=20
DURATION=10
STOP_MS=2000
while [ $# -gt 0 ]; do
  case $1 in
  --bin-dir) BIN=$2; shift 2 ;;
  --faults) FAULTS=$2; shift 2 ;;
  --open) OPEN=$2; shift 2 ;;
  --duration) DURATION=$2; shift 2 ;;
  --stop-ms) STOP_MS=$2; shift 2 ;;
  -h | --help) usage; exit 0 ;;
  *) echo "chaos.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
for p in infsched-cluster infsched-scheduler infsched-worker infsched-loadgen; do
  [ -x "$BIN/$p" ] || { echo "chaos.sh: $BIN/$p not found (--bin-dir)" >&2; exit 2; }
done
IFS=, read -r -a LIST <<<"$FAULTS"
for f in "${LIST[@]}"; do
  case $f in
  worker-kill | worker-stop | scheduler-kill | supervisor-kill | partition) ;;
  *) echo "chaos.sh: unknown fault '$f'" >&2; exit 2 ;;
  esac
done
BIN=$(cd "$BIN" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/infsched-chaos-XXXXXX)
PIDS=()
NETTAG=ic$$
NETADDR= # the scheduler's in the partition run, see claim_net
NET=
cleanup() {
  for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill -TERM "$p" 2>/dev/null || true; done
  ip link del "${NETTAG}b0" >/dev/null 2>&1 || true
  [ -z "$NETADDR" ] || ip addr del "$NETADDR/32" dev lo >/dev/null 2>&1 || true
  ip netns del "${NETTAG}b" >/dev/null 2>&1 || true
  if [ -n "${CHAOS_KEEP:-}" ]; then echo "chaos.sh: runs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# waits up to $1 ms for the command in $2.. to succeed
wait_for() {
  local deadline=$(($(now_ms) + $1))
  shift
  until "$@"; do
    [ "$(now_ms)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

metric() { # metric HTTP NAME: a gauge or counter's value, or nothing
  curl -sf "http://$1/metrics" 2>/dev/null | awk -v n="$2" '$1 == n {print int($2)}'
}
open_at_least() { local v; v=$(metric "$1" infsched_open_requests); [ -n "$v" ] && [ "$v" -ge "$2" ]; }
workers_are() { local v; v=$(metric "$1" infsched_workers); [ -n "$v" ] && [ "$v" -eq "$2" ]; }
log_count() { grep -c "$2" "$1" 2>/dev/null || true; }
more_lines() { [ "$(log_count "$1" "$2")" -gt "$3" ]; }

json_num() { # json_num FILE KEY: the first "KEY": number
  sed -n "s/.*\"$2\":[[:space:]]*\([0-9.]*\).*/\1/p" "$1" | head -1
}

cluster_file() {
  cat >"$1" <<EOF
profiles: $SRC/configs/profiles.yaml
scheduler:
  heartbeat_ms: 100
  heartbeat_miss: 3
workers:
  - name: gpu
    profile: gpu-h100
    count: 2
  - name: sram
    profile: sram-wse3
EOF
}

start_loadgen() { # start_loadgen CLIENTS DIR
  "$BIN/infsched-loadgen" --scheduler "$1" \
    --workload "codex:$SRC/configs/workloads/codex.yaml" --sessions 40 \
    --think-time lognormal:300:0.5:50:1000 --tool-time lognormal:100:1:10:500 \
    --max-context 32768 --set answer_tokens=lognormal:184:1.27:8:400 \
    --set job_output_tokens=lognormal:300:0.5:32:400 \
    --duration "$DURATION" --drain 60 --seed 5 \
    --report-json "$2/report.json" >"$2/loadgen.log" 2>&1 &
  LOADGEN=$!
}

ROWS=()
row() { # row FAULT OPEN DIR RECOVER_MS
  local r=$3/report.json
  if [ ! -s "$r" ]; then
    ROWS+=("$(printf '%-16s %6s %9s %7s %5s %11s' "$1" "$2" - - - "$4")")
    return
  fi
  local why
  why=$(sed -n '/"errors":/,/}/p' "$r" | grep -o '"ERROR_[A-Z_]*":[[:space:]]*[0-9]*' |
    tr -d '" \t' | paste -sd, -) || true
  ROWS+=("$(printf '%-16s %6s %9s %7s %5s %11s  %s' "$1" "$2" \
    "$(json_num "$r" completed)/$(json_num "$r" sent)" \
    "$(json_num "$r" failed)" "$(json_num "$r" lost)" "$4" "$why")")
}

up_or_gone() { more_lines "$1" "cluster up" 0 || ! kill -0 "$2" 2>/dev/null; }

# Starts "${up[@]}" logging to $1; true once it is up (its pid in AGAIN).
start_again() {
  "${up[@]}" >"$1" 2>&1 &
  AGAIN=$!
  PIDS+=("$AGAIN")
  wait_for 10000 up_or_gone "$1" "$AGAIN"
  more_lines "$1" "cluster up" 0 && return 0
  wait "$AGAIN" 2>/dev/null || true
  return 1
}

# One run with infsched-cluster: worker-kill, worker-stop, scheduler-kill,
# supervisor-kill.
run_cluster() {
  local fault=$1 dir=$WORK/$1
  mkdir -p "$dir"
  local c w h
  c=$(free_port); w=$(free_port); h=$(free_port)
  cluster_file "$dir/cluster.yaml"
  local up=("$BIN/infsched-cluster" up "$dir/cluster.yaml" --bin-dir "$BIN"
    --clients "tcp://127.0.0.1:$c" --workers "tcp://127.0.0.1:$w"
    --http "127.0.0.1:$h")
  "${up[@]}" >"$dir/cluster.log" 2>&1 &
  local sup=$!
  PIDS+=("$sup")
  wait_for 20000 more_lines "$dir/cluster.log" "cluster ready" 0 ||
    { echo "chaos.sh: $fault: the cluster did not come up" >&2; return 1; }
  start_loadgen "tcp://127.0.0.1:$c" "$dir"
  wait_for 30000 open_at_least "127.0.0.1:$h" "$OPEN" || true
  local open ready t0 log=$dir/cluster.log
  open=$(metric "127.0.0.1:$h" infsched_open_requests)
  ready=$(log_count "$log" "cluster ready")
  local victim
  victim=$(sed -n 's/.*started gpu-0 pid \([0-9]*\).*/\1/p' "$log" | tail -1)
  case $fault in
  worker-kill)
    kill -KILL "$victim"; t0=$(now_ms) ;;
  worker-stop)
    kill -STOP "$victim"; sleep "$(awk -v m="$STOP_MS" 'BEGIN{print m/1000}')"
    kill -CONT "$victim"; t0=$(now_ms) ;;
  scheduler-kill)
    kill -KILL "$(sed -n 's/.*started scheduler pid \([0-9]*\).*/\1/p' "$log" | tail -1)"
    t0=$(now_ms) ;;
  supervisor-kill)
    kill -KILL "$sup"; t0=$(now_ms)
    wait "$sup" 2>/dev/null || true
    log=$dir/cluster2.log; ready=0
    # Started again until its children's ports are free.
    until start_again "$log"; do
      [ $(($(now_ms) - t0)) -lt 20000 ] || break
      sleep 0.1
    done
    sup=$AGAIN ;;
  esac
  local rec=-
  if wait_for 60000 more_lines "$log" "cluster ready" "$ready"; then
    rec="$(($(now_ms) - t0)) ms"
  fi
  wait "$LOADGEN" || true
  row "$fault" "${open:-?}" "$dir" "$rec"
  kill -TERM "$sup" 2>/dev/null || true
  wait "$sup" 2>/dev/null || true
}

# Runs on one machine at once each take a 169.254.N.0/24 of their own: the
# scheduler's address, 169.254.N.9 on the loopback, can be added only once.
claim_net() {
  local i n
  for i in $(seq 0 249); do
    n=$((1 + ($$ + i) % 250))
    if ip addr add "169.254.$n.9/32" dev lo >/dev/null 2>&1; then
      NET=$n
      NETADDR=169.254.$n.9
      return 0
    fi
  done
  return 1
}

# The partition: a scheduler and two workers, one in a namespace of its own
# behind a veth pair whose root side is taken down and up again.
run_partition() {
  local dir=$WORK/partition t=$NETTAG
  mkdir -p "$dir"
  if [ "$(id -u)" -ne 0 ] || ! ip netns add "${t}b" >/dev/null 2>&1; then
    ROWS+=("$(printf '%-16s %s' partition 'skipped: needs root and network namespaces')")
    return
  fi
  claim_net &&
    ip link add "${t}b0" type veth peer name "${t}b1" &&
    ip link set "${t}b1" netns "${t}b" &&
    ip addr add "169.254.$NET.1/30" dev "${t}b0" && ip link set "${t}b0" up &&
    ip netns exec "${t}b" ip addr add "169.254.$NET.2/30" dev "${t}b1" &&
    ip netns exec "${t}b" ip link set "${t}b1" up &&
    ip netns exec "${t}b" ip link set lo up &&
    ip netns exec "${t}b" ip route add default via "169.254.$NET.1"
  local c w h
  c=$(free_port); w=$(free_port); h=$(free_port)
  local wa=tcp://$NETADDR:$w
  "$BIN/infsched-scheduler" --clients "tcp://127.0.0.1:$c" --workers "$wa" \
    --http "127.0.0.1:$h" --heartbeat-ms 100 --heartbeat-miss 3 \
    --log-level warn >"$dir/scheduler.log" 2>&1 &
  PIDS+=($!)
  local prof=$SRC/configs/profiles.yaml
  "$BIN/infsched-worker" --scheduler "$wa" --id host-a --profile gpu-h100 \
    --profiles "$prof" --log-level warn >"$dir/a.log" 2>&1 &
  PIDS+=($!)
  ip netns exec "${t}b" "$BIN/infsched-worker" --scheduler "$wa" --id host-b \
    --profile gpu-h100 --profiles "$prof" --log-level warn >"$dir/b.log" 2>&1 &
  PIDS+=($!)
  wait_for 20000 workers_are "127.0.0.1:$h" 2 ||
    { echo "chaos.sh: partition: the workers did not register" >&2; return 1; }
  start_loadgen "tcp://127.0.0.1:$c" "$dir"
  wait_for 30000 open_at_least "127.0.0.1:$h" "$OPEN" || true
  local open t0
  open=$(metric "127.0.0.1:$h" infsched_open_requests)
  ip link set "${t}b0" down
  sleep "$(awk -v m="$STOP_MS" 'BEGIN{print m/1000}')"
  ip link set "${t}b0" up
  t0=$(now_ms)
  local rec=-
  if wait_for 60000 workers_are "127.0.0.1:$h" 2; then
    rec="$(($(now_ms) - t0)) ms"
  fi
  wait "$LOADGEN" || true
  row partition "${open:-?}" "$dir" "$rec"
}

i=0
for f in "${LIST[@]}"; do
  # Each run takes half a minute or more: say where the benchmark is.
  i=$((i + 1))
  echo "chaos.sh: $f ($i of ${#LIST[@]})" >&2
  case $f in
  worker-kill | worker-stop | scheduler-kill | supervisor-kill) run_cluster "$f" ;;
  partition) run_partition ;;
  esac
done

printf '%-16s %6s %9s %7s %5s %11s  %s\n' fault open completed failed lost recover errors
for r in "${ROWS[@]}"; do echo "$r"; done
