#!/usr/bin/env bash
# Requests per second through axum with and without RestAuthLayer, same
# machine, same run: rounds alternate between the two, and the median of each
# side is compared. Loopback only; every wrk run is bounded.
#
#   bash crates/apikeys-http/bench/wrk.sh [ROUNDS] [SECONDS_PER_RUN] [CONNECTIONS]
#
# Needs `wrk` (Debian: apt-get install wrk).
set -euo pipefail
rounds=${1:-5}
secs=${2:-5}
conns=${3:-32}
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

cargo build -q --release -p apikeys-examples --example http_overhead
bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/http_overhead"
plain=127.0.0.1:${PLAIN_PORT:-18181}
auth=127.0.0.1:${AUTH_PORT:-18182}
budget=$(( rounds * secs * 2 + 60 ))
out=$(mktemp)
"$bin" "$plain" "$auth" "$budget" >"$out" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 50); do [ -s "$out" ] && break; sleep 0.1; done
key=$(head -1 "$out")
for _ in $(seq 50); do
  curl -fs -o /dev/null -H "Authorization: Token token=$key" "http://$auth/incidents" && break
  sleep 0.1
done
# A refused request would count as a fast request: check the key works first.
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Token token=$key" "http://$auth/incidents")
[ "$code" = 200 ] || { echo "the authenticated endpoint answered $code" >&2; exit 1; }

rps() { wrk -t1 -c"$conns" -d"${secs}s" "$@" | awk '/Requests\/sec/ {print $2}'; }
# Warm-up, not counted.
rps "http://$plain/incidents" >/dev/null
rps -H "Authorization: Token token=$key" "http://$auth/incidents" >/dev/null
p=(); a=()
for i in $(seq "$rounds"); do
  p+=("$(rps "http://$plain/incidents")")
  a+=("$(rps -H "Authorization: Token token=$key" "http://$auth/incidents")")
  echo "round $i: without ${p[-1]} req/s, with ${a[-1]} req/s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
mp=$(median "${p[@]}"); ma=$(median "${a[@]}")
awk -v p="$mp" -v a="$ma" 'BEGIN {printf "axum without the layer: %.0f req/s; with RestAuthLayer: %.0f req/s; overhead %.1f %%\n", p, a, (p-a)/p*100}'
