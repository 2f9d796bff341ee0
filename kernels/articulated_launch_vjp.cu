// The articulated engine's kernels of step_vjp and rollout_vjp (kernels/articulated_launch.h).
#include "kernels/articulated_kernels.cuh"

namespace phydream {
namespace kernels {

template <class S>
void launch_art_vjp(const ArtLaunch<S>& l, std::int64_t batch, const S* x, const S* u, S* gx, S* gu,
                    const S* g_next) {
  PHYDREAM_LAUNCH(l.grid, kArtThreads, 0, l.stream, art_vjp_kernel<S>)(l.m, l.sz, l.ws, l.tws, l.status, batch, x, u, gx, gu, g_next);
}
template <class S>
void launch_art_rollout_vjp(const ArtLaunch<S>& l, std::int64_t batch, std::int64_t horizon,
                            std::int64_t interval, std::int64_t checkpoint_scalars, S* checkpoints,
                            const S* x0, const S* actions, const S* states, const S* g_states,
                            const S* g_final, S* gx0, S* g_actions) {
  PHYDREAM_LAUNCH(l.grid, kArtThreads, 0, l.stream, art_rollout_vjp_kernel<S>)(
      l.m, l.sz, l.ws, l.tws, l.status, batch, horizon, interval, checkpoint_scalars, checkpoints, x0, actions, states, g_states, g_final,
      gx0, g_actions);
}

// the instantiations for float and double
#define PHYDREAM_ART_LAUNCH_VJP(S)                                                                    \
  template void launch_art_vjp<S>(const ArtLaunch<S>&, std::int64_t, const S*, const S*, S*, S*,        \
                                  const S*);                                                           \
  template void launch_art_rollout_vjp<S>(const ArtLaunch<S>&, std::int64_t, std::int64_t, std::int64_t, \
                                          std::int64_t, S*, const S*, const S*, const S*, const S*,     \
                                          const S*, S*, S*);
PHYDREAM_ART_LAUNCH_VJP(float)
PHYDREAM_ART_LAUNCH_VJP(double)
#undef PHYDREAM_ART_LAUNCH_VJP

}  // namespace kernels
}  // namespace phydream
