"""One build of the Python package, a fixed number of `Keyring.authenticate`
calls, for counting instructions (and simulated cache misses) with callgrind,
which counts the same on a loaded machine as on a quiet one
(docs/performance.md, "Bindings: 7aa1ce6 vs f5ccbb6"). The keyring and the
workloads are those of `python_side_by_side.py` (100,000 keys, the same picks).

    RUSTFLAGS="--cfg rustix_use_libc" maturin build --release ...   # valgrind cannot follow rustix's vDSO parsing otherwise
    valgrind --tool=callgrind --cache-sim=yes --callgrind-out-file=OUT \
        VENV/bin/python scripts/bench-compare/python_callgrind.py WORKLOAD CALLS [place]

Run each workload at two call counts: (total at the larger - total at the
smaller) / (difference in calls) is the cost of one call, the keyring's
construction and the warm-up cancelling out. WORKLOAD is `active` (1,024
active keys, valid, GET), `post` (1,024 active keys, 1/4 POST, 10% read-only,
10% disabled) or `uniform` (over all valid keys, GET); `place` passes
`remote_address` and `path` with every call."""
import random, sys

import apikeys

workload, calls = sys.argv[1], int(sys.argv[2])
place = sys.argv[3:] == ["place"]
keys = 100_000

kr = apikeys.Keyring()
admin = apikeys.Actor("acme", "PADMIN1", "admin")
toks = []
for i in range(keys):
    k = kr.create_general_key(admin, f"key {i}", read_only=i % 10 == 1)
    if i % 10 == 2:
        kr.disable(admin, k.record.id)
    toks.append(k.secret)

rng = random.Random(7)
valid = [i for i in range(keys) if i % 10 >= 3]
active_valid = [valid[j * 977 % len(valid)] for j in range(1024)]
active_any = [j * 977 % keys for j in range(1024)]
n = 100_000
picks, with_methods = {
    "active": (lambda: ([rng.choice(active_valid) for _ in range(n)], False)),
    "post": (lambda: ([rng.choice(active_any) for _ in range(n)], True)),
    "uniform": (lambda: ([rng.choice(valid) for _ in range(n)], False)),
}[workload]()
reqs = [(toks[i], "POST" if with_methods and j % 4 == 0 else "GET") for j, i in enumerate(picks)]

auth, err = kr.authenticate, apikeys.ApiKeyError


def run(rs):
    if place:
        for token, method in rs:
            try:
                auth(token, method=method, remote_address="10.0.0.1", path="/incidents")
            except err:
                pass
        return
    for token, method in rs:
        try:
            auth(token, method=method)
        except err:
            pass


run(reqs)  # warm-up: every pick once (first uses write the last use)
run((reqs * (calls // len(reqs) + 1))[:calls])
