#!/usr/bin/env bash
# Builds and packs what bench/run_gpu.sh needs on a lent GPU machine, which has the CUDA driver and
# toolkit but none of Debian's -dev packages, into gpu-bundle/ (ignored by git):
#   gpu-bundle/build/phydream               the CLI
#   gpu-bundle/build/tests/gpu_tests        the GPU suite, with its CTest files (ctest -L gpu)
#   gpu-bundle/build/bench/*_bench          the benchmarks run_gpu.sh runs
#   gpu-bundle/build/lib/                   libphydream.so (every CUDA kernel, once) and the shared
#                                           libraries the programs need that are neither glibc's,
#                                           the compiler runtime's nor CUDA's (MuJoCo, tinyxml2, ...)
#   gpu-bundle/build/lib/runtime/           libstdc++ and libgcc_s, for a machine whose own are older
#   gpu-bundle/source_dir, build_dir        the paths compiled into them (assets, CTest files)
# The build (in build-gpu/, or $PHYDREAM_GPU_BUILD_DIR) is shared, so the kernels travel once, and
# holds sm_90 machine code only (no PTX): the bundle must fit the device tool's carry limit of
# 64 MiB with the working tree, which this script checks. Then, with the device tool:
#   run  command: bench/run_gpu.sh   carry: ["gpu-bundle"]
# Arguments go to the CMake configure step (e.g. -DCMAKE_CUDA_ARCHITECTURES=90a-real).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${PHYDREAM_GPU_BUILD_DIR:-$root/build-gpu}"
out="$root/gpu-bundle"
carry_mib=62  # the device tool carries at most 64 MiB, working tree included: keep 2 spare

if ! command -v nvcc >/dev/null 2>&1 && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
"$root/scripts/install_deps.sh"
generator=()  # Ninja for a fresh build folder, as scripts/build.sh
if [[ ! -f "$build/CMakeCache.txt" ]] && command -v ninja >/dev/null 2>&1; then
  generator=(-G Ninja)
fi
cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DPHYDREAM_CUDA=ON \
  -DBUILD_SHARED_LIBS=ON -DCMAKE_CUDA_ARCHITECTURES=90-real "$@" >/dev/null
bins=(phydream tests/gpu_tests bench/phydream_bench bench/model_bench bench/train_bench)
cmake --build "$build" -j"$(nproc)" --target phydream_cli gpu_tests phydream_bench model_bench \
  train_bench

rm -rf "$out.tmp"
mkdir -p "$out.tmp/build/tests" "$out.tmp/build/bench" "$out.tmp/build/lib"
for b in "${bins[@]}"; do
  strip --strip-unneeded -o "$out.tmp/build/$b" "$build/$b"
done

# shared libraries outside the system's C/C++ runtime and CUDA's (which the GPU image has)
system_lib='^(linux-vdso|ld-linux-x86-64|libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s|libcuda|libcublas|libcublasLt|libcudart)\.'
for b in "${bins[@]}"; do
  ldd "$build/$b" | awk '/=> \//{print $1, $3}'
done | sort -u | while read -r name path; do
  if [[ ! "$name" =~ $system_lib ]]; then
    strip --strip-unneeded -o "$out.tmp/build/lib/$name" "$(readlink -f "$path")"
  fi
done

# this compiler's C++ runtime, for a machine whose own is older (run_gpu.sh adds it only then)
mkdir -p "$out.tmp/build/lib/runtime"
for name in libstdc++.so.6 libgcc_s.so.1; do
  cp -L "$(ldd "$build/phydream" | awk -v n="$name" '$1 == n {print $3}')" "$out.tmp/build/lib/runtime/$name"
done

# the GPU suite's CTest files: gtest_discover_tests' list for gpu_tests alone (renamed: plain
# file names travel anywhere), reached from the top folder, so that `ctest -L gpu` in the bundle's
# build/ runs exactly the GPU tests (run_gpu.sh points their paths at where the bundle lands)
cp "$build"/tests/gpu_tests\[*\]_tests.cmake "$out.tmp/build/tests/gpu_tests.cmake"
printf 'include("%s/tests/gpu_tests.cmake")\n' "$build" > "$out.tmp/build/tests/CTestTestfile.cmake"
printf 'subdirs("tests")\n' > "$out.tmp/build/CTestTestfile.cmake"
echo "$root" > "$out.tmp/source_dir"
echo "$build" > "$out.tmp/build_dir"

# what travels with it: the tracked files and the untracked ones git does not ignore
tree_bytes=$(git -C "$root" ls-files -z --cached --others --exclude-standard \
               | (cd "$root" && xargs -0 du -cb 2>/dev/null) | awk '$2 == "total" {n += $1} END {print n + 0}')
size_mib=$(( ($(du -sb "$out.tmp" | cut -f1) + 1048575) / 1048576 ))
limit_mib=$(( carry_mib - tree_bytes / 1048576 ))
if (( size_mib > limit_mib )); then
  echo "gpu_bundle: the bundle is ${size_mib} MiB, over the ${limit_mib} MiB the carry limit leaves beside the working tree" >&2
  rm -rf "$out.tmp"
  exit 1
fi
rm -rf "$out"
mv "$out.tmp" "$out"
echo "gpu_bundle: $out, ${size_mib} MiB (at most ${limit_mib}); libraries: $(ls "$out/build/lib" | tr '\n' ' ')"
