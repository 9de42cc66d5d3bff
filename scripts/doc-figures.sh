#!/bin/sh
# Reruns the commands whose output the docs quote, and puts their output
# back in the pages, so that a figure always comes with the command that
# produced it and can be brought up to date with one command.
#
#   scripts/doc-figures.sh [--check] BIN_DIR [PAGE...]
#
# A page quotes a command's output with a pair of marker lines:
#
#   <!-- output: build/bin/PROGRAM ARGS... -->
#   <!-- end output -->
#
# Everything between them is replaced by a code block of "$ COMMAND" and
# the command's standard output (run from the repository root, with
# build/bin standing for BIN_DIR). Only use it for output that does not
# depend on the machine: virtual-time runs (infsched-sim, bench_profiles),
# not wall-clock benchmarks. With --check nothing is written and the
# status is 1 when a page differs. PAGEs default to README.md and docs/*.md.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
check=0
if [ "${1:-}" = --check ]; then
  check=1
  shift
fi
if [ $# -lt 1 ] || [ "$1" = --help ] || [ "$1" = -h ]; then
  echo "usage: scripts/doc-figures.sh [--check] BIN_DIR [PAGE...]" >&2
  exit 2
fi
bin=$(cd "$1" && pwd)
shift
cd "$root"
[ $# -gt 0 ] || set -- README.md docs/*.md

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# run_quoted COMMAND: the code block quoting COMMAND and its output.
run_quoted() {
  cmd=$1
  case $cmd in
  build/bin/*) ;;
  *)
    echo "doc-figures: '$cmd' does not start with build/bin/" >&2
    return 1
    ;;
  esac
  # The status is not checked: a comparison that loses requests in one
  # policy exits 1 and still prints its table.
  (sh -c "$bin/${cmd#build/bin/}" 2>/dev/null || true) >"$tmp/out"
  if [ ! -s "$tmp/out" ]; then
    echo "doc-figures: '$cmd' printed nothing" >&2
    return 1
  fi
  echo '```'
  printf '$ %s\n' "$cmd"
  # paths under the checkout as the reader's
  awk -v root="$root/" '{
    while ((i = index($0, root)) > 0)
      $0 = substr($0, 1, i - 1) substr($0, i + length(root))
    print
  }' "$tmp/out"
  echo '```'
}

status=0
for page in "$@"; do
  out="$tmp/page"
  : >"$out"
  inside=0
  lineno=0
  failed=0
  while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    case $line in
    '<!-- output: '*' -->')
      printf '%s\n' "$line" >>"$out"
      cmd=${line#'<!-- output: '}
      cmd=${cmd%' -->'}
      echo "$page:$lineno: $cmd" >&2
      if ! run_quoted "$cmd" >>"$out"; then
        echo "$page:$lineno: cannot quote '$cmd'" >&2
        failed=1
      fi
      inside=1
      ;;
    '<!-- end output -->')
      if [ $inside = 0 ]; then
        echo "$page:$lineno: end of output without a start" >&2
        failed=1
      fi
      printf '%s\n' "$line" >>"$out"
      inside=0
      ;;
    *)
      [ $inside = 1 ] || printf '%s\n' "$line" >>"$out"
      ;;
    esac
  done <"$page"
  if [ $inside = 1 ]; then
    echo "$page: output marker without an end" >&2
    failed=1
  fi
  if [ $failed = 1 ]; then
    status=1
    continue
  fi
  cmp -s "$page" "$out" && continue
  if [ $check = 1 ]; then
    echo "$page: quoted output differs (run scripts/doc-figures.sh $bin):" >&2
    diff -u "$page" "$out" >&2 || true
    status=1
  else
    cp "$out" "$page"
    echo "updated $page"
  fi
done
exit $status
