#!/usr/bin/env bash
# Measures what an abi3 wheel would cost against version-specific wheels: builds
# the extension both ways (manylinux2014, with zig, as the release does), installs
# each into a fresh venv per CPython and runs bindings/python/bench_call.py there.
# The figures in docs/python.md ("abi3 or version-specific wheels") come from here.
#
#   bash scripts/bench-abi3.sh [3.10.13 3.11.7 ...]   # pyenv versions; default: every 3.10+ one
# Needs bindings/python/.venv from scripts/test-python.sh (maturin, ziglang) and pyenv.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/bindings/python/.venv
[[ -x $venv/bin/maturin ]] || { echo "bench-abi3.sh: run scripts/test-python.sh first (it makes $venv with maturin and ziglang)" >&2; exit 1; }
command -v pyenv >/dev/null || { echo "bench-abi3.sh: pyenv is needed to find each CPython" >&2; exit 1; }
versions=("$@")
if [[ ${#versions[@]} -eq 0 ]]; then
    mapfile -t versions < <(pyenv versions --bare | grep -E '^3\.(1[0-9])\.[0-9]+$')
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PATH=$venv/bin:$PATH
build() { # out-dir python [maturin args...]
    local out=$1 py=$2; shift 2
    (cd bindings/python && maturin build --release --zig --compatibility manylinux2014 -i "$py" --out "$out" "$@" >/dev/null 2>&1) ||
        { echo "bench-abi3.sh: maturin build failed ($py $*)" >&2; exit 1; }
}
rounds=${APIKEYS_BENCH_ROUNDS:-5}
first_py=$(pyenv prefix "${versions[0]}")/bin/python
build "$work/abi3" "$first_py" -F abi3
for v in "${versions[@]}"; do
    py=$(pyenv prefix "$v")/bin/python
    build "$work/ver-$v" "$py"
    for flavour in "ver-$v" abi3; do
        "$py" -m venv "$work/venv-$flavour-$v"
        "$work/venv-$flavour-$v/bin/pip" install -q --disable-pip-version-check --no-index "$work/$flavour"/apikeys-*.whl
    done
done
# Rounds alternate between the two builds (a loaded machine slows both alike);
# each figure is the fastest over all rounds.
for ((r = 1; r <= rounds; r++)); do
    for v in "${versions[@]}"; do
        for flavour in "ver-$v" abi3; do
            (cd "$work" && "$work/venv-$flavour-$v/bin/python" "$root/bindings/python/bench_call.py" --tsv) |
                sed "s/^/$v\t${flavour%%-*}\t/" >>"$work/results.tsv"
        done
    done
done
python3 - "$work/results.tsv" "$rounds" <<'PY'
import sys
best = {}
for line in open(sys.argv[1]):
    v, flavour, name, ns = line.rstrip("\n").split("\t")
    key = (v, name)
    best.setdefault(key, {}).setdefault(flavour, float("inf"))
    best[key][flavour] = min(best[key][flavour], float(ns))
print(f"fastest of {sys.argv[2]} alternating rounds (each: fastest of 9 runs), ns per call")
print(f"{'CPython':<8} {'call':<45} {'cp3xx':>7} {'abi3':>7} {'abi3/cp3xx':>10}")
for (v, name), b in best.items():
    print(f"{v:<8} {name:<45} {b['ver']:7.0f} {b['abi3']:7.0f} {b['abi3'] / b['ver']:10.2f}")
PY
