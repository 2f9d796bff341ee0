#!/usr/bin/env bash
# Fuzzes PhyDream's loaders and engine with libFuzzer, under AddressSanitizer and
# UndefinedBehaviorSanitizer (tests/fuzz/README.md): the MJCF and JSON model loaders (each model
# they accept is then stepped and differentiated), the NPY reader, the training config parser,
# and the engine itself on arbitrary states and controls. Builds the targets in build-sanitize/
# (scripts/sanitize_build.sh, Clang), then runs each for SECONDS (default 60) from its seeds:
# tests/fuzz/corpus/TARGET (and assets/ for mjcf). What it finds is left in
# build-sanitize/artifacts/ (crash-*, leak-*, timeout-*); copy a fixed one into
# tests/fuzz/corpus/TARGET, where CTest's fuzz.replay_TARGET keeps it fixed.
#   scripts/fuzz.sh                  # every target, 60 s each
#   scripts/fuzz.sh mjcf 600         # one target, 10 minutes
# Not part of CI (its outcome depends on time); the replays are.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(mjcf model_json npy train_config step)
if [[ $# -gt 0 ]]; then
  case "$1" in
    mjcf | model_json | npy | train_config | step) targets=("$1") ;;
    *) echo "fuzz.sh: unknown target '$1' (expected mjcf, model_json, npy, train_config or step)" >&2; exit 2 ;;
  esac
fi
seconds="${2:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -eq 0 ]]; then
  echo "fuzz.sh: SECONDS must be a positive integer, got '$seconds'" >&2
  exit 2
fi
scripts/sanitize_build.sh "${targets[@]/#/fuzz_}"
mkdir -p build-sanitize/artifacts
status=0
for t in "${targets[@]}"; do
  # new inputs go to the first corpus directory (build-sanitize/corpus/TARGET), never to the seeds
  mkdir -p "build-sanitize/corpus/$t"
  seeds=("tests/fuzz/corpus/$t")
  extra=()
  if [[ "$t" == mjcf ]]; then
    seeds+=(assets)
    extra+=(-dict=tests/fuzz/mjcf.dict)
  fi
  echo "fuzz.sh: fuzz_$t for $seconds s" >&2
  if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      "build-sanitize/tests/fuzz_$t" "build-sanitize/corpus/$t" "${seeds[@]}" "${extra[@]}" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=16384 \
      -artifact_prefix="build-sanitize/artifacts/$t-" -print_final_stats=1; then
    echo "fuzz.sh: fuzz_$t found a failure: build-sanitize/artifacts/$t-*" >&2
    status=1
  fi
done
exit "$status"
