// A counter-based random number generator for host and device: every draw is a pure function of
// (seed, stream, index), so the CPU and CUDA samplers produce the same batches and any batch can
// be regenerated (resume, reproducibility) without carrying generator state.
#pragma once

#include <cstdint>

#include "engine/core.h"

namespace phydream::training {

/// SplitMix64's finaliser (Steele, Lea & Flood 2014): a bijective 64-bit mixer.
PHYDREAM_HD std::uint64_t mix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// A uniform double in [0, 1) for draw `index` of `stream` under `seed` (53 random bits).
PHYDREAM_HD double uniform01(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
  const std::uint64_t h = mix64(seed ^ mix64(stream ^ mix64(index)));
  return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace phydream::training
