#!/usr/bin/env bash
# The Python package (bindings/python): builds the wheel (release) with maturin
# into a virtual environment, installs it, and runs pytest, mypy --strict on a
# typed example that uses every call, mypy.stubtest against the stubs, the
# example itself and a smoke run of the benchmark. Needs only Python >= 3.9
# with pip and venv, and Rust; everything else is installed into the venv.
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
    "maturin>=1.16,<1.17" "pytest>=8,<10" "mypy>=1.10,<3"
# What the HTTP adapters' tests (tests/test_http_*.py) and mypy on apikeys.asgi /
# apikeys.wsgi need: without these those tests would skip, so they are always installed.
"$vpy" -m pip install --disable-pip-version-check -q \
    "starlette>=0.37" "fastapi>=0.110" "uvicorn>=0.29" "flask>=3" "httpx>=0.27" "pagerduty>=1"

step "build the wheel (maturin build --release)"
dist=$pkg/dist
rm -rf "$dist"
(cd "$pkg" && "$venv/bin/maturin" build --release --interpreter "$vpy" --out "$dist")
wheels=("$dist"/apikeys-*.whl)
[[ ${#wheels[@]} -eq 1 && -f ${wheels[0]} ]] || { echo "expected exactly one wheel in $dist" >&2; exit 1; }

step "install ${wheels[0]##*/}"
"$vpy" -m pip uninstall --disable-pip-version-check -q -y apikeys >/dev/null 2>&1 || true
"$vpy" -m pip install --disable-pip-version-check -q --no-deps --force-reinstall "${wheels[0]}"
# Run everything from outside the source tree, so `import apikeys` is the installed wheel.
cd "$pkg/tests"
"$vpy" -c 'import apikeys, apikeys._apikeys as m; assert "site-packages" in m.__file__, m.__file__'

step "pytest"
"$vpy" -m pytest -q -rs -p no:cacheprovider "$pkg/tests"

step "mypy --strict (typed example, tests, bench)"
"$vpy" -m mypy --strict --no-incremental --cache-dir=/dev/null \
    "$pkg/examples/typed_usage.py" "$pkg/bench.py" "$pkg/bench_stores.py" "$pkg/tests"

step "stubtest"
"$vpy" -m mypy.stubtest apikeys

step "typed example"
"$vpy" "$pkg/examples/typed_usage.py" >/dev/null

step "benchmark smoke run (the figures in docs/python.md come from bench.py without --quick)"
"$vpy" "$pkg/bench.py" --quick
"$vpy" "$pkg/bench_stores.py" --quick

echo "python: all checks passed"
