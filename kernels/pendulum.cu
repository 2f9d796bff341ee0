// CUDA engine of the pendulum (models/pendulum.h), float and double.
#include "kernels/engine_kernels.cuh"
#include "models/pendulum.h"

PHYDREAM_INSTANTIATE_CUDA_ENGINE(phydream::models::Pendulum)
