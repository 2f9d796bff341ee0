#!/usr/bin/env bash
# Builds PhyDream in build-sanitize/ with Clang, AddressSanitizer (leaks included),
# UndefinedBehaviorSanitizer (every report fatal) and libFuzzer's coverage instrumentation, CUDA
# off: the build scripts/run_sanitized_tests.sh and scripts/fuzz.sh use. Installs Clang and
# libFuzzer from Debian first (scripts/install_deps.sh --fuzz).
#   scripts/sanitize_build.sh              # everything: library, CLI, tests, fuzz targets
#   scripts/sanitize_build.sh TARGET...    # those build targets only
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh --fuzz
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DPHYDREAM_CUDA=OFF -DPHYDREAM_BUILD_BENCH=OFF -DPHYDREAM_BUILD_FUZZERS=ON >/dev/null
if [[ $# -gt 0 ]]; then
  cmake --build build-sanitize -j"$(nproc)" --target "$@"
else
  cmake --build build-sanitize -j"$(nproc)"
fi
