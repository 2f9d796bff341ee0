// The articulated engine's kernels of step, step_jvp, jacobian_fd and rollout (kernels/articulated_launch.h).
#include "kernels/articulated_kernels.cuh"

namespace phydream {
namespace kernels {

template <class S>
void launch_art_step(const ArtLaunch<S>& l, std::int64_t batch, const S* x, const S* u, S* xn) {
  art_step_kernel<S><<<l.grid, kArtThreads, 0, l.stream>>>(l.m, l.sz, l.ws, l.tws, l.status, batch, x, u, xn);
}
template <class S>
void launch_art_jvp(const ArtLaunch<S>& l, std::int64_t batch, const S* x, const S* u, const S* dx,
                    const S* du, S* xn, S* dxn) {
  art_jvp_kernel<S><<<l.grid, kArtThreads, 0, l.stream>>>(l.m, l.sz, l.ws, l.tws, l.status, batch, x, u, dx, du, xn, dxn);
}
template <class S>
void launch_art_jacobian_fd(const ArtLaunch<S>& l, std::int64_t batch, S eps, const S* x, const S* u,
                            S* jx, S* ju) {
  art_jacobian_fd_kernel<S><<<l.grid, kArtThreads, 0, l.stream>>>(l.m, l.sz, l.ws, l.tws, l.status, batch, eps, x, u, jx, ju);
}
template <class S>
void launch_art_rollout(const ArtLaunch<S>& l, std::int64_t batch, std::int64_t horizon, const S* x0,
                        const S* actions, S* states) {
  art_rollout_kernel<S><<<l.grid, kArtThreads, 0, l.stream>>>(l.m, l.sz, l.ws, l.tws, l.status, batch, horizon, x0, actions, states);
}

template void launch_art_step<float>(const ArtLaunch<float>&, std::int64_t, const float*, const float*, float*);
template void launch_art_jvp<float>(const ArtLaunch<float>&, std::int64_t, const float*, const float*, const float*,
                                 const float*, float*, float*);
template void launch_art_jacobian_fd<float>(const ArtLaunch<float>&, std::int64_t, float, const float*, const float*,
                                         float*, float*);
template void launch_art_rollout<float>(const ArtLaunch<float>&, std::int64_t, std::int64_t, const float*,
                                     const float*, float*);
template void launch_art_step<double>(const ArtLaunch<double>&, std::int64_t, const double*, const double*, double*);
template void launch_art_jvp<double>(const ArtLaunch<double>&, std::int64_t, const double*, const double*, const double*,
                                 const double*, double*, double*);
template void launch_art_jacobian_fd<double>(const ArtLaunch<double>&, std::int64_t, double, const double*, const double*,
                                         double*, double*);
template void launch_art_rollout<double>(const ArtLaunch<double>&, std::int64_t, std::int64_t, const double*,
                                     const double*, double*);

}  // namespace kernels
}  // namespace phydream
