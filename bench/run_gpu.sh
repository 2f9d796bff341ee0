#!/usr/bin/env bash
# On the GPU machine, from the repository root: the GPU tests and compute-sanitizer on them
# (`tests`), and every benchmark (`bench`); both by default. summary.txt (one line per part) and
# gpu_logs.tar.gz (every log, the benchmarks' JSON lines) go to ${OUT:-bench-out}: two files, so
# that all of it comes back from the device tool, which returns at most 8.
#   bench/run_gpu.sh [tests] [bench]
# The binaries come from build/ or, where build/ has no build, from gpu-bundle/ (made here by
# scripts/gpu_bundle.sh and carried: a machine without Debian's -dev packages can run it). Each
# part runs under its own time limit (seconds, PART_LIMIT_SCALE scales them all), so that a hang
# or a slow part costs only its own share of the lease; the order puts correctness first. The
# limits add up to about 6 minutes for `tests` and 7 for `bench`: where calls are capped at 10
# minutes, run the halves as two calls.
set -uo pipefail
dest="${OUT:-bench-out}"
out="$(mktemp -d)"
mkdir -p "$dest"
summary="$dest/summary.txt"
: > "$summary"
scale="${PART_LIMIT_SCALE:-1}"
parts="${*:-tests bench}"

if [[ ! -f build/CMakeCache.txt && -d gpu-bundle/build ]]; then
  rm -rf build && ln -s gpu-bundle/build build
  # the CTest files name the folder the bundle was built in: this one's build/ instead
  sed -i "s|$(cat gpu-bundle/build_dir)/|$PWD/build/|g" build/tests/*.cmake
  # the programs read assets from the source folder they were built in: make it this one
  src="$(cat gpu-bundle/source_dir)"
  if [[ "$src" != "$PWD" && ! -e "$src" ]]; then
    mkdir -p "$(dirname "$src")" && ln -s "$PWD" "$src"
  fi
fi
python_env=(env LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}")  # PyTorch keeps the machine's libraries
export LD_LIBRARY_PATH="$PWD/build/lib:${LD_LIBRARY_PATH:-}"
# cuBLAS is linked dynamically: take the toolkit's, or the one PyTorch's wheels bring
if ! ldd build/phydream | grep -q 'libcublas.*=> /'; then
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
           $(python3 -c 'import nvidia, os; print(" ".join(os.path.join(p, s, "lib") for p in nvidia.__path__ for s in sorted(os.listdir(p))))' 2>/dev/null); do
    if compgen -G "$d/libcublas.so.*" >/dev/null; then
      export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
      ldd build/phydream | grep -q 'libcublas.*=> /' && break
    fi
  done
fi
# the bundle's C++ runtime where the machine's is older than the one the programs were built with
if [[ -d build/lib/runtime ]] && ldd build/phydream 2>&1 | grep -q "version .* not found"; then
  export LD_LIBRARY_PATH="$PWD/build/lib/runtime:$LD_LIBRARY_PATH"
fi
missing="$(for b in build/phydream build/tests/gpu_tests build/bench/*_bench; do
             [[ -x "$b" ]] && ldd "$b" 2>&1 | grep 'not found'; done | sort -u)"
if [[ -n "$missing" ]]; then
  echo "shared libraries not found: $missing" | tee -a "$summary"
  exit 1
fi

# part NAME SECONDS COMMAND...: runs COMMAND under its limit, output to $out/NAME.log
part() {
  local name="$1" limit="$2"
  shift 2
  local start=$SECONDS
  timeout --kill-after=10 "$(( limit * scale ))" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  echo "$name: exit $rc in $(( SECONDS - start )) s$([[ $rc == 124 || $rc == 137 ]] && echo ' (time limit)')" \
    | tee -a "$summary"
}

nvidia-smi > "$out/nvidia-smi.txt" 2>&1
build/phydream info > "$out/info.txt" 2>&1
head -n 3 "$out/info.txt" | tee -a "$summary"

if [[ " $parts " == *" tests "* ]]; then
  # every launch waited for (PHYDREAM_CUDA_SYNC), so that a fault names its kernel; CTest also
  # sets PHYDREAM_POISON_WORKSPACES (NaN workspaces before each call, tests/CMakeLists.txt)
  part ctest_gpu 180 bash -c 'cd build && PHYDREAM_CUDA_SYNC=1 ctest -L gpu --output-on-failure -j4'
  # the count, and the failed tests by name, where the summary shows them
  grep -E '^[0-9]+% tests passed|^\s+[0-9]+ - .*\((Failed|Timeout|SEGFAULT|Subprocess aborted|Exception)' \
    "$out/ctest_gpu.log" | head -n 40 | tee -a "$summary"
  if command -v compute-sanitizer >/dev/null 2>&1; then
    part sanitizer_memcheck 90 compute-sanitizer --tool memcheck --error-exitcode 9 \
      build/tests/gpu_tests \
      --gtest_filter='*MatchesCpuSmall*:*AllCalls*:GpuStream*:CudaTrainOps*:*RolloutsMatchTheCpu*'
    # reads of device memory nothing wrote (the workspaces unpoisoned: outside CTest)
    part sanitizer_initcheck 45 compute-sanitizer --tool initcheck --error-exitcode 9 \
      build/tests/gpu_tests --gtest_filter='*MatchesCpuSmall*:*RolloutsMatchTheCpu*'
    # shared-memory hazards: the staged step kernels, and the loss head's block reductions
    part sanitizer_racecheck 60 compute-sanitizer --tool racecheck --error-exitcode 9 \
      build/tests/gpu_tests --gtest_filter='Envs/GpuParityF32.AllCallsAcrossBatchSizes/double_pendulum_rk4:AllLosses/CudaMlpLoss.MatchesCpuSmall/tanh_frobenius_minmax_both:AllLosses/CudaMlpLoss.MatchesCpuSmall/tanh_huber_zscore_both'
  fi
fi

if [[ " $parts " == *" bench "* ]]; then
  part sim_bench 120 build/bench/phydream_bench --backend cuda
  part model_bench 75 build/bench/model_bench --backend cuda --dtypes f32,f64
  part model_bench_4m 40 build/bench/model_bench --backend cuda --dtypes f32 --batch 4000000 --no-mujoco
  # with contact (issue 4's target: half-cheetah steps/s and IFT Jacobians/s on settled states)
  part model_bench_contact 75 build/bench/model_bench --backend cuda --contact \
    --models half_cheetah,finger --dtypes f32,f64
  part train_bench 45 build/bench/train_bench --backend cuda --kernels fused,gemm
  part torch_jal 60 "${python_env[@]}" python3 bench/torch_jal.py --device cuda
  # the JSON lines of each benchmark, without the progress its log has on stderr
  for name in sim_bench model_bench model_bench_4m model_bench_contact train_bench torch_jal; do
    grep '^{' "$out/$name.log" > "$out/$name.jsonl" 2>/dev/null
  done
  "${python_env[@]}" python3 bench/compare_torch.py "$out/train_bench.jsonl" "$out/torch_jal.jsonl" | tee -a "$summary"
fi

cp "$summary" "$out/"
tar -czf "$dest/gpu_logs.tar.gz" -C "$out" .
rm -rf "$out"
cat "$summary"
