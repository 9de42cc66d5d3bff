#!/bin/sh
# Regenerates the option tables of the docs from the programs' --help, so
# that a flag is described in one place: its program.
#
#   scripts/doc-options.sh [--check] BIN_DIR [PAGE...]
#
# A page asks for a table with a pair of marker lines:
#
#   <!-- options: PROGRAM [FLAG...] -->
#   <!-- end options -->
#
# Everything between them is replaced by PROGRAM's options (only the FLAGs
# named, when some are), one table per section of its --help. With --check
# nothing is written: the pages whose tables differ from --help are named,
# with the difference, and the status is 1. PAGEs default to README.md and
# docs/*.md.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
check=0
if [ "${1:-}" = --check ]; then
  check=1
  shift
fi
if [ $# -lt 1 ] || [ "$1" = --help ] || [ "$1" = -h ]; then
  echo "usage: scripts/doc-options.sh [--check] BIN_DIR [PAGE...]" >&2
  exit 2
fi
bin=$1
shift
cd "$root"
[ $# -gt 0 ] || set -- README.md docs/*.md

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# options_table PROGRAM [FLAG...]: the markdown tables of PROGRAM --help.
# An option line starts with spaces and a dash; its flag is the dashed
# words and the argument words after them (no lower-case letters), its
# meaning the rest plus the deeper-indented lines that follow. A line
# ending in ':' at the left margin titles the options right below it;
# sections titled "Internal" are left out.
options_table() {
  prog=$1
  shift
  if [ ! -x "$bin/$prog" ]; then
    echo "doc-options: no program $bin/$prog" >&2
    return 1
  fi
  "$bin/$prog" --help >"$tmp/help" 2>&1 || {
    echo "doc-options: $prog --help failed" >&2
    return 1
  }
  awk -v root="$root/" -v want="$*" -v prog="$prog" '
    function flush() {
      if (flag == "") return
      if (nwant == 0 || keep) {
        if (title != shown) {
          if (rows) print ""
          if (title != "") { print "**" title "**"; print "" }
          print "| flag | meaning |"
          print "|---|---|"
          shown = title
        }
        gsub(/\|/, "\\|", text)
        gsub(/\|/, "\\|", flag)
        print "| `" flag "` | " text " |"
        rows++
      }
      flag = ""
    }
    BEGIN {
      nwant = split(want, w, " ")
      for (i = 1; i <= nwant; i++) wanted[w[i]] = 0
      shown = "-"
    }
    {
      line = $0
      while ((i = index(line, root)) > 0)
        line = substr(line, 1, i - 1) substr(line, i + length(root))
    }
    line ~ /^[ \t]*$/ { flush(); para = ""; next }
    line ~ /^[^ \t]/ {
      flush()
      para = (para == "" ? line : para " " line)
      if (para ~ /:$/) {
        title = substr(para, 1, length(para) - 1)
        skip = (title ~ /^Internal/)
        para = ""
      }
      next
    }
    line ~ /^[ \t]+-/ {
      flush()
      if (skip) next
      sub(/^[ \t]+/, "", line)
      if (match(line, /[ \t][ \t]+/)) {
        flag = substr(line, 1, RSTART - 1)
        text = substr(line, RSTART + RLENGTH)
      } else {
        # The flag filled its column: its argument words are in capitals,
        # the meaning starts at the first word that is not.
        n = split(line, t, " ")
        flag = t[1]
        for (i = 2; i <= n && t[i] ~ /[A-Z]/ && t[i] !~ /[a-z]/; i++)
          flag = flag " " t[i]
        text = ""
        for (; i <= n; i++) text = (text == "" ? t[i] : text " " t[i])
      }
      keep = 0
      n = split(flag, t, " ")
      for (i = 1; i <= n; i++) {
        name = t[i]
        sub(/,$/, "", name)
        if (name in wanted) { keep = 1; wanted[name] = 1 }
      }
      next
    }
    flag != "" && line ~ /^[ \t][ \t][ \t][ \t]/ {
      sub(/^[ \t]+/, "", line)
      text = (text == "" ? line : text " " line)
      next
    }
    {
      # an indented line that is no option: the title introduced prose
      flush()
      title = ""
    }
    END {
      flush()
      bad = 0
      for (f in wanted)
        if (!wanted[f]) {
          print "doc-options: " prog " --help has no " f > "/dev/stderr"
          bad = 1
        }
      if (rows == 0) {
        print "doc-options: no options found in " prog " --help" > "/dev/stderr"
        bad = 1
      }
      exit bad
    }
  ' "$tmp/help"
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
    '<!-- options: '*' -->')
      if [ $inside = 1 ]; then
        echo "$page:$lineno: options marker inside another" >&2
        failed=1
      fi
      printf '%s\n' "$line" >>"$out"
      spec=${line#'<!-- options: '}
      spec=${spec%' -->'}
      # shellcheck disable=SC2086 # the words are the program and flags
      if ! options_table $spec >>"$out"; then
        echo "$page:$lineno: cannot make the table of '$spec'" >&2
        failed=1
      fi
      inside=1
      ;;
    '<!-- end options -->')
      if [ $inside = 0 ]; then
        echo "$page:$lineno: end of options without a start" >&2
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
    echo "$page: options marker without an end" >&2
    failed=1
  fi
  if [ $failed = 1 ]; then
    status=1
    continue
  fi
  if cmp -s "$page" "$out"; then
    continue
  fi
  if [ $check = 1 ]; then
    echo "$page: option tables differ from --help" \
      "(run scripts/doc-options.sh $bin):" >&2
    diff -u "$page" "$out" >&2 || true
    status=1
  else
    cp "$out" "$page"
    echo "updated $page"
  fi
done
exit $status
