"""The cost of one call into the extension, for choosing abi3 or version-specific wheels.

Times `Keyring.authenticate` on one hot key three ways (positional, keyword
`method=`, and the refused path that raises), plus `Actor.account` (a getter),
and prints the fastest of `--repeats` runs of `--calls` calls each, in ns per
call. `scripts/bench-abi3.sh` runs it under both builds of the wheel for each
CPython; the figures in docs/python.md ("abi3 or not") come from there.

    python bindings/python/bench_call.py [--calls N] [--repeats N]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable

import importlib.util

import apikeys


def fastest_ns(fn: Callable[[int], None], calls: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter_ns()
        fn(calls)
        best = min(best, (time.perf_counter_ns() - start) / calls)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--tsv", action="store_true", help="print `name<TAB>ns` lines only (for scripts/bench-abi3.sh)")
    args = ap.parse_args()

    kr = apikeys.Keyring()
    admin = apikeys.Actor("acme", "PADMIN1", "admin")
    token = kr.create_general_key(admin, "hot key").secret
    disabled = kr.create_general_key(admin, "off")
    kr.disable(admin, disabled.record.id)
    off = disabled.secret
    auth = kr.authenticate

    def positional(n: int) -> None:
        for _ in range(n):
            auth(token)

    def keyword(n: int) -> None:
        for _ in range(n):
            auth(token, method="GET")

    def refused(n: int) -> None:
        for _ in range(n):
            try:
                auth(off)
            except apikeys.Unauthorized:
                pass

    def getter(n: int) -> None:
        for _ in range(n):
            admin.account

    spec = importlib.util.find_spec("apikeys._apikeys")
    build = "abi3" if spec is not None and str(spec.origin).endswith(".abi3.so") else "version-specific"
    if not args.tsv:
        print(f"CPython {platform.python_version()}, {build} build")
    for name, fn, calls in (
        ("authenticate(token)", positional, args.calls),
        ('authenticate(token, method="GET")', keyword, args.calls),
        ("authenticate(disabled key) -> Unauthorized", refused, args.calls // 4),
        ("actor.account (getter)", getter, args.calls),
    ):
        ns = fastest_ns(fn, calls, args.repeats)
        print(f"{name}\t{ns:.0f}" if args.tsv else f"  {name:<45} {ns:8.0f} ns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
