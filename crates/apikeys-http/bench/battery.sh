#!/usr/bin/env bash
# The end-to-end runs of issue 19 for a quiet window, one after another: for
# each adapter an A/A run (the same server on both sides: the method's own
# bias and spread), the same with new server processes every round, and the
# A/B run, each `wrk.sh TARGET ROUNDS SECONDS`; every run's whole output in
# OUT/, and at the end one line per run (throughput overhead, its quartiles,
# the CPU overhead by the whole run and by the median round, its quartiles).
#
#   PYTHON=/path/to/python bash crates/apikeys-http/bench/battery.sh [ROUNDS] [SECONDS] [TARGETS...]
#
# TARGETS: any of rust node python-scope python-depends python-scope-async flask
# (default: all). PYTHON names an interpreter with the release wheel, fastapi,
# uvicorn, flask and gunicorn. OUT (default: a new directory under /tmp) holds
# the logs. About (3 runs × ROUNDS × 2 × SECONDS + start-up) per target: with
# the defaults (21 rounds of 2 s) some 5 minutes a target, 30 for all six.
# docs/performance.md, "End to end: where the server-side cost goes", says
# how to read the result.
set -euo pipefail
rounds=${1:-21}
secs=${2:-2}
shift $(( $# > 2 ? 2 : $# ))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(rust node python-scope python-depends python-scope-async flask)
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$(mktemp -d /tmp/apikeys-battery.XXXXXX)}
mkdir -p "$out"
echo "logs in $out; load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"

one() {
  # one NAME TARGET [VAR=VALUE...]: a wrk.sh run with those variables set.
  local name=$1 target=$2
  shift 2
  echo "== $name ($*) $(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg)"
  env "$@" bash "$here/wrk.sh" "$target" "$rounds" "$secs" >"$out/$name.log" 2>&1 || echo "   $name failed: see $out/$name.log"
}

for t in "${targets[@]}"; do
  case $t in
    rust | node) target=$t; vars=() ;;
    python-scope) target=python; vars=(FORM=scope) ;;
    python-depends) target=python; vars=(FORM=depends) ;;
    python-scope-async) target=python; vars=(FORM=scope HANDLER=async) ;;
    flask) target=flask; vars=() ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
  one "$t-aa" "$target" "${vars[@]}" AA=plain
  one "$t-aa-restart" "$target" "${vars[@]}" AA=plain RESTART=1
  one "$t-ab" "$target" "${vars[@]}"
done

echo
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
printf '%-28s %10s %18s %10s %12s %18s\n' run throughput "(quartiles)" "CPU run" "CPU rounds" "(quartiles)"
for f in "$out"/*.log; do
  n=$(basename "$f" .log)
  awk -v n="$n" '
    /overhead .* \(median of the per-round ratios\)/ { match($0, /overhead -?[0-9.]+ %/); t = substr($0, RSTART + 9, RLENGTH - 11) }
    /per-round overhead:/ { split($0, w, /quartiles /); split(w[2], q, / /); tq = q[1] "/" q[3] }
    /server CPU per request:/ { match($0, /overhead -?[0-9.]+ %/); c = substr($0, RSTART + 9, RLENGTH - 11) }
    /server CPU overhead, median/ { match($0, /: -?[0-9.]+ %/); cm = substr($0, RSTART + 2, RLENGTH - 4) }
    /per-round CPU overhead:/ { split($0, w, /quartiles /); split(w[2], q, / /); cq = q[1] "/" q[3] }
    END { printf "%-28s %9s%% %18s %9s%% %11s%% %18s\n", n, t, "(" tq ")", c, cm, "(" cq ")" }' "$f"
done
