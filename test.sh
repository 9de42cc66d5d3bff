#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite.
#   SANITIZE=1 ./test.sh   builds with AddressSanitizer and UBSan instead.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/deps.sh
infsched_install_deps test

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
ctest --output-on-failure -j"$(nproc)" --timeout 600
