// CUDA engine of the double pendulum (models/double_pendulum.h), float and double.
#include "kernels/engine_kernels.cuh"
#include "models/double_pendulum.h"

PHYDREAM_INSTANTIATE_CUDA_ENGINE(phydream::models::DoublePendulum)
