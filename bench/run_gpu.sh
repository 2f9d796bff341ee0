#!/usr/bin/env bash
# On the GPU machine, from the repository root with the build carried in build/: the GPU tests,
# compute-sanitizer on them, and every benchmark, with logs under ${OUT:-bench-out}.
#   bench/run_gpu.sh
set -uo pipefail
out="${OUT:-bench-out}"
mkdir -p "$out"
export LD_LIBRARY_PATH="$PWD/build/lib:${LD_LIBRARY_PATH:-}"
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
build/phydream info > "$out/info.txt" 2>&1
(cd build && ctest -L gpu --output-on-failure) > "$out/ctest_gpu.log" 2>&1
echo "ctest -L gpu: exit $?" >> "$out/summary.txt"
if command -v compute-sanitizer >/dev/null 2>&1; then
  compute-sanitizer --tool memcheck --error-exitcode 9 build/tests/gpu_tests \
    --gtest_filter='*MatchesCpuSmall*:*AllCalls*:GpuStream*:CudaTrainOps*:*RolloutsMatchTheCpu*' \
    > "$out/sanitizer_memcheck.log" 2>&1
  echo "compute-sanitizer memcheck: exit $?" >> "$out/summary.txt"
  compute-sanitizer --tool racecheck --error-exitcode 9 build/tests/gpu_tests \
    --gtest_filter='Envs/GpuParityF32.AllCallsAcrossBatchSizes/double_pendulum_rk4' \
    > "$out/sanitizer_racecheck.log" 2>&1
  echo "compute-sanitizer racecheck: exit $?" >> "$out/summary.txt"
fi
build/bench/phydream_bench --backend cuda > "$out/sim_bench.jsonl" 2> "$out/sim_bench.err"
build/bench/model_bench --backend cuda --dtypes f32,f64 > "$out/model_bench.jsonl" 2> "$out/model_bench.err"
build/bench/model_bench --backend cuda --dtypes f32 --batch 4000000 --no-mujoco \
  > "$out/model_bench_4m.jsonl" 2> "$out/model_bench_4m.err"
# with contact (issue 4's target: half-cheetah steps/s and IFT Jacobians/s on settled states)
build/bench/model_bench --backend cuda --contact --models half_cheetah,finger --dtypes f32,f64 \
  > "$out/model_bench_contact.jsonl" 2> "$out/model_bench_contact.err"
build/bench/train_bench --backend cuda --kernels fused,gemm > "$out/train_bench.jsonl" 2> "$out/train_bench.err"
python3 bench/torch_jal.py --device cuda > "$out/torch_jal.jsonl" 2> "$out/torch_jal.err"
python3 bench/compare_torch.py "$out/train_bench.jsonl" "$out/torch_jal.jsonl" \
  > "$out/torch_ratio.txt" 2>&1
cat "$out/summary.txt" "$out/torch_ratio.txt"
