#!/usr/bin/env bash
# Builds PhyDream with its tests and runs them all. GPU tests (label `gpu`) skip cleanly when no
# CUDA device is visible; `ctest -L cpu` or `ctest -L gpu` in build/ runs one kind.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)"
