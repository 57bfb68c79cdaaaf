#!/bin/bash
# Alternated A/B of dbos-bench builds, with the VM's steal time during each run (from /proc/stat):
# a run with steal above a few per cent measured the host, not the build.
# Usage: ab_with_steal.sh ROUNDS SCENARIO [--db postgresql://USER@HOST:PORT] BIN...
# Prints, per run: the build, wf/s (or p50_ms), the enqueue p50 where there is one, steal %.
R=$1; S=$2; shift 2
DB=""; if [ "$1" = "--db" ]; then DB=$2; shift 2; fi
for r in $(seq 1 $R); do
  for BIN in "$@"; do
    a=$(head -1 /proc/stat)
    if [ -n "$DB" ]; then out=$($BIN $S --db $DB/ab_$RANDOM$RANDOM); else out=$($BIN $S); fi
    b=$(head -1 /proc/stat)
    steal=$(python3 -c "
a='''$a'''.split()[1:]; b='''$b'''.split()[1:]
d=[int(y)-int(x) for x,y in zip(a,b)]; print(round(100*d[7]/sum(d),1))")
    echo "$(basename $BIN) $(echo $out | grep -o '"wf_per_s":[0-9.]*\|"p50_ms":[0-9.]*\|"enqueue_p50_ms":[0-9.]*' | tr '\n' ' ') steal=$steal"
  done
done
