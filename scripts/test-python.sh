#!/usr/bin/env bash
# The Python package (bindings/python): builds the wheels users install (release,
# manylinux2014 = glibc 2.17, linked with zig: one `abi3` wheel for CPython 3.10+
# and one `cp39` wheel) and the sdist into bindings/python/dist, installs the
# wheel that fits the venv's Python, and runs pytest, mypy --strict on a
# typed example that uses every call, mypy.stubtest against the stubs, the
# example itself and a smoke run of the benchmark. Needs only Python >= 3.9
# with pip and venv, and Rust; everything else (maturin, ziglang, auditwheel …)
# is installed into the venv. scripts/test-packages.sh then installs the same
# wheels into fresh venvs for every CPython (so nothing is built twice).
#
# APIKEYS_PYTHON39: the CPython 3.9 to build the cp39 wheel for (default:
# `pyenv prefix` of the newest 3.9, else python3.9 on the PATH).
#
# APIKEYS_PYTHON: the interpreter to build for (default: python3.11, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
pkg=$root/bindings/python
venv=$pkg/.venv

py=${APIKEYS_PYTHON:-}
if [[ -z $py ]]; then
    if command -v python3.11 >/dev/null 2>&1; then py=python3.11; else py=python3; fi
fi

step() { printf '\n== python: %s\n' "$*"; }

step "virtual environment ($venv, $("$py" --version))"
want=$("$py" -c 'import sys; print(sys.version)')
if [[ ! -x $venv/bin/python ]] || [[ $("$venv/bin/python" -c 'import sys; print(sys.version)' 2>/dev/null) != "$want" ]]; then
    rm -rf "$venv"
    "$py" -m venv "$venv"
fi
vpy=$venv/bin/python
"$vpy" -m pip install --disable-pip-version-check -q \
    "maturin>=1.16,<1.17" "ziglang>=0.13,<0.18" "auditwheel>=6,<7" "pytest>=8,<10" "mypy>=1.10,<3"
# What the HTTP adapters' tests (tests/test_http_*.py) and mypy on apikeys.asgi /
# apikeys.wsgi need: without these those tests would skip, so they are always installed.
"$vpy" -m pip install --disable-pip-version-check -q \
    "starlette>=0.37" "fastapi>=0.110" "uvicorn>=0.29" "flask>=3" "httpx>=0.27" "pagerduty>=1"
# apikeys.prometheus (verification metrics) and its tests.
"$vpy" -m pip install --disable-pip-version-check -q "prometheus_client>=0.20"
# The secret-scanning tests sign reports as GitHub does (ECDSA P-256, SHA-256).
"$vpy" -m pip install --disable-pip-version-check -q "cryptography>=42"

py39=${APIKEYS_PYTHON39:-}
if [[ -z $py39 ]]; then
    if command -v pyenv >/dev/null 2>&1 && v=$(pyenv versions --bare | grep -E '^3\.9\.[0-9]+$' | sort -V | tail -1) && [[ -n $v ]]; then
        py39=$(pyenv prefix "$v")/bin/python
    elif command -v python3.9 >/dev/null 2>&1; then
        py39=$(command -v python3.9)
    else
        echo "test-python.sh: CPython 3.9 is needed to build the cp39 wheel (set APIKEYS_PYTHON39)" >&2
        exit 1
    fi
fi

dist=$pkg/dist
rm -rf "$dist"
# What the release publishes, built the same way (see .github/workflows/release.yml):
# --zig links against glibc 2.17 whatever this machine's glibc is.
build=(build --release --zig --compatibility manylinux2014 --out "$dist")
export PATH=$venv/bin:$PATH   # maturin finds zig (the ziglang package) through the venv's python
step "build the abi3 wheel for CPython >= 3.10 (maturin ${build[*]} -F abi3)"
(cd "$pkg" && maturin "${build[@]}" -F abi3 --interpreter "$vpy")
step "build the cp39 wheel (CPython 3.9 has no fast calls in the limited API)"
(cd "$pkg" && maturin "${build[@]}" --interpreter "$py39")
step "build the sdist"
(cd "$pkg" && maturin sdist --out "$dist")
ls -l "$dist"
wheels=("$dist"/apikeys-*.whl)
[[ ${#wheels[@]} -eq 2 ]] || { echo "expected two wheels in $dist, found: ${wheels[*]}" >&2; exit 1; }

step "install the wheel for $("$vpy" --version)"
"$vpy" -m pip uninstall --disable-pip-version-check -q -y apikeys >/dev/null 2>&1 || true
"$vpy" -m pip install --disable-pip-version-check -q --no-deps --force-reinstall --no-index \
    --only-binary :all: --find-links "$dist" apikeys
# Run everything from outside the source tree, so `import apikeys` is the installed wheel.
cd "$pkg/tests"
"$vpy" -c 'import apikeys, apikeys._apikeys as m; assert "site-packages" in m.__file__, m.__file__'

step "pytest"
"$vpy" -m pytest -q -rs -p no:cacheprovider "$pkg/tests"

step "mypy --strict (typed example, tests, bench)"
"$vpy" -m mypy --strict --no-incremental --cache-dir=/dev/null \
    "$pkg/examples/typed_usage.py" "$pkg/bench.py" "$pkg/bench_stores.py" "$pkg/bench_call.py" "$pkg/tests"

step "stubtest"
"$vpy" -m mypy.stubtest apikeys

step "typed example"
"$vpy" "$pkg/examples/typed_usage.py" >/dev/null

step "benchmark smoke run (the figures in docs/python.md come from bench.py without --quick)"
"$vpy" "$pkg/bench.py" --quick
"$vpy" "$pkg/bench_stores.py" --quick
# The HTTP adapters against their frameworks (docs/performance.md, "Adapters").
"$vpy" "$pkg/bench_adapters.py" --quick
"$vpy" "$pkg/bench_adapters.py" --paired --quick

echo "python: all checks passed"
