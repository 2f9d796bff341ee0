#!/usr/bin/env bash
# Builds PhyDream with its tests and runs them all. GPU tests (label `gpu`) skip cleanly when no
# CUDA device is visible; `ctest -L cpu` or `ctest -L gpu` in build/ runs one kind. Then, unless
# PHYDREAM_SKIP_EMULATION=1, the GPU suite runs once more on the CPU emulation of the CUDA
# backend (scripts/run_emulated_gpu_tests.sh --quick, in build-emulated/): where no GPU runs the
# CUDA code, that is what checks it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
(cd build && ctest --output-on-failure -j"$(nproc)")
if [[ "${PHYDREAM_SKIP_EMULATION:-0}" != 1 ]]; then
  scripts/run_emulated_gpu_tests.sh --quick
fi
