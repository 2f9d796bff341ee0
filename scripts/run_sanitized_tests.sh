#!/usr/bin/env bash
# The CPU test suite (ctest -L cpu) under AddressSanitizer and UndefinedBehaviorSanitizer: builds
# build-sanitize/ (scripts/sanitize_build.sh, Clang) and runs every CPU test there, so that a
# memory error, a leak or undefined behaviour anywhere the tests reach fails the run. Two tests
# do not apply to an instrumented build and are left out: training.isa_objects_keep_their_symbols
# (the sanitizers add typeinfo symbols to the objects it inspects) and package.install_and_consume
# (its consumer links the instrumented library without the sanitizer runtimes).
# On 2 cores: the build about 20 minutes, the tests about 2. Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/sanitize_build.sh
cd build-sanitize
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}" \
  ctest -L cpu -E '^(training\.isa_objects_keep_their_symbols|package\.install_and_consume)$' \
  --output-on-failure -j"$(nproc)" "$@"
