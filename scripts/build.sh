#!/usr/bin/env bash
# Configures and builds PhyDream in build/ (Release; CUDA kernels when nvcc is found).
# Arguments go to the CMake configure step, e.g. -DCMAKE_CUDA_ARCHITECTURES=80;
# PHYDREAM_TARGETS (space-separated) limits the build to those targets.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
# nvcc is often installed outside PATH
if ! command -v nvcc >/dev/null 2>&1 && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
# Ninja compiles the tests' and programs' sources while the library's long CUDA objects still
# build (make waits for the whole library first); a build/ configured earlier keeps its generator
generator=()
if [[ ! -f build/CMakeCache.txt ]] && command -v ninja >/dev/null 2>&1; then
  generator=(-G Ninja)
fi
cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
targets=()
for t in ${PHYDREAM_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build build -j"$(nproc)" "${targets[@]}"
