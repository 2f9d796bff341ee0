// Launchers of the articulated engine's kernels (kernels/articulated_kernels.cuh), one per
// Simulator call, defined in kernels/articulated_launch_*.cu for float and double and called by
// the engine in kernels/articulated.cu.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "engine/articulated_ops.h"
#include "engine/model_view.h"
#include "engine/simulator.h"

namespace phydream {
namespace kernels {

/// Threads per block of the articulated kernels.
constexpr int kArtThreads = 128;

/// What every launch shares: the model's device view, the workspace sizes and the grid's
/// workspaces (tws null for calls without tangents), the per-environment solver status, the
/// grid (blocks of kArtThreads) and the stream.
template <class S>
struct ArtLaunch {
  ModelView<S> m;
  ArticulatedWorkspaceSizes sz;
  S* ws;
  Vec<S, kArticulatedChunk>* tws;
  std::uint8_t* status;
  unsigned grid;
  cudaStream_t stream;
};

template <class S>
void launch_art_step(const ArtLaunch<S>& l, std::int64_t batch, const S* x, const S* u, S* xn);
template <class S>
void launch_art_jvp(const ArtLaunch<S>& l, std::int64_t batch, const S* x, const S* u, const S* dx,
                    const S* du, S* xn, S* dxn);
template <class S>
void launch_art_vjp(const ArtLaunch<S>& l, std::int64_t batch, const S* x, const S* u, S* gx, S* gu,
                    const S* g_next);
template <class S>
void launch_art_jacobian(const ArtLaunch<S>& l, std::int64_t batch, JacobianMode mode, const S* x,
                         const S* u, S* xn, S* jx, S* ju);
template <class S>
void launch_art_jacobian_fd(const ArtLaunch<S>& l, std::int64_t batch, S eps, const S* x, const S* u,
                            S* jx, S* ju);
template <class S>
void launch_art_rollout(const ArtLaunch<S>& l, std::int64_t batch, std::int64_t horizon, const S* x0,
                        const S* actions, S* states);
template <class S>
void launch_art_rollout_vjp(const ArtLaunch<S>& l, std::int64_t batch, std::int64_t horizon,
                            std::int64_t interval, std::int64_t checkpoint_scalars, S* checkpoints,
                            const S* x0, const S* actions, const S* states, const S* g_states,
                            const S* g_final, S* gx0, S* g_actions);

}  // namespace kernels
}  // namespace phydream
