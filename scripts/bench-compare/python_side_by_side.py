"""Two builds of the Python package loaded side by side in one process,
`Keyring.authenticate` timed in alternating short samples (thread CPU time),
so that both see the same machine load: for comparing builds of two commits
on a shared machine (docs/performance.md, "Bindings: 7aa1ce6 vs f5ccbb6").

    python3 scripts/bench-compare/python_side_by_side.py \
        --old OLD_VENV/lib/python3.11/site-packages/apikeys \
        --new NEW_VENV/lib/python3.11/site-packages/apikeys \
        [--keys 100000] [--samples 301] [--calls 2000] [--load-first old|new]

For each workload: the median ns/call of each side, and the median of the
per-sample-pair ratios old/new (> 1: new is faster)."""
import argparse, importlib.util, random, statistics, sys, time

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--old", required=True, help="the installed apikeys package directory of one build")
ap.add_argument("--new", required=True, help="the same of the other")
ap.add_argument("--keys", type=int, default=100_000)
ap.add_argument("--samples", type=int, default=301)
ap.add_argument("--calls", type=int, default=2000)
ap.add_argument("--load-first", default="old", help="which wheel is loaded (and its keyring built) first")
args = ap.parse_args()

def load(tag):
    """The package in the directory given for `tag`, imported as `apikeys_<tag>`."""
    name = f"apikeys_{tag}"
    where = getattr(args, tag)
    spec = importlib.util.spec_from_file_location(name, f"{where}/__init__.py", submodule_search_locations=[where])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


sides = {}
for tag in (("old", "new") if args.load_first == "old" else ("new", "old")):
    m = load(tag)
    kr = m.Keyring()
    admin = m.Actor("acme", "PADMIN1", "admin")
    toks = []
    for i in range(args.keys):
        k = kr.create_general_key(admin, f"key {i}", read_only=i % 10 == 1)
        if i % 10 == 2:
            kr.disable(admin, k.record.id)
        toks.append(k.secret)
    sides[tag] = (m, kr, toks)
    print(f"{tag}: {m._apikeys.__file__}", flush=True)

rng = random.Random(7)
valid = [i for i in range(args.keys) if i % 10 >= 3]
active_valid = [valid[j * 977 % len(valid)] for j in range(1024)]
active_any = [j * 977 % args.keys for j in range(1024)]
n = args.calls * 50
workloads = {
    "1,024 active keys, valid, GET": ([rng.choice(active_valid) for _ in range(n)], False),
    "1,024 active keys, 1/4 POST, 10% read-only, 10% disabled": ([rng.choice(active_any) for _ in range(n)], True),
    "uniform over all keys, valid, GET": ([rng.choice(valid) for _ in range(n)], False),
}

def runner(tag, picks, with_methods):
    m, kr, toks = sides[tag]
    auth, err = kr.authenticate, m.ApiKeyError
    reqs = [(toks[i], "POST" if with_methods and j % 4 == 0 else "GET") for j, i in enumerate(picks)]
    chunks = [reqs[c:c + args.calls] for c in range(0, len(reqs), args.calls)]
    state = [0]
    def run():
        chunk = chunks[state[0] % len(chunks)]
        state[0] += 1
        t0 = time.thread_time_ns()
        for token, method in chunk:
            try:
                auth(token, method=method)
            except err:
                pass
        return (time.thread_time_ns() - t0) / len(chunk)
    return run

print(f"{args.keys:,} keys per side, {args.samples} alternating samples of {args.calls:,} calls, thread CPU time")
for name, (picks, with_methods) in workloads.items():
    ro, rn = runner("old", picks, with_methods), runner("new", picks, with_methods)
    for _ in range(60):  # warm up: every chunk once, last-use writes
        ro(); rn()
    old, new, ratio = [], [], []
    for s in range(args.samples):
        if s % 2:
            b, a = rn(), ro()
        else:
            a, b = ro(), rn()
        old.append(a); new.append(b); ratio.append(a / b)
    print(f"{name:<58} old {statistics.median(old):6.0f} ns  new {statistics.median(new):6.0f} ns  old/new {statistics.median(ratio):.3f}"
          f"  (quartiles {statistics.quantiles(ratio, n=4)[0]:.3f}–{statistics.quantiles(ratio, n=4)[2]:.3f})", flush=True)
