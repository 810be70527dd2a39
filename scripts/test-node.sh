#!/usr/bin/env bash
# The Node package (bindings/node): not built yet.
set -euo pipefail
echo "node: no package yet"
