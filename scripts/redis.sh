# Sourced by scripts/test.sh (and usable by hand: `source scripts/redis.sh`).
#
# Makes sure a Redis runs on loopback for the rate-limit tests: installs
# Debian's redis-server if it is missing, starts a throwaway server on a free
# loopback port (no persistence), exports APIKEYS_TEST_REDIS_URL, and stops it
# when the sourcing shell exits. Fails (non-zero) if it cannot: the Redis tests
# are never skipped silently.

apikeys_redis_fail() {
    echo "redis.sh: $*" >&2
    return 1
}

apikeys_redis_stop() {
    if [ -n "${APIKEYS_REDIS_PID:-}" ]; then
        kill "$APIKEYS_REDIS_PID" >/dev/null 2>&1 || true
        wait "$APIKEYS_REDIS_PID" 2>/dev/null || true
    fi
}

apikeys_redis_start() {
    if ! command -v redis-server >/dev/null 2>&1; then
        echo "redis.sh: installing Debian's redis-server"
        if [ "$(id -u)" = 0 ]; then
            (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null \
                || { apikeys_redis_fail "could not install redis-server"; return 1; }
        else
            (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null \
                || { apikeys_redis_fail "could not install redis-server (needs root)"; return 1; }
        fi
    fi
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null) \
        || port=$((40000 + RANDOM % 20000))
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
        >"${TMPDIR:-/tmp}/apikeys-redis-$port.log" 2>&1 &
    APIKEYS_REDIS_PID=$!
    local i
    for i in $(seq 1 100); do
        if redis-cli -p "$port" ping >/dev/null 2>&1; then
            export APIKEYS_TEST_REDIS_URL="redis://127.0.0.1:$port/"
            echo "redis.sh: Redis on 127.0.0.1:$port ($APIKEYS_TEST_REDIS_URL)"
            return 0
        fi
        sleep 0.1
    done
    apikeys_redis_fail "redis-server did not answer on port $port"
}

# Stop Redis on exit, and whatever services.sh started before us.
trap 'apikeys_redis_stop; if declare -F apikeys_pg_stop >/dev/null; then apikeys_pg_stop; fi' EXIT
apikeys_redis_start || return 1 2>/dev/null || exit 1
