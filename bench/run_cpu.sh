#!/usr/bin/env bash
# Configures a Release build with the benchmarks, builds phydream_bench and model_bench and runs
# the CPU backend with one thread and with all cores (MuJoCo peer included when built in). The JSON lines go to
# stdout and to $1 (default bench/cpu_results.jsonl); further arguments go to phydream_bench.
# REPEATS (default 3): timed windows per measurement, the best reported, against a busy host.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/bench/cpu_results.jsonl}"
build="${PHYDREAM_BUILD_DIR:-$root/build}"
cores="$(nproc)"
repeats="${REPEATS:-3}"

# configure and build: progress to stderr, stdout keeps only JSON
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DPHYDREAM_BUILD_BENCH=ON >&2
cmake --build "$build" -j"$cores" --target phydream_bench model_bench >&2

echo "run_cpu.sh: $cores cores, load average $(cut -d' ' -f1-3 /proc/loadavg), output $out" >&2
"$build/bench/phydream_bench" --backend cpu --threads "1,$cores" --repeats "$repeats" "${@:2}" \
  | tee "$out"
# articulated models from MJCF against MuJoCo on the same files: to ${MODEL_OUT:-bench/cpu_models.jsonl}
"$build/bench/model_bench" --backend cpu --threads "1,$cores" --repeats "$repeats" \
  | tee "${MODEL_OUT:-$root/bench/cpu_models.jsonl}"
# the same with contact, on states settled onto the floor: to ${CONTACT_OUT:-bench/cpu_models_contact.jsonl}
"$build/bench/model_bench" --backend cpu --contact --models half_cheetah,finger --threads "1,$cores" \
  --repeats "$repeats" | tee "${CONTACT_OUT:-$root/bench/cpu_models_contact.jsonl}"
