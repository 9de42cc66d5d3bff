#!/usr/bin/env bash
# Installs the Debian packages infsched builds and tests with, when missing.
# Sourced by demo.sh (build packages) and test.sh (build and test packages).
INFSCHED_PACKAGES=(
  cmake make gcc pkg-config
  libuv1-dev libzmq3-dev libprotobuf-c-dev protobuf-c-compiler
  libyaml-dev libcjson-dev libhttp-parser-dev libcurl4-openssl-dev
  libxxhash-dev libcmocka-dev libpng-dev curl
)
# Only the test suite runs these: promtool checks /metrics, headless
# Chromium renders the HTML report, clang and its libFuzzer build fuzz/,
# iproute2 makes the network namespaces of test_netns.
INFSCHED_TEST_PACKAGES=(prometheus chromium clang libclang-rt-14-dev iproute2)

# infsched_install_deps [test]: installs the build packages, and with
# "test" the test suite's tools too.
infsched_install_deps() {
  local wanted=("${INFSCHED_PACKAGES[@]}")
  [ "${1:-}" = test ] && wanted+=("${INFSCHED_TEST_PACKAGES[@]}")
  local missing=()
  local p
  for p in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
      missing+=("$p")
    fi
  done
  # The HTTP tests run the openai npm client. Node.js may come from
  # elsewhere than Debian (with npm inside it): only the commands matter.
  if [ "${1:-}" = test ] && { ! command -v node >/dev/null || ! command -v npm >/dev/null; }; then
    missing+=(nodejs npm)
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}" >&2
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
      echo "error: missing packages (${missing[*]}) and not root" >&2
      return 1
    }
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

# infsched_build DIR [cmake args...]: configures and builds into DIR.
infsched_build() {
  local dir=$1
  shift
  cmake -S . -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$(nproc)"
}
