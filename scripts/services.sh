# Sourced by scripts/test.sh (and usable by hand: `source scripts/services.sh`).
#
# Starts a throwaway PostgreSQL 15 server for the tests: a fresh cluster
# (initdb) in a temporary directory, listening on a free loopback port, with a
# database `apikeys_test`; exports APIKEYS_TEST_POSTGRES_URL; and stops the
# server and removes the directory when the sourcing shell exits.
#
# If the server cannot be started this fails (returns non-zero, which stops
# test.sh under `set -e`): the PostgreSQL tests are never skipped silently.

apikeys_services_fail() {
    echo "services.sh: $*" >&2
    if [ -n "${APIKEYS_PG_DIR:-}" ] && [ -f "$APIKEYS_PG_DIR/server.log" ]; then
        echo "--- PostgreSQL server log ---" >&2
        tail -n 30 "$APIKEYS_PG_DIR/server.log" >&2 || true
    fi
    return 1
}

# Run a PostgreSQL program as the `postgres` user when we are root (the
# server refuses to run as root), or as ourselves otherwise.
apikeys_as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

apikeys_pg_stop() {
    if [ -n "${APIKEYS_PG_DIR:-}" ] && [ -d "$APIKEYS_PG_DIR/data" ]; then
        apikeys_as_pg "$APIKEYS_PG_BIN/pg_ctl" -D "$APIKEYS_PG_DIR/data" -m immediate -w stop \
            >/dev/null 2>&1 || true
    fi
    if [ -n "${APIKEYS_PG_DIR:-}" ]; then
        rm -rf "$APIKEYS_PG_DIR"
    fi
}

apikeys_pg_start() {
    APIKEYS_PG_BIN=${APIKEYS_PG_BIN:-/usr/lib/postgresql/15/bin}
    if [ ! -x "$APIKEYS_PG_BIN/initdb" ]; then
        apikeys_services_fail "PostgreSQL 15 is not installed ($APIKEYS_PG_BIN/initdb is missing; apt-get install postgresql-15)"
        return 1
    fi
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        apikeys_services_fail "running as root, but there is no 'postgres' user to run the server as"
        return 1
    fi
    APIKEYS_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/apikeys-pg.XXXXXX")
    chmod 755 "$APIKEYS_PG_DIR"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$APIKEYS_PG_DIR"
    fi
    trap apikeys_pg_stop EXIT

    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null) \
        || port=$((20000 + RANDOM % 20000))

    apikeys_as_pg "$APIKEYS_PG_BIN/initdb" -D "$APIKEYS_PG_DIR/data" -U postgres -A trust \
        --no-sync -E UTF8 --locale=C >"$APIKEYS_PG_DIR/initdb.log" 2>&1 \
        || { cat "$APIKEYS_PG_DIR/initdb.log" >&2; apikeys_services_fail "initdb failed"; return 1; }
    # fsync off: a test server's data need not survive a power cut, and it keeps writes fast.
    apikeys_as_pg "$APIKEYS_PG_BIN/pg_ctl" -D "$APIKEYS_PG_DIR/data" -l "$APIKEYS_PG_DIR/server.log" -w -t 60 \
        -o "-p $port -k $APIKEYS_PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
        start >/dev/null \
        || { apikeys_services_fail "the PostgreSQL server did not start"; return 1; }
    apikeys_as_pg "$APIKEYS_PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres apikeys_test \
        || { apikeys_services_fail "could not create the test database"; return 1; }

    export APIKEYS_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/apikeys_test"
    echo "services.sh: PostgreSQL 15 on 127.0.0.1:$port ($APIKEYS_TEST_POSTGRES_URL)"
}

apikeys_pg_start || return 1 2>/dev/null || exit 1
