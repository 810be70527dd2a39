#!/usr/bin/env bash
# Requests per second through an adapter against the same framework without
# authentication, same machine, same run: short rounds alternate between the
# two servers, and the median of the per-round ratios gives the overhead (so a
# burst of load from elsewhere hits both sides of a round alike). Loopback
# only; every wrk run is bounded.
#
#   bash crates/apikeys-http/bench/wrk.sh [rust|python|flask|node] [ROUNDS] [SECONDS_PER_RUN] [CONNECTIONS]
#
# rust:   axum with vs without RestAuthLayer (examples/http_overhead.rs)
# python: FastAPI on uvicorn with vs without apikeys.asgi (bench/asgi_app.py; FORM=scope for
#         @requires_scope + request.scope instead of Depends(require_scope(...)));
#         PYTHON names an interpreter that has apikeys, fastapi and uvicorn;
#         STORE=sqlite puts the keys in SQLite (each check then runs in a worker thread)
#         HANDLER=async: `async def` handlers, run on the event loop (default sync: `def`,
#         run in anyio's thread pool)
# flask:  Flask on gunicorn (one gthread worker, 4 threads) with vs without
#         apikeys.wsgi (bench/wsgi_app.py); PYTHON must also have flask and gunicorn
# node:   Express with vs without require('apikeys/express') (bench/express_app.js);
#         express must be resolvable (NODE_PATH)
# AA=plain (or AA=1) runs the unprotected server on both sides, AA=auth the
# protected one on both: an A/A run, the same code in two processes on the two
# ports, through the same rounds. What it reports as "overhead" is the
# method's own bias (ports, process start order, which side runs first) and
# its spread is the noise an A/B figure must be read against.
# RESTART=K stops both servers and starts two new processes every K rounds
# (default 0: never), so that what differs between two processes of the same
# code (address-space layout, Python's and V8's hash seeds, the heap's
# history) varies from round to round instead of biasing a whole run.
# BASE=noop (node): the unprotected side mounts a no-op middleware (the
# adapter against Express's own cost of one more route handler).
# PAIRED=1 loads both sides at once in every round, each by a wrk of its own
# (CONNECTIONS each), instead of one after the other: the two servers then
# share the machine through the same seconds, so a change in the machine's
# speed (another tenant of the host, the clock) hits both sides of a round
# alike, where alternating rounds put them in different seconds. Both
# servers are always runnable, so the scheduler gives them equal CPU time and
# the throughput ratio is the ratio of their CPU cost per request; the CPU
# lines measure that cost directly. An A/A run (AA=plain PAIRED=1) shows what
# is left of the method's bias.
# STRACE=1 adds, after the rounds, syscalls per request on each side (strace
# -c -f attached to the server's threads for one untimed wrk run).
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
# What each side serves: A/B by default, A/A with AA.
case ${AA:-} in
  "") plain_mode=plain; auth_mode=auth ;;
  1|plain) plain_mode=plain; auth_mode=plain ;;
  auth) plain_mode=auth; auth_mode=auth ;;
  *) echo "AA is plain (or 1) or auth" >&2; exit 2 ;;
esac
# BASE=noop (node only): the unprotected side mounts a middleware that only
# calls next(), so the figure is the adapter's own cost beside Express's cost
# of one more route handler (express_app.js's `noop` mode).
case ${BASE:-} in
  "") ;;
  noop) [ "$target" = node ] || { echo "BASE=noop is for the node target" >&2; exit 2; }
        [ "$plain_mode" = plain ] && plain_mode=noop ;;
  *) echo "BASE is noop or unset" >&2; exit 2 ;;
esac
out=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$out"; }
trap cleanup EXIT

# Starts the two servers (one process each side) and checks them; RESTART
# calls it again between rounds.
start_servers() {
  rm -f "$out/plain.key" "$out/auth.key"
  case $target in
    rust)
      # RUST_FORM: route_layer (default: get(h).route_layer(layer)) or service
      # (get_service(layer.layer(h.into_service()))); RUST_HANDLER: trivial
      # (default: a constant body) or json (serialises a list of 25 incidents).
      # PIN (both sides are always placed alike): unset, the kernel schedules;
      # PIN=split puts both servers on CPU SERVER_CPU (1) and wrk on WRK_CPU (0);
      # PIN=same puts servers and wrk on SERVER_CPU. On a 2-vCPU VM, split
      # leaves the server waiting on cross-CPU wake-ups (half the throughput,
      # the server 40-60 % busy), so it measures wake-up latency more than the
      # server; docs/http.md has the figures.
      form=${RUST_FORM:-route_layer}
      handler=${RUST_HANDLER:-trivial}
      [ -n "${built:-}" ] || cargo build -q --release -p apikeys-examples --example http_overhead
    built=1
      bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/http_overhead"
      pin=()
      pinned="not pinned"
      case ${PIN:-} in
        split)
          pin=(taskset -c "${SERVER_CPU:-1}")
          taskset -pc "${WRK_CPU:-0}" $$ >/dev/null   # wrk and curl inherit it
          pinned="servers on CPU ${SERVER_CPU:-1}, wrk on CPU ${WRK_CPU:-0}" ;;
        same)
          pin=(taskset -c "${SERVER_CPU:-1}")
          taskset -pc "${SERVER_CPU:-1}" $$ >/dev/null
          pinned="servers and wrk on CPU ${SERVER_CPU:-1}" ;;
        "") ;;
        *) echo "PIN is split or same" >&2; exit 2 ;;
      esac
      # Two processes (one serving each side), so each side's CPU time can be read.
      # Each process serves both routers; a side's mode picks which of its
      # listeners gets the side's port.
      if [ "$plain_mode" = plain ]; then pa=("127.0.0.1:$plain_port" "127.0.0.1:$((plain_port + 10))");
      else pa=("127.0.0.1:$((plain_port + 10))" "127.0.0.1:$plain_port"); fi
      if [ "$auth_mode" = auth ]; then aa=("127.0.0.1:$((auth_port + 10))" "127.0.0.1:$auth_port");
      else aa=("127.0.0.1:$auth_port" "127.0.0.1:$((auth_port + 10))"); fi
      "${pin[@]}" "$bin" "${pa[@]}" "$budget" "$form" "$handler" >"$out/plain.key" &
      plain_pid=$!
      "${pin[@]}" "$bin" "${aa[@]}" "$budget" "$form" "$handler" >"$out/auth.key" &
      auth_pid=$!
      pids+=("$plain_pid" "$auth_pid")
      label="axum ($form, $handler handler; $pinned)"
      ;;
    python)
      py=${PYTHON:-python3}
      "$py" "$here/asgi_app.py" "$plain_mode" "$plain_port" >"$out/plain.key" &
      plain_pid=$!
      "$py" "$here/asgi_app.py" "$auth_mode" "$auth_port" >"$out/auth.key" &
      auth_pid=$!
      pids+=("$plain_pid" "$auth_pid")
      label="FastAPI on uvicorn (${FORM:-depends}, ${HANDLER:-sync} handlers), keys in ${STORE:-memory}"
      ;;
    flask)
      py=${PYTHON:-python3}
      "$py" "$here/wsgi_app.py" "$plain_mode" "$plain_port" >"$out/plain.key" &
      plain_pid=$!
      "$py" "$here/wsgi_app.py" "$auth_mode" "$auth_port" >"$out/auth.key" &
      auth_pid=$!
      pids+=("$plain_pid" "$auth_pid")
      label="Flask on gunicorn (gthread)"
      ;;
    node)
      node "$here/express_app.js" "$plain_mode" "$plain_port" >"$out/plain.key" &
      plain_pid=$!
      node "$here/express_app.js" "$auth_mode" "$auth_port" >"$out/auth.key" &
      auth_pid=$!
      pids+=("$plain_pid" "$auth_pid")
      label="Express${BASE:+ (the unprotected side with a no-op middleware)}"
      ;;
    *) echo "unknown target $target (rust, python, flask or node)" >&2; exit 2 ;;
  esac

  # Each server prints a key of its own keyring: each side is sent its own
  # (in an A/A run of protected servers, both sides check a key).
  for f in plain auth; do for _ in $(seq 100); do [ -s "$out/$f.key" ] && break; sleep 0.1; done; done
  plain_key=$(head -1 "$out/plain.key")
  auth_key=$(head -1 "$out/auth.key")
  plain="http://127.0.0.1:$plain_port/incidents"
  auth="http://127.0.0.1:$auth_port/incidents"
  for side in "$plain $plain_key" "$auth $auth_key"; do
    read -r url k <<<"$side"
    for _ in $(seq 100); do
      curl -fs -o /dev/null -H "Authorization: Token token=$k" "$url" && break
      sleep 0.1
    done
    # A refused request would count as a fast one: check both answer 200 first.
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Token token=$k" "$url")
    [ "$code" = 200 ] || { echo "$url answered $code" >&2; exit 1; }
  done
  # Without the key, a protected side must refuse (so the layer is really there),
  # an unprotected one must answer.
  for side in "$plain_mode $plain" "$auth_mode $auth"; do
    read -r mode url <<<"$side"
    want=200; [ "$mode" = auth ] && want=401
    code=$(curl -s -o /dev/null -w '%{http_code}' "$url")
    [ "$code" = "$want" ] || { echo "$url ($mode) answered $code without a key" >&2; exit 1; }
  done
}
# Stops the two servers and waits for them to exit.
stop_servers() {
  kill "$plain_pid" "$auth_pid" 2>/dev/null || true
  wait "$plain_pid" "$auth_pid" 2>/dev/null || true
  pids=()
}
start_servers
# The two sides' names in the report.
side_a="without auth"; side_b="with apikeys"
shown=$label
if [ -n "${AA:-}" ]; then shown="A/A, $label: the $auth_mode server on both sides"; side_a="side A"; side_b="side B"; fi
if (( ${RESTART:-0} > 0 )); then shown="$shown; new server processes every ${RESTART} rounds"; fi
if [ "${PAIRED:-}" = 1 ]; then shown="$shown; both sides loaded at once (PAIRED)"; fi

# One wrk run: prints "req/s requests cpu_ticks" (the server's user+system CPU
# time during the run, from /proc, in clock ticks; a server that forks workers,
# as gunicorn does, counts its children's too).
cpu() {
  local t=0 c
  for c in "$1" $(pgrep -P "$1" || true); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}
# "req/s requests cpu_ticks" of one wrk output (stdin), the server's CPU ticks given;
# a run with any non-2xx answer stops the script.
summary() {
  local outp
  outp=$(cat)
  if grep -q "Non-2xx" <<<"$outp"; then echo "non-2xx answers under load: $outp" >&2; exit 1; fi
  awk -v c="$1" '/Requests\/sec/ {r=$2} / requests in / {n=$1} END {print r, n, c}' <<<"$outp"
}
run() {
  local pid=$1; shift
  local c0 c1 outp
  c0=$(cpu "$pid")
  outp=$(wrk -t1 -c"$conns" -d"${secs}s" "$@")
  c1=$(cpu "$pid")
  summary $((c1 - c0)) <<<"$outp"
}
# One round of both sides at once (PAIRED=1): prints the two "req/s requests
# cpu_ticks" lines, the plain side's first, both measured over the same seconds.
run_pair() {
  local p0 a0 p1 a1
  p0=$(cpu "$plain_pid"); a0=$(cpu "$auth_pid")
  wrk -t1 -c"$conns" -d"${secs}s" "$plain" "${phdr[@]}" >"$out/pair.plain" &
  local w1=$!
  wrk -t1 -c"$conns" -d"${secs}s" "$auth" "${ahdr[@]}" >"$out/pair.auth" &
  local w2=$!
  wait "$w1" "$w2"
  p1=$(cpu "$plain_pid"); a1=$(cpu "$auth_pid")
  summary $((p1 - p0)) <"$out/pair.plain"
  summary $((a1 - a0)) <"$out/pair.auth"
}
phdr=(-H "Authorization: Token token=$plain_key")
ahdr=(-H "Authorization: Token token=$auth_key")
run "$plain_pid" "$plain" "${phdr[@]}" >/dev/null   # warm-up, not counted
run "$auth_pid" "$auth" "${ahdr[@]}" >/dev/null
ratios=(); cratios=(); p=(); a=(); pn=0; an=0; pc=0; ac=0
restart=${RESTART:-0}
for i in $(seq "$rounds"); do
  if (( restart > 0 && i > 1 && (i - 1) % restart == 0 )); then
    stop_servers
    start_servers
    phdr=(-H "Authorization: Token token=$plain_key")
    ahdr=(-H "Authorization: Token token=$auth_key")
    run "$plain_pid" "$plain" "${phdr[@]}" >/dev/null   # warm-up, not counted
    run "$auth_pid" "$auth" "${ahdr[@]}" >/dev/null
  fi
  if [ "${PAIRED:-}" = 1 ]; then
    both=$(run_pair); x=$(sed -n 1p <<<"$both"); y=$(sed -n 2p <<<"$both")
  # Alternate which side goes first.
  elif (( i % 2 )); then x=$(run "$plain_pid" "$plain" "${phdr[@]}"); y=$(run "$auth_pid" "$auth" "${ahdr[@]}");
  else y=$(run "$auth_pid" "$auth" "${ahdr[@]}"); x=$(run "$plain_pid" "$plain" "${phdr[@]}"); fi
  read -r xr xn xc <<<"$x"; read -r yr yn yc <<<"$y"
  p+=("$xr"); a+=("$yr"); ratios+=("$(awk -v x="$xr" -v y="$yr" 'BEGIN {print (x-y)/x*100}')")
  # The round's server CPU per request, with over without (clock ticks of 10 ms).
  cratios+=("$(awk -v xn="$xn" -v xc="$xc" -v yn="$yn" -v yc="$yc" 'BEGIN {print (xc > 0 && yn > 0) ? ((yc / yn) / (xc / xn) - 1) * 100 : 0}')")
  pn=$((pn + xn)); an=$((an + yn)); pc=$((pc + xc)); ac=$((ac + yc))
  printf 'round %2d: %s %9.0f req/s, %s %9.0f req/s\n' "$i" "$side_a" "$xr" "$side_b" "$yr"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
hz=$(getconf CLK_TCK)
if [ "${PAIRED:-}" = 1 ]; then
  printf '%s, %d rounds of %d s, %d connections a side:\n' "$shown" "$rounds" "$secs" "$conns"
else
  printf '%s, %d alternating rounds of %d s, %d connections:\n' "$shown" "$rounds" "$secs" "$conns"
fi
printf '  throughput: %s %.0f req/s, %s %.0f req/s (medians); overhead %.1f %% (median of the per-round ratios)\n' \
  "$side_a" "$(median "${p[@]}")" "$side_b" "$(median "${a[@]}")" "$(median "${ratios[@]}")"
# The spread of the per-round ratios: lowest, quartiles, highest (a median
# inside a spread much wider than itself says the load, not the adapter).
spread() {
  sort -g | awk -v what="$1" '{v[NR]=$1} END {
    n = NR
    lo = v[1]; hi = v[n]; q1 = v[int((n - 1) / 4) + 1]; q3 = v[int(3 * (n - 1) / 4) + 1]
    printf "  %s: lowest %.1f %%, quartiles %.1f / %.1f %%, highest %.1f %%\n", what, lo, q1, q3, hi }'
}
printf '%s\n' "${ratios[@]}" | spread "per-round overhead"
awk -v pn="$pn" -v an="$an" -v pc="$pc" -v ac="$ac" -v hz="$hz" -v sa="$side_a" -v sb="$side_b" 'BEGIN {
  px = pc / hz / pn * 1e6; ax = ac / hz / an * 1e6
  printf "  server CPU per request: %s %.2f us, %s %.2f us; overhead %.1f %%\n", sa, px, sb, ax, (ax - px) / px * 100 }'
printf '  server CPU overhead, median of the per-round ratios: %.1f %%\n' "$(median "${cratios[@]}")"
printf '%s\n' "${cratios[@]}" | spread "per-round CPU overhead"
if [ "${STRACE:-}" = 1 ]; then
  command -v strace >/dev/null || { echo "STRACE=1 needs strace" >&2; exit 1; }
  for side in "without $plain_pid $plain $plain_key" "with $auth_pid $auth $auth_key"; do
    read -r name pid url k <<<"$side"
    attach=()
    for c in "$pid" $(pgrep -P "$pid" || true); do
      for t in /proc/"$c"/task/*; do attach+=(-p "${t##*/}"); done
    done
    strace -c -f -o "$out/strace.$name" "${attach[@]}" 2>/dev/null &
    spid=$!
    sleep 1
    n=$(run "$pid" "$url" -H "Authorization: Token token=$k" | awk '{print $2}')
    kill -INT "$spid"; wait "$spid" 2>/dev/null || true
    printf '  syscalls per request, %s (strace -c -f, one untimed run of %d requests):\n' "$name" "$n"
    awk -v n="$n" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" {c = $4; printf "    %-16s %8.3f\n", $NF, c / n; t += c}
      END {printf "    %-16s %8.3f\n", "all", t / n}' "$out/strace.$name"
  done
fi
