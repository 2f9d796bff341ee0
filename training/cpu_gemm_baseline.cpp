// training/cpu_gemm.h's products for the build's default instruction set (the x86-64 baseline
// unless the compiler flags say otherwise). Eigen's namespace is renamed here as in the wide sets'
// objects, so that this object's products, like theirs, use Eigen's general matrix product at
// every size (below) without changing any other object's Eigen.
#include <cstdint>

// Eigen's general product packs its operands, so its result does not depend on where they lie in
// memory; below 20 (rows + columns + depth) Eigen would instead compute products coefficient by
// coefficient, peeling to the vector width's alignment, which a 32- or 64-byte vector makes
// depend on the heap: the same call could round differently from run to run
#define EIGEN_GEMM_TO_COEFFBASED_THRESHOLD 0
#define Eigen phydream_eigen_baseline
#include <Eigen/Core>

#define PHYDREAM_GEMM_NS isa_baseline
#include "training/cpu_gemm_kernels.inc"
