// The CPU trainer's matrix products and its float tanh (training/mlp_cpu.cpp), dispatched at run
// time to the widest x86-64 vector instruction set the processor supports.
//
// A build for the x86-64 baseline (what Debian's compiler emits without -march) runs Eigen's GEMM
// on SSE2, 4 floats wide and without fused multiply-add. The same Eigen code is compiled two more
// times, in training/cpu_gemm_avx2.cpp (-mavx2 -mfma) and training/cpu_gemm_avx512.cpp
// (x86-64-v4's AVX-512 subsets), each with Eigen's namespace renamed so that no inline function
// compiled for a wide instruction set can stand in for the baseline one at link time
// (tests/training/check_isa_symbols.sh checks the objects). The first call picks the widest set
// this CPU and its operating system support, or the one PHYDREAM_CPU_ISA names
// (baseline | avx2 | avx512 | auto). The sets round differently (fused multiply-add, blocking),
// so the same seed trains to the same result only under the same set: pin one to reproduce
// runs made on another machine.
#pragma once

#include <cstdint>
#include <string>

namespace phydream::training {

/// The instruction sets the CPU trainer's products are compiled for.
enum class CpuIsa : int { baseline = 0, avx2 = 1, avx512 = 2 };

/// "baseline", "avx2" or "avx512".
const char* cpu_isa_name(CpuIsa isa);

/// The set a name means; "auto" gives the widest supported. Anything else: InputError naming
/// `what` (the variable or option) and the accepted names.
CpuIsa parse_cpu_isa(const std::string& name, const char* what);

/// Whether this build compiled the products for `isa` (the wide sets only on x86-64 with GCC or
/// Clang, and unless configured with -DPHYDREAM_CPU_DISPATCH=OFF).
bool cpu_isa_built(CpuIsa isa);

/// Whether it is built and this CPU and operating system run it.
bool cpu_isa_supported(CpuIsa isa);

/// The widest supported set.
CpuIsa cpu_isa_best();

/// The set in use: set_cpu_isa's, else PHYDREAM_CPU_ISA's (read once; InputError when it names
/// an unknown or unsupported set), else the widest supported.
CpuIsa cpu_isa();

/// Uses `isa` from now on, for every thread. InputError when it is not supported.
void set_cpu_isa(CpuIsa isa);

/// Dense row-major products on contiguous matrices, with the set in use (overwrite c):
///   gemm_abt: c (m x n) = a (m x k) * b (n x k)^T
///   gemm_atb: c (k x n) = a (m x k)^T * b (m x n)
///   gemm_ab:  c (m x n) = a (m x k) * b (k x n)
/// Eigen's products, threaded with OpenMP as Eigen is (omp_get_max_threads()).
template <class S>
void gemm_abt(std::int64_t m, std::int64_t n, std::int64_t k, const S* a, const S* b, S* c);
template <class S>
void gemm_atb(std::int64_t m, std::int64_t n, std::int64_t k, const S* a, const S* b, S* c);
template <class S>
void gemm_ab(std::int64_t m, std::int64_t n, std::int64_t k, const S* a, const S* b, S* c);

/// y (n) = tanh(x) in float with the set in use, by Eigen's vectorised rational approximation
/// (within a few units in the last place of tanhf; tests/training/cpu_gemm_test.cpp bounds it).
/// The same x gives the same y under one set whatever the alignment. x and y may be the same.
void tanh_f32(std::int64_t n, const float* x, float* y);

}  // namespace phydream::training
