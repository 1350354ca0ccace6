#!/usr/bin/env bash
# Builds the default model's training data from ../shared/data/corpora:
# the public-domain books cut into chunks of about 200 lines at paragraph
# boundaries and shuffled (with a fixed seed), so that every batch mixes
# many books instead of walking through one book at a time. Two whole books
# are held out for validation. Usage: make-data.sh SHARED_DIR OUT_DIR GPT2
set -euo pipefail
shared=$1 out=$2 gpt2=$3
corp=$shared/data/corpora
val1=$corp/gutenberg/pg11_alice_s_adventures_in_wonderland.txt
val2=$corp/gutenberg/pg46_a_christmas_carol.txt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/chunks"
n=0
for f in "$corp"/gutenberg/*.txt "$corp"/kjv/kjv.txt "$corp"/tinyshakespeare/input.txt; do
  case $f in "$val1"|"$val2") continue ;; esac
  # A chunk ends at the first blank line after 200 lines.
  awk -v dir="$work/chunks" -v base="$n" '
    BEGIN { k = 0; lines = 0; file = sprintf("%s/%06d_%06d.txt", dir, base, k) }
    { print > file; lines++
      if (lines >= 200 && $0 ~ /^[ \t\r]*$/) { close(file); k++; lines = 0; file = sprintf("%s/%06d_%06d.txt", dir, base, k) } }' "$f"
  n=$((n + 1))
done
# Shuffle with a fixed random source, then number the chunks in that order.
mkdir -p "$work/shuffled"
i=0
for c in $(ls "$work/chunks" | shuf --random-source=<(yes gpt2-default)); do
  mv "$work/chunks/$c" "$(printf '%s/shuffled/%07d.txt' "$work" "$i")"
  i=$((i + 1))
done
"$gpt2" prepare --out "$out" --val-files "$val1,$val2" "$work"/shuffled/*.txt "$val1" "$val2"
