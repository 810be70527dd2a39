#!/usr/bin/env bash
# Requests per second through an adapter against the same framework without
# authentication, same machine, same run: short rounds alternate between the
# two servers, and the median of the per-round ratios gives the overhead (so a
# burst of load from elsewhere hits both sides of a round alike). Loopback
# only; every wrk run is bounded.
#
#   bash crates/apikeys-http/bench/wrk.sh [rust|python|node] [ROUNDS] [SECONDS_PER_RUN] [CONNECTIONS]
#
# rust:   axum with vs without RestAuthLayer (examples/http_overhead.rs)
# python: FastAPI on uvicorn with vs without apikeys.asgi (bench/asgi_app.py);
#         PYTHON names an interpreter that has apikeys, fastapi and uvicorn
# node:   Express with vs without require('apikeys/express') (bench/express_app.js);
#         express must be resolvable (NODE_PATH)
# Needs `wrk` (Debian: apt-get install wrk).
set -euo pipefail
target=${1:-rust}
rounds=${2:-15}
secs=${3:-2}
conns=${4:-32}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
cd "$root"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

plain_port=${PLAIN_PORT:-18181}
auth_port=${AUTH_PORT:-18182}
budget=$(( rounds * secs * 2 + 120 ))
out=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$out"; }
trap cleanup EXIT

case $target in
  rust)
    cargo build -q --release -p apikeys-examples --example http_overhead
    bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/http_overhead"
    "$bin" "127.0.0.1:$plain_port" "127.0.0.1:$auth_port" "$budget" >"$out/auth.key" &
    pids+=($!)
    label="axum"
    ;;
  python)
    py=${PYTHON:-python3}
    timeout "$budget" "$py" "$here/asgi_app.py" plain "$plain_port" >"$out/plain.key" &
    pids+=($!)
    timeout "$budget" "$py" "$here/asgi_app.py" auth "$auth_port" >"$out/auth.key" &
    pids+=($!)
    label="FastAPI on uvicorn"
    ;;
  node)
    timeout "$budget" node "$here/express_app.js" plain "$plain_port" >"$out/plain.key" &
    pids+=($!)
    timeout "$budget" node "$here/express_app.js" auth "$auth_port" >"$out/auth.key" &
    pids+=($!)
    label="Express"
    ;;
  *) echo "unknown target $target (rust, python or node)" >&2; exit 2 ;;
esac

for _ in $(seq 100); do [ -s "$out/auth.key" ] && break; sleep 0.1; done
key=$(head -1 "$out/auth.key")
plain="http://127.0.0.1:$plain_port/incidents"
auth="http://127.0.0.1:$auth_port/incidents"
for url in "$plain" "$auth"; do
  for _ in $(seq 100); do
    curl -fs -o /dev/null -H "Authorization: Token token=$key" "$url" && break
    sleep 0.1
  done
done
# A refused request would count as a fast one: check both answer 200 first.
for url in "$plain" "$auth"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Token token=$key" "$url")
  [ "$code" = 200 ] || { echo "$url answered $code" >&2; exit 1; }
done
# Without the key, the protected server must refuse (so the layer is really there).
code=$(curl -s -o /dev/null -w '%{http_code}' "$auth")
[ "$code" = 401 ] || { echo "$auth answered $code without a key" >&2; exit 1; }

rps() { wrk -t1 -c"$conns" -d"${secs}s" "$@" | awk '/Requests\/sec/ {print $2}'; }
non200() { wrk -t1 -c"$conns" -d1s "$@" | grep -c "Non-2xx" || true; }
hdr=(-H "Authorization: Token token=$key")
rps "$plain" "${hdr[@]}" >/dev/null   # warm-up, not counted
rps "$auth" "${hdr[@]}" >/dev/null
[ "$(non200 "$auth" "${hdr[@]}")" = 0 ] || { echo "the protected server answered non-2xx under load" >&2; exit 1; }
ratios=(); p=(); a=()
for i in $(seq "$rounds"); do
  # Alternate which side goes first.
  if (( i % 2 )); then x=$(rps "$plain" "${hdr[@]}"); y=$(rps "$auth" "${hdr[@]}");
  else y=$(rps "$auth" "${hdr[@]}"); x=$(rps "$plain" "${hdr[@]}"); fi
  p+=("$x"); a+=("$y"); ratios+=("$(awk -v x="$x" -v y="$y" 'BEGIN {print (x-y)/x*100}')")
  printf 'round %2d: without %9.0f req/s, with %9.0f req/s\n' "$i" "$x" "$y"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
printf '%s without auth: %.0f req/s (median); with apikeys: %.0f req/s (median); overhead %.1f %% (median of %d per-round ratios; %d s runs, %d connections)\n' \
  "$label" "$(median "${p[@]}")" "$(median "${a[@]}")" "$(median "${ratios[@]}")" "$rounds" "$secs" "$conns"
