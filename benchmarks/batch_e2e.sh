#!/usr/bin/env bash
# Items searched per second by `bfm batch`, end to end (each run a new process: open, index,
# plan, search, commit), of two builds on the same inputs, and whether they store the same hits.
#
#   benchmarks/batch_e2e.sh BEFORE_BFM AFTER_BFM DIR [STORED] [NEW_FIREARMS] [FIRINGS] [RUNS]
#                           [THREADS]
#
# AFTER_BFM's `bfm synth` writes STORED (24) cartridge cases of as many firearms and
# NEW_FIREARMS (4) x FIRINGS (3) new ones, turned within +-30 degrees (what builds before the
# full-circle search could find, so that both can give the same hits). Each build ingests the stored cases into its own store,
# batches them (the previous nights, not timed), then, RUNS (2) times on a fresh copy, ingests the
# new cases and times `bfm batch STORE --threads THREADS` (1: one core; 0: bfm's default, every
# core) (wall and user+sys CPU of the process), the two builds taking turns run by run. The
# hits of the timed batch are exported and compared as (query, candidate, score, rank): both
# builds number items alike because they ingest the same manifests in the same order.
# BEFORE_ARGS and AFTER_ARGS (environment) are added to each build's timed `bfm batch`, e.g.
# BEFORE_ARGS="--no-reuse --screen 20" times the batch as it ran before the reuse work (both
# items of a pair search each other, 20 screened to the CMC), whose hits are the same.
# BEFORE_BFM may be any older build, e.g. the tree before the batch work:
#   git archive 927c874 | tar -x -C OLD && cmake -S OLD -B OLD/build -DCMAKE_BUILD_TYPE=Release \
#     && cmake --build OLD/build -j && benchmarks/batch_e2e.sh OLD/build/bfm build/bfm /tmp/b
set -euo pipefail
before=$1 after=$2 dir=$3 stored=${4:-24} newf=${5:-4} firings=${6:-3} runs=${7:-2}
threads=${8:-1}
targs=()
[ "$threads" != 0 ] && targs=(--threads "$threads")
rm -rf "$dir" && mkdir -p "$dir"
"$after" synth --out "$dir/old" --kind cartridge --firearms "$stored" --firings 1 --questioned 0 --seed 101 --max-rotation 30 >/dev/null
"$after" synth --out "$dir/new" --kind cartridge --firearms "$newf" --firings "$firings" --seed 202 --max-rotation 30 >/dev/null
ncases=$((newf * firings))
exe_of() { if [ "$1" = after ]; then echo "$after"; else echo "$before"; fi; }
for b in before after; do
  exe=$(exe_of $b)
  s="$dir/$b.bfm"
  "$exe" init "$s" >/dev/null
  "$exe" ingest --quiet "$s" "$dir/old/manifest.csv" >/dev/null
  "$exe" batch "$s" --threads 2 --quiet >/dev/null
done
for r in $(seq 1 "$runs"); do
  for b in before after; do
    exe=$(exe_of $b)
    s="$dir/$b.bfm" t="$dir/$b-run.bfm"
    rm -rf "$t" "$t.d"
    cp "$s" "$t"
    [ -d "$s.d" ] && cp -r "$s.d" "$t.d"
    "$exe" ingest --quiet "$t" "$dir/new/manifest.csv" >/dev/null
    extra=${AFTER_ARGS:-}
    [ $b = before ] && extra=${BEFORE_ARGS:-}
    # shellcheck disable=SC2086 # the extra arguments are words
    /usr/bin/time -f "%e %U %S" -o "$dir/$b.time" "$exe" batch "$t" "${targs[@]}" $extra --quiet >/dev/null
    read -r wall user sys <"$dir/$b.time"
    awk -v b=$b -v r=$r -v n=$ncases -v w=$wall -v u=$user -v s=$sys 'BEGIN {
      printf "%-6s run %d: %d new items in %.2f s wall = %.4f items/s; CPU %.2f s = %.4f items/CPU-s\n",
             b, r, n, w, n / w, u + s, n / (u + s) }'
    echo "$b $r $wall $user $sys" >>"$dir/times"
    [ "$r" = "$runs" ] && "$exe" export "$t" --what hits --format csv >"$dir/$b.hits.csv"
  done
done
# (query, candidate, score, rank) of every hit, sorted
cols() {
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
           { printf "%s,%s,%s,%s\n", $c["query"], $c["candidate"], $c["score"], $c["rank"] }' "$1" | sort
}
cols "$dir/before.hits.csv" >"$dir/before.hits"
cols "$dir/after.hits.csv" >"$dir/after.hits"
nb=$(wc -l <"$dir/before.hits") na=$(wc -l <"$dir/after.hits")
awk '{ k[$1] += $4 + $5; w[$1] += $3 } END {
  printf "speed-up (mean of runs): %.2fx by wall, %.2fx by CPU\n", w["before"] / w["after"],
         k["before"] / k["after"] }' "$dir/times"
if cmp -s "$dir/before.hits" "$dir/after.hits"; then
  echo "hits: $nb before, $na after: identical (query, candidate, score, rank)"
else
  echo "hits: $nb before, $na after: DIFFER"
  diff "$dir/before.hits" "$dir/after.hits" | head -20
  exit 1
fi
