#!/bin/bash
# Prints, every 0.5 s, the wall time and the summed utime+stime (ticks) of node bench and postgres processes.
while true; do
  n=0; p=0
  for pid in $(pgrep -f "bench/engine.ts"); do read -r -a f < /proc/$pid/stat 2>/dev/null && n=$((n + f[13] + f[14])); done
  for pid in $(pgrep -u $(id -u) -x postgres) $(pgrep -x postgres); do read -r -a f < /proc/$pid/stat 2>/dev/null && p=$((p + f[13] + f[14])); done
  echo "$(date +%s.%N | cut -c1-14) $n $p"; sleep 0.5
done
