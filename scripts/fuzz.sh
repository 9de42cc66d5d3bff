#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang into build-fuzz and runs
# each for SECONDS (default 300), one after the other.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 3600 core
#
# Targets: wire core http oai profiles cluster codex trace keys (default: all).
# Inputs that reach new code are kept in build-fuzz/fuzz-corpus/TARGET; to
# seed later runs with them, merge them into the repository's corpus:
#   build-fuzz/bin/fuzz_TARGET -merge=1 fuzz/corpus/TARGET \
#     build-fuzz/fuzz-corpus/TARGET
# A crash is copied to fuzz/regressions/TARGET/, where every build's
# fuzz_TARGET_replay test runs it from then on; the status is then 1.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-300}
[ $# -gt 0 ] && shift
case $secs in
  -h | --help)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *[!0-9]* | '')
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
    exit 2
    ;;
esac
command -v clang >/dev/null || {
  echo "scripts/fuzz.sh: clang is missing (scripts/deps.sh installs it)" >&2
  exit 2
}
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DINFSCHED_FUZZ=ON -DINFSCHED_FUZZ_SECONDS="$secs" >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz
rm -rf build-fuzz/fuzz-crashes
mkdir -p build-fuzz/fuzz-crashes
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(wire core http oai profiles cluster codex trace keys)
regex="^fuzz_($(IFS='|'; echo "${names[*]}"))\$"
status=0
(cd build-fuzz && ctest -R "$regex" --output-on-failure \
  --timeout $((secs + 120))) || status=1
for crash in build-fuzz/fuzz-crashes/*; do
  [ -e "$crash" ] || continue
  base=$(basename "$crash")
  target=${base%%-*}
  mkdir -p "fuzz/regressions/$target"
  cp "$crash" "fuzz/regressions/$target/${base#*-}"
  echo "kept fuzz/regressions/$target/${base#*-}" >&2
  status=1
done
exit $status
