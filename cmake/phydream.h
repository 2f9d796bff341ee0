// PhyDream's public API in one include: the batched Simulator, the environment registry,
// backend buffers and NPY I/O.
#pragma once

#include "engine/buffer.h"
#include "engine/errors.h"
#include "engine/npy.h"
#include "engine/simulator.h"
#include "models/envs.h"
