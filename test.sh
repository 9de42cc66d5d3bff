#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite.
#   SANITIZE=1 ./test.sh   builds with AddressSanitizer and UBSan instead.
#   OFFLINE=1 ./test.sh    leaves out the tests labelled external (npm's
#                          openai client, headless Chromium, promtool) and
#                          the packages only they need.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/deps.sh
ctest_args=()
if [ "${OFFLINE:-0}" = 1 ]; then
  infsched_install_deps
  ctest_args+=(-LE external)
else
  infsched_install_deps test
fi

args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DINFSCHED_WERROR=ON)
dir=build
if [ "${SANITIZE:-0}" = 1 ]; then
  args+=(-DINFSCHED_SANITIZE=ON)
  dir=build-sanitize
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi
infsched_build "$dir" "${args[@]}"
cd "$dir"
ctest --output-on-failure -j"$(nproc)" --timeout 600 "${ctest_args[@]}"
