#!/usr/bin/env bash
# The GPU tests (label gpu) on the CPU: builds PhyDream's test program gpu_tests in
# build-emulated/ with -DPHYDREAM_CUDA=EMULATE (the CUDA sources compiled as C++ against
# tests/emulation/, a CPU stand-in for the CUDA runtime and cuBLAS whose kernels run block by
# block, each thread a fiber) and runs the GPU suite there, so that the CUDA backend's code paths
# (launch configurations, workspaces, cuBLAS conventions, the kernels' indexing and barriers) are
# checked where no GPU is. It does not check what only a GPU shows: timing, asynchrony between
# streams, memory visibility, warp-level behaviour, resource limits.
#   scripts/run_emulated_gpu_tests.sh            # all of it, CTest on every core
#   scripts/run_emulated_gpu_tests.sh --quick    # without the two longest grids (every loss x
#                                                # activation, and the 20000-sample loss head),
#                                                # which CPU suites cover (scripts/run_tests.sh)
#   scripts/run_emulated_gpu_tests.sh -- ARGS    # the test program itself, e.g. --gtest_filter=
# On 2 cores: the build about 3.5 minutes; all tests about 6, --quick about 2.
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
if [[ "${1:-}" == "--" ]]; then
  shift
  PHYDREAM_POISON_WORKSPACES=1 build-emulated/tests/gpu_tests "$@"
  exit
fi
exclude=()
if [[ "${1:-}" == "--quick" ]]; then
  exclude=(-E '^AllLosses/|^CudaMlpLossLarge\.')
elif [[ $# -gt 0 ]]; then
  echo "run_emulated_gpu_tests.sh: unknown argument '$1' (expected --quick or -- ARGS)" >&2
  exit 2
fi
# (CTest sets PHYDREAM_POISON_WORKSPACES=1, tests/CMakeLists.txt)
cd build-emulated
ctest -L gpu "${exclude[@]}" --output-on-failure -j"$(nproc)"
