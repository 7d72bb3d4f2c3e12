#!/bin/sh
# usage: ./run.sh NAME "-DFIX=0 -DZOMBIE=0 ..." [pan options]
# Builds in $TMPDIR/eddy-model/NAME (default /tmp) and runs a full safety search (assertions + invalid end states).
# PANCC="-DCOLLAPSE" (or -DHC4 ...) adds compiler flags for pan (memory compression; COLLAPSE is lossless).
set -e
name=$1; defs=$2; shift 2
here=$(cd "$(dirname "$0")" && pwd)
dir=${TMPDIR:-/tmp}/eddy-model/$name
rm -rf "$dir"; mkdir -p "$dir"; cp "$here"/sink.pml "$here"/daemon.pml "$dir"; cd "$dir"
spin $defs -a sink.pml
gcc -O2 -DSAFETY ${BFS:+-DBFS} -DVECTORSZ=2048 $PANCC -o pan pan.c
./pan -m2000000 -c1 "$@" | tee pan.out | grep -E 'assertion violated|errors:|states, stored|invalid end|depth reached|pan: wrote'
if [ -f sink.pml.trail ]; then
  spin -t $defs sink.pml 2>&1 | grep -E "MSC|assert|violated" > trail.txt || true
  echo "trail: $dir/trail.txt"
fi
