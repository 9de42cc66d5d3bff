#!/usr/bin/env bash
# Builds infsched, starts the local cluster of configs/local.yaml (one
# scheduler, two GPU-, two SRAM- and two TPU-class simulated workers), drives
# a short Codex-style load through it, prints the report and stops it all.
#   DEMO_DURATION=30 DEMO_SESSIONS=16 ./demo.sh   for a longer or heavier run.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/deps.sh
infsched_install_deps
infsched_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DINFSCHED_WERROR=ON

bin=build/bin
config=configs/local.yaml
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
"$bin/infsched-cluster" up "$config" >"$log" 2>&1 &
cluster_pid=$!
for _ in $(seq 300); do
  grep -q "cluster ready" "$log" && break
  if ! kill -0 "$cluster_pid" 2>/dev/null; then
    echo "the cluster did not start:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
  sleep 0.1
done
grep -q "cluster ready" "$log" || { echo "cluster not ready after 30 s" >&2; exit 1; }
grep "cluster ready" "$log"

echo "== driving ${DEMO_DURATION:-10} s of ${DEMO_SESSIONS:-8} coding-agent sessions"
status=0
"$bin/infsched-loadgen" --scheduler tcp://127.0.0.1:5555 \
  --workload codex:configs/workloads/codex-demo.yaml \
  --sessions "${DEMO_SESSIONS:-8}" --duration "${DEMO_DURATION:-10}" \
  --seed 1 --drain 60 --report-json "$out/report.json" \
  --report-html "$out/report.html" || status=$?

echo "== stopping the cluster"
stop_cluster
echo "report: $out/report.json, $out/report.html"
exit "$status"
