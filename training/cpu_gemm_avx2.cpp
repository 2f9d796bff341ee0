// training/cpu_gemm.h's products for AVX2 with fused multiply-add, compiled with -mavx2 -mfma (CMakeLists.txt).
// Eigen's namespace is renamed in this object alone, so that none of its inline functions,
// compiled here for AVX2, is shared with the baseline build's (and at link time taken for it).
#include <cstdint>

// Eigen's general product packs its operands, so its result does not depend on where they lie in
// memory; below 20 (rows + columns + depth) Eigen would instead compute products coefficient by
// coefficient, peeling to the vector width's alignment, which a 32- or 64-byte vector makes
// depend on the heap: the same call could round differently from run to run
#define EIGEN_GEMM_TO_COEFFBASED_THRESHOLD 0
#define Eigen phydream_eigen_avx2
#include <Eigen/Core>

#define PHYDREAM_GEMM_NS isa_avx2
#include "training/cpu_gemm_kernels.inc"
