#!/bin/sh
# Regenerates what the docs take from the programs, so that it is written
# in one place: the option tables (from each program's --help), tables a
# program prints in Markdown and, with --figures, the output the pages
# quote from virtual-time runs.
#
#   scripts/doc-gen.sh [--check] [--figures] BIN_DIR [PAGE...]
#
# A page asks for an option table with a pair of marker lines:
#
#   <!-- options: PROGRAM [FLAG...] -->
#   <!-- end options -->
#
# Everything between them is replaced by PROGRAM's options (only the FLAGs
# named, when some are), one table per section of its --help.
#
# A page quotes a command's output with:
#
#   <!-- output: build/bin/PROGRAM ARGS... -->
#   <!-- end output -->
#
# With --figures, everything between them is replaced by a code block of
# "$ COMMAND" and the command's standard output (run from the repository
# root, with build/bin standing for BIN_DIR); without, they are left as
# they are. Only quote output that does not depend on the machine:
# virtual-time runs (infsched-sim, bench_profiles), not wall-clock
# benchmarks; they take tens of seconds, hence the flag.
#
# A page takes a program's Markdown as it is (a table the program prints,
# such as "infsched-cluster settings") with:
#
#   <!-- markdown: build/bin/PROGRAM ARGS... -->
#   <!-- end markdown -->
#
# Such a command must be quick: it is run every time, as the options are.
#
# With --check nothing is written: the pages that differ are named, with
# the difference, and the status is 1. PAGEs default to README.md and
# docs/*.md.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
check=0
figures=0
while [ $# -gt 0 ]; do
  case $1 in
  --check) check=1 ;;
  --figures) figures=1 ;;
  *) break ;;
  esac
  shift
done
if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then
  sed -n '2,39p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
if [ $# -lt 1 ]; then
  echo "usage: scripts/doc-gen.sh [--check] [--figures] BIN_DIR [PAGE...]" >&2
  exit 2
fi
bin=$(cd "$1" && pwd)
shift
cd "$root"
[ $# -gt 0 ] || set -- README.md docs/*.md

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# options_table PROGRAM [FLAG...]: the markdown tables of PROGRAM --help.
# An option line starts with spaces and a dash; its flag is the dashed
# words and the argument words after them (in capitals), its meaning the
# rest plus the deeper-indented lines that follow. A line
# ending in ':' at the left margin titles the options right below it;
# sections titled "Internal" are left out.
options_table() {
  prog=$1
  shift
  if [ ! -x "$bin/$prog" ]; then
    echo "doc-gen: no program $bin/$prog" >&2
    return 1
  fi
  "$bin/$prog" --help >"$tmp/help" 2>&1 || {
    echo "doc-gen: $prog --help failed" >&2
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
          print "doc-gen: " prog " --help has no " f > "/dev/stderr"
          bad = 1
        }
      if (rows == 0) {
        print "doc-gen: no options found in " prog " --help" > "/dev/stderr"
        bad = 1
      }
      exit bad
    }
  ' "$tmp/help"
}

# run_quoted COMMAND [raw]: the code block quoting COMMAND and its output,
# or with "raw" the output alone.
run_quoted() {
  cmd=$1
  raw=${2:-}
  case $cmd in
  build/bin/*) ;;
  *)
    echo "doc-gen: '$cmd' does not start with build/bin/" >&2
    return 1
    ;;
  esac
  # The status is not checked: a comparison that loses requests in one
  # policy exits 1 and still prints its table.
  (sh -c "$bin/${cmd#build/bin/}" 2>/dev/null || true) >"$tmp/out"
  if [ ! -s "$tmp/out" ]; then
    echo "doc-gen: '$cmd' printed nothing" >&2
    return 1
  fi
  if [ -z "$raw" ]; then
    echo '```'
    printf '$ %s\n' "$cmd"
  fi
  # paths under the checkout as the reader's
  awk -v root="$root/" '{
    while ((i = index($0, root)) > 0)
      $0 = substr($0, 1, i - 1) substr($0, i + length(root))
    print
  }' "$tmp/out"
  [ -n "$raw" ] || echo '```'
}

status=0
for page in "$@"; do
  out="$tmp/page"
  : >"$out"
  inside=   # the kind of marker we are between: options, output, markdown
  lineno=0
  failed=0
  while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    case $line in
    '<!-- options: '*' -->' | '<!-- output: '*' -->' | '<!-- markdown: '*' -->')
      if [ -n "$inside" ]; then
        echo "$page:$lineno: marker inside another" >&2
        failed=1
      fi
      printf '%s\n' "$line" >>"$out"
      spec=${line#'<!-- '}
      spec=${spec%' -->'}
      inside=${spec%%:*}
      spec=${spec#*: }
      if [ "$inside" = options ]; then
        # shellcheck disable=SC2086 # the words are the program and flags
        options_table $spec >>"$out" || failed=1
      elif [ "$inside" = markdown ]; then
        run_quoted "$spec" raw >>"$out" || failed=1
      elif [ $figures = 1 ]; then
        echo "$page:$lineno: $spec" >&2
        run_quoted "$spec" >>"$out" || failed=1
      else
        inside=keep
      fi
      [ $failed = 0 ] || echo "$page:$lineno: cannot make '$spec'" >&2
      ;;
    '<!-- end options -->' | '<!-- end output -->' | '<!-- end markdown -->')
      kind=${line#'<!-- end '}
      kind=${kind%' -->'}
      if [ "$inside" != "$kind" ] && ! [ "$inside" = keep ] ; then
        echo "$page:$lineno: end of $kind without its start" >&2
        failed=1
      fi
      printf '%s\n' "$line" >>"$out"
      inside=
      ;;
    *)
      case $inside in '' | keep) printf '%s\n' "$line" >>"$out" ;; esac
      ;;
    esac
  done <"$page"
  if [ -n "$inside" ]; then
    echo "$page: $inside marker without an end" >&2
    failed=1
  fi
  if [ $failed = 1 ]; then
    status=1
    continue
  fi
  cmp -s "$page" "$out" && continue
  if [ $check = 1 ]; then
    echo "$page: differs from what the programs say" \
      "(run scripts/doc-gen.sh $([ $figures = 0 ] || echo '--figures ')$bin):" >&2
    diff -u "$page" "$out" >&2 || true
    status=1
  else
    cp "$out" "$page"
    echo "updated $page"
  fi
done
exit $status
