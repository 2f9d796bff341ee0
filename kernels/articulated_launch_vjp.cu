// The articulated engine's kernels of step_vjp and rollout_vjp (kernels/articulated_launch.h).
#include "kernels/articulated_kernels.cuh"

namespace phydream {
namespace kernels {

template <class S>
void launch_art_vjp(const ArtLaunch<S>& l, std::int64_t batch, const S* x, const S* u, S* gx, S* gu,
                    const S* g_next) {
  art_vjp_kernel<S><<<l.grid, kArtThreads, 0, l.stream>>>(l.m, l.sz, l.ws, l.tws, l.status, batch, x, u, gx, gu, g_next);
}
template <class S>
void launch_art_rollout_vjp(const ArtLaunch<S>& l, std::int64_t batch, std::int64_t horizon,
                            std::int64_t interval, std::int64_t checkpoint_scalars, S* checkpoints,
                            const S* x0, const S* actions, const S* states, const S* g_states,
                            const S* g_final, S* gx0, S* g_actions) {
  art_rollout_vjp_kernel<S><<<l.grid, kArtThreads, 0, l.stream>>>(
      l.m, l.sz, l.ws, l.tws, l.status, batch, horizon, interval, checkpoint_scalars, checkpoints, x0, actions, states, g_states, g_final,
      gx0, g_actions);
}

template void launch_art_vjp<float>(const ArtLaunch<float>&, std::int64_t, const float*, const float*, float*, float*,
                                 const float*);
template void launch_art_rollout_vjp<float>(const ArtLaunch<float>&, std::int64_t, std::int64_t, std::int64_t,
                                         std::int64_t, float*, const float*, const float*, const float*,
                                         const float*, const float*, float*, float*);
template void launch_art_vjp<double>(const ArtLaunch<double>&, std::int64_t, const double*, const double*, double*, double*,
                                 const double*);
template void launch_art_rollout_vjp<double>(const ArtLaunch<double>&, std::int64_t, std::int64_t, std::int64_t,
                                         std::int64_t, double*, const double*, const double*, const double*,
                                         const double*, const double*, double*, double*);

}  // namespace kernels
}  // namespace phydream
