// The articulated engine's kernels of step, step_jvp, jacobian_fd and rollout (kernels/articulated_launch.h).
#include "kernels/articulated_kernels.cuh"

namespace phydream {
namespace kernels {

template <class S>
void launch_art_step(const ArtLaunch<S>& l, std::int64_t batch, const S* x, const S* u, S* xn) {
  PHYDREAM_LAUNCH(l.grid, kArtThreads, 0, l.stream, art_step_kernel<S>)(l.m, l.sz, l.ws, l.tws, l.status, batch, x, u, xn);
}
template <class S>
void launch_art_jvp(const ArtLaunch<S>& l, std::int64_t batch, const S* x, const S* u, const S* dx,
                    const S* du, S* xn, S* dxn) {
  PHYDREAM_LAUNCH(l.grid, kArtThreads, 0, l.stream, art_jvp_kernel<S>)(l.m, l.sz, l.ws, l.tws, l.status, batch, x, u, dx, du, xn, dxn);
}
template <class S>
void launch_art_jacobian_fd(const ArtLaunch<S>& l, std::int64_t batch, S eps, const S* x, const S* u,
                            S* jx, S* ju) {
  PHYDREAM_LAUNCH(l.grid, kArtThreads, 0, l.stream, art_jacobian_fd_kernel<S>)(l.m, l.sz, l.ws, l.tws, l.status, batch, eps, x, u, jx, ju);
}
template <class S>
void launch_art_rollout(const ArtLaunch<S>& l, std::int64_t batch, std::int64_t horizon, const S* x0,
                        const S* actions, S* states) {
  PHYDREAM_LAUNCH(l.grid, kArtThreads, 0, l.stream, art_rollout_kernel<S>)(l.m, l.sz, l.ws, l.tws, l.status, batch, horizon, x0, actions, states);
}

// the instantiations for float and double
#define PHYDREAM_ART_LAUNCH_STEP(S)                                                                \
  template void launch_art_step<S>(const ArtLaunch<S>&, std::int64_t, const S*, const S*, S*);      \
  template void launch_art_jvp<S>(const ArtLaunch<S>&, std::int64_t, const S*, const S*, const S*,  \
                                  const S*, S*, S*);                                                \
  template void launch_art_jacobian_fd<S>(const ArtLaunch<S>&, std::int64_t, S, const S*, const S*, \
                                          S*, S*);                                                  \
  template void launch_art_rollout<S>(const ArtLaunch<S>&, std::int64_t, std::int64_t, const S*,    \
                                      const S*, S*);
PHYDREAM_ART_LAUNCH_STEP(float)
PHYDREAM_ART_LAUNCH_STEP(double)
#undef PHYDREAM_ART_LAUNCH_STEP

}  // namespace kernels
}  // namespace phydream
