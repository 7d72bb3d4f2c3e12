#!/bin/sh
# usage: ./run.sh NAME "-DCRASHES=2 -DLOSSES=1 ..." [pan options]
# Builds in $TMPDIR/eddy-cluster-model/NAME (default /tmp) and runs a full safety search (assertions + invalid
# end states). BFS=1 for a shortest counterexample; MEM=megabytes (default 8000); COLLAPSE=1 for state
# compression; HC=1 for hash compaction (-DHC4: 4-byte state hashes, a tiny chance of missing states);
# BITSTATE=1 for a partial (supertrace) search (pan option -wN); VEC=vector size (default 1024).
set -e
name=$1; defs=$2; shift 2
here=$(cd "$(dirname "$0")" && pwd)
dir=${TMPDIR:-/tmp}/eddy-cluster-model/$name
rm -rf "$dir"; mkdir -p "$dir"; cp "$here"/cluster.pml "$here"/daemon.pml "$dir"; cd "$dir"
spin $defs -a cluster.pml
gcc -O2 -DSAFETY ${BFS:+-DBFS} -DVECTORSZ=${VEC:-1024} -DMEMLIM=${MEM:-8000} ${COLLAPSE:+-DCOLLAPSE} ${BITSTATE:+-DBITSTATE} ${HC:+-DHC4} -o pan pan.c
start=$(date +%s)
./pan -m3000000 -c1 -w26 "$@" > pan.out 2>&1 || true
grep -E 'assertion violated|errors:|states, stored|invalid end|depth reached|pan: wrote|memory usage|out of memory|max search depth too small' pan.out || true
echo "time: $(( $(date +%s) - start ))s"
if [ -f cluster.pml.trail ]; then
  spin -t $defs cluster.pml 2>&1 | grep -E "MSC|assert|violated" > trail.txt || true
  echo "trail: $dir/trail.txt"
fi
