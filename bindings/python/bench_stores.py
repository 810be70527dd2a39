"""Time `Keyring.authenticate` per store and with rate limits, in one run.

    python bindings/python/bench_stores.py            # figures in docs/python.md
    python bindings/python/bench_stores.py --quick    # smoke run

PostgreSQL and Redis rows need APIKEYS_TEST_POSTGRES_URL / APIKEYS_TEST_REDIS_URL
(`source scripts/services.sh && source scripts/redis.sh`); without them those
rows are left out. Each row: the fastest of interleaved rounds, ns per call.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from typing import Callable

import apikeys

ADMIN = apikeys.Actor("acme", "PADMIN1", "admin")
# Large enough that the limit is never reached during the run.
HIGH = apikeys.RateLimits.none().with_limit("general_key", apikeys.Limit(4_000_000_000, 60))


def setup(kr: apikeys.Keyring, n: int) -> list[str]:
    return [kr.create_general_key(ADMIN, f"bot {i}").secret for i in range(n)]


def per_call(fn: Callable[[str], object], tokens: list[str], calls: int) -> float:
    m = len(tokens)
    t0 = time.perf_counter_ns()
    for i in range(calls):
        fn(tokens[i % m])
    return (time.perf_counter_ns() - t0) / calls


def main() -> None:
    quick = "--quick" in sys.argv
    keys, calls, rounds = (64, 2_000, 2) if quick else (1_000, 50_000, 7)
    tmp = tempfile.TemporaryDirectory()
    rows: dict[str, apikeys.Keyring] = {}
    rows["MemoryStore, no limits"] = apikeys.Keyring()
    rows["MemoryStore, in-process limiter"] = apikeys.Keyring(rate_limits=HIGH)
    rows["SqliteStore (warm cache), no limits"] = apikeys.Keyring(
        apikeys.SqliteStore(os.path.join(tmp.name, "bench.db"))
    )
    pg = os.environ.get("APIKEYS_TEST_POSTGRES_URL")
    if pg:
        store = apikeys.PostgresStore(pg, schema="bench_" + uuid.uuid4().hex[:12])
        rows["PostgresStore (warm cache), no limits"] = apikeys.Keyring(store)
    redis = os.environ.get("APIKEYS_TEST_REDIS_URL")
    if redis:
        limiter = apikeys.RedisRateLimiter(redis, prefix=f"bench-{uuid.uuid4().hex}:")
        rows["MemoryStore, Redis limiter (loopback)"] = apikeys.Keyring(rate_limits=HIGH, rate_limiter=limiter)
    tokens = {name: setup(kr, keys) for name, kr in rows.items()}
    best = {name: float("inf") for name in rows}
    for _ in range(rounds):
        for name, kr in rows.items():
            # Redis costs a round trip per call: fewer calls keep the run short.
            n = calls // 20 if "Redis" in name else calls
            best[name] = min(best[name], per_call(kr.authenticate, tokens[name], n))
    print(f"apikeys {apikeys.__version__}, CPython {sys.version.split()[0]}, {keys} keys per keyring, fastest of {rounds} rounds")
    base = best["MemoryStore, no limits"]
    for name, ns in best.items():
        print(f"{name:<42} {ns:>9.0f} ns  {ns / base:5.2f}x")
    tmp.cleanup()


if __name__ == "__main__":
    main()
