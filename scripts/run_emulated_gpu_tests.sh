#!/usr/bin/env bash
# The GPU tests (label gpu) on the CPU: builds PhyDream in build-emulated/ with
# -DPHYDREAM_CUDA=EMULATE (the CUDA sources compiled as C++ against tests/emulation/, a CPU
# stand-in for the CUDA runtime and cuBLAS whose kernels run block by block, each thread a fiber)
# and runs the GPU suite there, so that the CUDA backend's code paths (launch configurations,
# workspaces, cuBLAS conventions, the kernels' indexing and barriers) are checked where no GPU
# is. It does not check what only a GPU shows: timing, asynchrony between streams, memory
# visibility, warp-level behaviour, resource limits. Arguments go to the test binary (e.g.
# --gtest_filter=...). On 2 cores the suite takes about 7 minutes after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
generator=()
if [[ ! -f build-emulated/CMakeCache.txt ]] && command -v ninja >/dev/null 2>&1; then
  generator=(-G Ninja)
fi
cmake -S . -B build-emulated "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DPHYDREAM_CUDA=EMULATE \
  >/dev/null
cmake --build build-emulated -j"$(nproc)" --target gpu_tests
PHYDREAM_POISON_WORKSPACES=1 build-emulated/tests/gpu_tests "$@"
