// The articulated engine's kernel of jacobian (kernels/articulated_launch.h).
#include "kernels/articulated_kernels.cuh"

namespace phydream {
namespace kernels {

template <class S>
void launch_art_jacobian(const ArtLaunch<S>& l, std::int64_t batch, JacobianMode mode, const S* x,
                         const S* u, S* xn, S* jx, S* ju) {
  art_jacobian_kernel<S><<<l.grid, kArtThreads, 0, l.stream>>>(l.m, l.sz, l.ws, l.tws, l.status, batch, mode, x, u, xn, jx, ju);
}

template void launch_art_jacobian<float>(const ArtLaunch<float>&, std::int64_t, JacobianMode, const float*,
                                      const float*, float*, float*, float*);
template void launch_art_jacobian<double>(const ArtLaunch<double>&, std::int64_t, JacobianMode, const double*,
                                      const double*, double*, double*, double*);

}  // namespace kernels
}  // namespace phydream
