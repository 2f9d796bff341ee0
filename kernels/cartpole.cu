// CUDA engine of the cartpole (models/cartpole.h), float and double.
#include "kernels/engine_kernels.cuh"
#include "models/cartpole.h"

PHYDREAM_INSTANTIATE_CUDA_ENGINE(phydream::models::Cartpole)
