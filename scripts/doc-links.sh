#!/bin/sh
# Checks that every relative link of the docs leads somewhere: the file or
# folder exists and, for a #fragment, the page has a heading with that
# anchor (GitHub's: lower case, punctuation dropped, spaces to hyphens,
# -1, -2, ... for repeats). Links to other sites are not followed.
#
#   scripts/doc-links.sh [PAGE...]      (default README.md and docs/*.md)
#
# Names each broken link as PAGE:LINE and exits 1 when there is one.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
cd "$root"
[ $# -gt 0 ] || set -- README.md docs/*.md

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# The anchors of every markdown file in the repository, as "FILE#ANCHOR".
git ls-files -co --exclude-standard '*.md' >"$tmp/pages" 2>/dev/null ||
  find . -name '*.md' -not -path './build*' | sed 's|^\./||' >"$tmp/pages"
while IFS= read -r page; do
  [ -f "$page" ] || continue
  awk -v page="$page" '
    /^(```|~~~)/ { fence = !fence; next }
    fence || !/^#+ / { next }
    {
      h = $0
      sub(/^#+ +/, "", h)
      sub(/ +#+ *$/, "", h)
      # a link in a heading keeps only its text
      while (match(h, /\[[^]]*\]\([^)]*\)/)) {
        t = substr(h, RSTART + 1, RLENGTH)
        sub(/\].*/, "", t)
        h = substr(h, 1, RSTART - 1) t substr(h, RSTART + RLENGTH)
      }
      h = tolower(h)
      gsub(/[^a-z0-9 _-]/, "", h)
      gsub(/ /, "-", h)
      a = h
      if (seen[h]++) a = h "-" (seen[h] - 1)
      print page "#" a
    }
  ' "$page"
done <"$tmp/pages" >"$tmp/anchors"

# Every relative link of the pages checked, as "PAGE:LINE TARGET".
for page in "$@"; do
  awk -v page="$page" '
    /^(```|~~~)/ { fence = !fence; next }
    fence { next }
    {
      line = $0
      # code spans hold no links
      gsub(/`[^`]*`/, "", line)
      while (match(line, /\]\([^) ]+( "[^"]*")?\)/)) {
        target = substr(line, RSTART + 2, RLENGTH - 3)
        sub(/ ".*/, "", target)
        line = substr(line, RSTART + RLENGTH)
        if (target ~ /^[a-z][a-z0-9+.-]*:/) continue
        print page ":" FNR " " target
      }
    }
  ' "$page"
done >"$tmp/links"

status=0
while read -r where target; do
  page=${where%%:*}
  dir=$(dirname "$page")
  path=${target%%#*}
  anchor=
  case $target in *'#'*) anchor=${target#*#} ;; esac
  if [ -z "$path" ]; then
    file=$page
  else
    case $path in
    /*) file=.$path ;;
    *) file=$dir/$path ;;
    esac
    if [ ! -e "$file" ]; then
      echo "$where: $target: no such file" >&2
      status=1
      continue
    fi
    # "docs/../README.md" as the anchors list names it
    file=$(cd "$(dirname "$file")" && pwd)/$(basename "$file")
    file=${file#"$root"/}
  fi
  [ -n "$anchor" ] || continue
  if ! grep -qxF "$file#$anchor" "$tmp/anchors"; then
    echo "$where: $target: no heading with anchor #$anchor in $file" >&2
    status=1
  fi
done <"$tmp/links"
exit $status
