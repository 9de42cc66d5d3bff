#!/usr/bin/env bash
# Builds infsched, starts the local cluster of configs/local.yaml (one
# scheduler, two GPU-, two SRAM- and two TPU-class simulated workers), drives
# a short Codex-style load through it, prints the report and stops it all.
#   DEMO_DURATION=30 DEMO_SESSIONS=16 ./demo.sh   for a longer or heavier run.
#   DEMO_CLIENTS_PORT=6555 DEMO_WORKERS_PORT=6556 DEMO_HTTP_PORT=9080 ./demo.sh
#                     when 5555, 5556 or 8080 are taken on this machine.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/deps.sh
infsched_install_deps
infsched_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DINFSCHED_WERROR=ON

bin=build/bin
config=configs/local.yaml
clients_port=${DEMO_CLIENTS_PORT:-5555}
workers_port=${DEMO_WORKERS_PORT:-5556}
http_port=${DEMO_HTTP_PORT:-8080}

# A port something already listens on is named, with the variable that
# moves the demo off it, before anything starts.
taken=0
for spec in "$clients_port DEMO_CLIENTS_PORT clients" \
  "$workers_port DEMO_WORKERS_PORT workers" "$http_port DEMO_HTTP_PORT HTTP API"; do
  read -r port var what <<<"$spec"
  case $port in
  '' | *[!0-9]*)
    echo "$var=$port is not a port number" >&2
    exit 2
    ;;
  esac
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port ($what) is taken on 127.0.0.1; choose another with" \
      "$var=PORT ./demo.sh" >&2
    taken=1
  fi
done
[ "$taken" = 0 ] || exit 3
out=build/demo
mkdir -p "$out"
log=$out/cluster.log
: >"$log"

cluster_pid=
stop_cluster() {
  if [ -n "$cluster_pid" ] && kill -0 "$cluster_pid" 2>/dev/null; then
    kill -TERM "$cluster_pid"
    wait "$cluster_pid" || true
  fi
  cluster_pid=
}
trap stop_cluster EXIT INT TERM

echo "== starting the cluster from $config (log: $log)"
"$bin/infsched-cluster" up "$config" \
  --clients "tcp://127.0.0.1:$clients_port" \
  --workers "tcp://127.0.0.1:$workers_port" \
  --http "127.0.0.1:$http_port" >"$log" 2>&1 &
cluster_pid=$!
for _ in $(seq 300); do
  grep -q "cluster ready" "$log" && break
  if ! kill -0 "$cluster_pid" 2>/dev/null; then
    echo "the cluster did not start:" >&2
    tail -n 20 "$log" >&2
    if grep -q "in use" "$log"; then
      echo "a port is taken; choose others with DEMO_CLIENTS_PORT," \
        "DEMO_WORKERS_PORT or DEMO_HTTP_PORT" >&2
    fi
    exit 3
  fi
  sleep 0.1
done
grep -q "cluster ready" "$log" || { echo "cluster not ready after 30 s" >&2; exit 1; }
grep "cluster ready" "$log"

echo "== driving ${DEMO_DURATION:-10} s of ${DEMO_SESSIONS:-8} coding-agent sessions"
status=0
"$bin/infsched-loadgen" --scheduler "tcp://127.0.0.1:$clients_port" \
  --workload codex:configs/workloads/codex-demo.yaml \
  --sessions "${DEMO_SESSIONS:-8}" --duration "${DEMO_DURATION:-10}" \
  --seed 1 --drain 60 --report-json "$out/report.json" \
  --report-html "$out/report.html" || status=$?

echo "== stopping the cluster"
stop_cluster
echo "report: $out/report.json, $out/report.html"
exit "$status"
