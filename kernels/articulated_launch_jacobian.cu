// The articulated engine's kernel of jacobian (kernels/articulated_launch.h).
#include "kernels/articulated_kernels.cuh"

namespace phydream {
namespace kernels {

template <class S>
void launch_art_jacobian(const ArtLaunch<S>& l, std::int64_t batch, JacobianMode mode, const S* x,
                         const S* u, S* xn, S* jx, S* ju) {
  PHYDREAM_LAUNCH(l.grid, kArtThreads, 0, l.stream, art_jacobian_kernel<S>)(l.m, l.sz, l.ws, l.tws, l.status, batch, mode, x, u, xn, jx, ju);
}

// the instantiations for float and double
#define PHYDREAM_ART_LAUNCH_JACOBIAN(S)                                                            \
  template void launch_art_jacobian<S>(const ArtLaunch<S>&, std::int64_t, JacobianMode, const S*, \
                                       const S*, S*, S*, S*);
PHYDREAM_ART_LAUNCH_JACOBIAN(float)
PHYDREAM_ART_LAUNCH_JACOBIAN(double)
#undef PHYDREAM_ART_LAUNCH_JACOBIAN

}  // namespace kernels
}  // namespace phydream
