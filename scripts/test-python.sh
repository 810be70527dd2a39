#!/usr/bin/env bash
# The Python package (bindings/python): not built yet.
set -euo pipefail
echo "python: no package yet"
