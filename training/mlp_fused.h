// The fused small-width MLP path: one thread block runs a tile of samples through the whole
// network (forward with the input Jacobian's tangent rows, then the backward and double
// backward), with the weights, the tile's activations and the block's gradient accumulator in
// shared memory, so a training step is two kernels over the batch instead of a GEMM and an
// elementwise kernel per layer and direction (kernels/mlp_kernels.cu).
//
// The per-tile work is written here once, for host and device, as phases separated by
// Team::sync(): inside a phase each of the team's nt threads takes the work items
// idx = tid, tid + nt, ... and every item writes its own outputs, so a phase never races with
// itself, and a phase only reads what earlier phases wrote. On the device the team is the thread
// block and sync() is __syncthreads(); on the host (tests) the team is one thread (tid 0, nt 1)
// and sync() does nothing, so the CPU tests run exactly the arithmetic the kernels run.
//
// The maths is CpuMlp's (training/mlp_cpu.h) on the same augmented rows, r = 1 + d rows per
// sample with tangents (r = 1 without): per sample s a primal row and tangent row j = 1 .. d
// holding the tangent of input j. What the fused form saves:
//   - layer 0's tangent rows are W_0's columns over in_std (the inputs' tangents are one-hot),
//     and its weight gradient from them is G's tangent rows over in_std: no products;
//   - a hidden layer's output is kept as its pre-activation Z (every row) and sigma, sigma',
//     sigma'' of the primal row (F, D1, D2, per sample); the next layer reads the activated rows
//     as F (primal) and D1 * Z (tangents) on the fly.
// Backward (per hidden layer, G_A the gradient w.r.t. its output rows):
//   primal row:   G_z = D1 G_A + D2 sum_j (G_A_j Z_j),   tangent rows: G_Z_j = D1 G_A_j
//   dW_l += sum over rows G_l^T A_l,  db_l += sum over primal rows G_l,  G_A = G_l W_l.
#pragma once

#include <cstddef>
#include <cstdint>

#include "engine/core.h"
#include "training/activation.h"
#include "training/mlp.h"

namespace phydream::training {

constexpr int kFusedMaxLayers = 8;  // hidden layers + output layer; deeper nets take the GEMMs

/// The network as the fused path sees it; pointers in the memory of the side that runs it.
struct FusedNet {
  int L = 0;                       // layers (hidden + output)
  int width[kFusedMaxLayers + 1];  // width[0] = d = nx + nu, width[l + 1] = layer l's outputs
  std::int64_t woff[kFusedMaxLayers];  // offset of W_l (width[l + 1], width[l]) in theta
  std::int64_t boff[kFusedMaxLayers];  // offset of b_l (width[l + 1]) in theta
  std::int64_t P = 0;              // parameters
  Activation act = Activation::tanh;
  bool residual = true;
  const double* in_mean = nullptr;  // (d)
  const double* in_std = nullptr;   // (d)
  const double* out_mean = nullptr;  // (k)
  const double* out_std = nullptr;   // (k)

  PHYDREAM_HD int d() const { return width[0]; }
  PHYDREAM_HD int k() const { return width[L]; }
  PHYDREAM_HD int max_width() const {
    int w = 0;
    for (int l = 0; l <= L; ++l) w = w > width[l] ? w : width[l];
    return w;
  }
};

/// Whether the fused path can run `spec` (depth within kFusedMaxLayers); whether its tiles fit
/// a block's shared memory is fused_layout's total against the device's limit.
inline bool fused_depth_ok(const MlpSpec& spec) { return spec.num_layers() <= kFusedMaxLayers; }

/// The FusedNet of `spec` (fused_depth_ok); `consts` holds in_mean (d), in_std (d),
/// out_mean (k), out_std (k) one after the other, in the memory of the side that runs it.
inline FusedNet fused_net(const MlpSpec& spec, const double* consts) {
  FusedNet n;
  n.L = spec.num_layers();
  for (int l = 0; l < n.L; ++l) {
    n.width[l] = spec.layer_in(l);
    n.width[l + 1] = spec.layer_out(l);
    n.woff[l] = static_cast<std::int64_t>(spec.weight_offset(l));
    n.boff[l] = static_cast<std::int64_t>(spec.bias_offset(l));
  }
  n.P = static_cast<std::int64_t>(spec.num_params());
  n.act = spec.activation;
  n.residual = spec.residual;
  const int d = spec.n_in(), k = spec.n_out();
  n.in_mean = consts;
  n.in_std = consts + d;
  n.out_mean = consts + 2 * d;
  n.out_std = consts + 2 * d + k;
  return n;
}

/// Where everything lives in a block's shared memory (offsets in elements of S), for tiles of
/// up to `ts` samples of r rows. W_l is stored row by row with an odd row stride, so the 32
/// threads of a warp that read one column of W_l for 32 consecutive outputs hit 32 banks.
struct FusedLayout {
  int ts = 0;     // samples per tile
  int r = 1;      // rows per sample: 1 + d with tangents, else 1
  int wstride[kFusedMaxLayers];
  std::int64_t w[kFusedMaxLayers], b[kFusedMaxLayers];  // weights and biases
  std::int64_t grad = 0;  // (P) the block's gradient accumulator, theta's layout
  std::int64_t h0 = 0;    // (ts, d) normalised inputs
  std::int64_t z[kFusedMaxLayers];   // hidden layer l: (ts r, width[l + 1]) pre-activations
  std::int64_t f[kFusedMaxLayers], d1[kFusedMaxLayers], d2[kFusedMaxLayers];  // (ts, width)
  std::int64_t y = 0;     // forward: (ts r, k) output rows
  std::int64_t g = 0;     // backward: (ts r, max width) gradient rows
  std::int64_t ga = 0;    // backward: (ts r, max width)
  std::int64_t total = 0;  // elements in all
};

/// The layout for tiles of ts samples; `backward` adds the gradient buffers (G, G_A and the
/// accumulator), otherwise the output rows Y.
PHYDREAM_HD FusedLayout fused_layout(const FusedNet& n, int ts, bool tangents, bool backward) {
  FusedLayout lay;
  lay.ts = ts;
  lay.r = tangents ? 1 + n.d() : 1;
  const std::int64_t rows = std::int64_t(ts) * lay.r;
  std::int64_t at = 0;
  for (int l = 0; l < n.L; ++l) {
    const int in = n.width[l], out = n.width[l + 1];
    lay.wstride[l] = in | 1;
    lay.w[l] = at;
    at += std::int64_t(out) * lay.wstride[l];
    lay.b[l] = at;
    at += out;
  }
  lay.grad = at;
  if (backward) at += n.P;
  lay.h0 = at;
  at += std::int64_t(ts) * n.d();
  for (int l = 0; l + 1 < n.L; ++l) {
    const int w = n.width[l + 1];
    lay.z[l] = at;
    at += rows * w;
    lay.f[l] = at;
    at += std::int64_t(ts) * w;
    lay.d1[l] = at;
    at += std::int64_t(ts) * w;
    lay.d2[l] = at;
    at += std::int64_t(ts) * w;
  }
  lay.y = at;
  if (!backward) at += rows * n.k();
  lay.g = at;
  if (backward) at += rows * n.max_width();
  lay.ga = at;
  if (backward) at += rows * n.max_width();
  lay.total = at;
  return lay;
}

/// The threads that share one tile: tid in [0, nt).
#if defined(PHYDREAM_CUDA_EMULATION)
}  // namespace phydream::training
void phydream_emulated_syncthreads();  // tests/emulation/cuda_emulation.cpp
namespace phydream::training {
#endif

struct Team {
  int tid = 0;
  int nt = 1;
  PHYDREAM_HD void sync() const {
#if defined(__CUDA_ARCH__)
    __syncthreads();
#elif defined(PHYDREAM_CUDA_EMULATION)
    if (nt > 1) phydream_emulated_syncthreads();  // the kernels on the host (tests/emulation/)
#endif
  }
};

/// Copies theta's weights and biases into the shared layout and, for the backward, zeroes the
/// gradient accumulator.
template <class S>
PHYDREAM_HD void fused_load(const FusedNet& n, const FusedLayout& lay, const S* theta,
                            bool backward, S* sh, Team t) {
  for (int l = 0; l < n.L; ++l) {
    const int in = n.width[l], out = n.width[l + 1];
    for (std::int64_t idx = t.tid; idx < std::int64_t(out) * in; idx += t.nt) {
      const std::int64_t o = idx / in, i = idx % in;
      sh[lay.w[l] + o * lay.wstride[l] + i] = theta[n.woff[l] + idx];
    }
    for (int o = t.tid; o < out; o += t.nt) sh[lay.b[l] + o] = theta[n.boff[l] + o];
  }
  if (backward) {
    for (std::int64_t p = t.tid; p < n.P; p += t.nt) sh[lay.grad + p] = S(0);
  }
  t.sync();
}

/// The forward pass of one tile of ns <= lay.ts samples, inputs (ns, d): h0, every hidden
/// layer's Z, F, D1, D2 and, when `output_layer`, the output rows Y.
template <class S>
PHYDREAM_HD void fused_tile_forward(const FusedNet& n, const FusedLayout& lay, int ns,
                                    const S* inputs, bool output_layer, S* sh, Team t) {
  const int d = n.d(), r = lay.r;
  const int rows = ns * r;
  for (int idx = t.tid; idx < ns * d; idx += t.nt) {
    const int i = idx % d;
    sh[lay.h0 + idx] = S((double(inputs[idx]) - n.in_mean[i]) / n.in_std[i]);
  }
  t.sync();
  const int last = output_layer ? n.L : n.L - 1;
  for (int l = 0; l < last; ++l) {
    const int in = n.width[l], out = n.width[l + 1];
    const S* W = sh + lay.w[l];
    const int ws = lay.wstride[l];
    S* dst = sh + (l + 1 < n.L ? lay.z[l] : lay.y);
    for (int idx = t.tid; idx < rows * out; idx += t.nt) {
      const int row = idx / out, o = idx % out;
      const int s = row / r, j = row % r;  // j = 0: primal row, else the tangent of input j - 1
      const S* Wo = W + o * ws;
      S acc = S(0);
      if (l == 0) {
        if (j == 0) {
          acc = sh[lay.b[l] + o];
          const S* h = sh + lay.h0 + s * d;
          for (int i = 0; i < in; ++i) acc += Wo[i] * h[i];
        } else {
          acc = S(double(Wo[j - 1]) / n.in_std[j - 1]);
        }
      } else if (j == 0) {
        acc = sh[lay.b[l] + o];
        const S* F = sh + lay.f[l - 1] + s * in;
        for (int i = 0; i < in; ++i) acc += Wo[i] * F[i];
      } else {
        const S* D1 = sh + lay.d1[l - 1] + s * in;
        const S* Z = sh + lay.z[l - 1] + std::int64_t(row) * in;
        for (int i = 0; i < in; ++i) acc += Wo[i] * (D1[i] * Z[i]);
      }
      dst[std::int64_t(row) * out + o] = acc;
    }
    t.sync();
    if (l + 1 == n.L) break;
    for (int idx = t.tid; idx < ns * out; idx += t.nt) {
      const int s = idx / out, o = idx % out;
      activate(n.act, sh[lay.z[l] + std::int64_t(s) * r * out + o], &sh[lay.f[l] + idx],
               &sh[lay.d1[l] + idx], &sh[lay.d2[l] + idx]);
    }
    t.sync();
  }
}

/// The tile's predictions pred (ns, k) and, with tangents, Jacobians jac (ns, k, d) from Y
/// (after fused_tile_forward with the output layer); inputs (ns, d) for the residual.
template <class S>
PHYDREAM_HD void fused_tile_outputs(const FusedNet& n, const FusedLayout& lay, int ns,
                                    const S* inputs, S* pred, S* jac, S* sh, Team t) {
  const int d = n.d(), k = n.k(), r = lay.r;
  const S* Y = sh + lay.y;
  for (int idx = t.tid; idx < ns * k; idx += t.nt) {
    const int s = idx / k, i = idx % k;
    const double base = n.residual ? double(inputs[s * d + i]) : 0.0;
    pred[idx] = S(base + n.out_mean[i] + n.out_std[i] * double(Y[s * r * k + i]));
  }
  if (jac != nullptr && r > 1) {
    for (int idx = t.tid; idx < ns * k * d; idx += t.nt) {
      const int s = idx / (k * d), i = (idx / d) % k, j = idx % d;
      const double identity = (n.residual && i == j) ? 1.0 : 0.0;
      jac[idx] = S(n.out_std[i] * double(Y[(s * r + 1 + j) * k + i]) + identity);
    }
  }
  t.sync();
}

/// The backward and double backward of one tile, after fused_tile_forward without the output
/// layer: g_pred (ns, k) and, with tangents, g_jac (ns, k, d) are the loss gradient w.r.t. the
/// tile's predictions and Jacobians; the parameter gradient is added to the accumulator.
template <class S>
PHYDREAM_HD void fused_tile_backward(const FusedNet& n, const FusedLayout& lay, int ns,
                                     const S* g_pred, const S* g_jac, S* sh, Team t) {
  const int d = n.d(), k = n.k(), r = lay.r;
  const int rows = ns * r;
  S* G = sh + lay.g;
  S* GA = sh + lay.ga;
  S* acc_grad = sh + lay.grad;
  // the gradient w.r.t. the output rows: y enters pred, the tangent rows enter J, through out_std
  for (int idx = t.tid; idx < rows * k; idx += t.nt) {
    const int row = idx / k, i = idx % k;
    const int s = row / r, j = row % r;
    const double g = j == 0 ? double(g_pred[s * k + i]) : double(g_jac[(s * k + i) * d + j - 1]);
    G[idx] = S(n.out_std[i] * g);
  }
  t.sync();
  for (int l = n.L - 1; l >= 0; --l) {
    const int in = n.width[l], out = n.width[l + 1];
    const std::int64_t nw = std::int64_t(out) * in;
    // one phase reading G: dW_l (out, in), db_l (out) and, below the first layer, G_A = G W_l
    const std::int64_t items = nw + out + (l > 0 ? std::int64_t(rows) * in : 0);
    for (std::int64_t idx = t.tid; idx < items; idx += t.nt) {
      if (idx < nw) {
        const int o = static_cast<int>(idx / in), i = static_cast<int>(idx % in);
        S acc = S(0);
        if (l == 0) {
          const S inv_std = S(1.0 / n.in_std[i]);
          for (int s = 0; s < ns; ++s) {
            acc += G[std::int64_t(s) * r * out + o] * sh[lay.h0 + s * d + i];
            if (r > 1) acc += G[(std::int64_t(s) * r + 1 + i) * out + o] * inv_std;
          }
        } else {
          const S* F = sh + lay.f[l - 1];
          const S* D1 = sh + lay.d1[l - 1];
          const S* Z = sh + lay.z[l - 1];
          for (int s = 0; s < ns; ++s) {
            acc += G[std::int64_t(s) * r * out + o] * F[s * in + i];
            const S dsi = D1[s * in + i];
            for (int j = 1; j < r; ++j) {
              const std::int64_t row = std::int64_t(s) * r + j;
              acc += G[row * out + o] * (dsi * Z[row * in + i]);
            }
          }
        }
        acc_grad[n.woff[l] + idx] += acc;
      } else if (idx < nw + out) {
        const int o = static_cast<int>(idx - nw);
        S acc = S(0);
        for (int s = 0; s < ns; ++s) acc += G[std::int64_t(s) * r * out + o];
        acc_grad[n.boff[l] + o] += acc;
      } else {
        const std::int64_t e = idx - nw - out;
        const std::int64_t row = e / in;
        const int i = static_cast<int>(e % in);
        const S* W = sh + lay.w[l];
        const int ws = lay.wstride[l];
        S acc = S(0);
        for (int o = 0; o < out; ++o) acc += G[row * out + o] * W[o * ws + i];
        GA[e] = acc;
      }
    }
    t.sync();
    if (l == 0) break;
    // through hidden layer l - 1's activation: G (rows, in) from G_A; its curvature term
    // sum_j G_A_j Z_j is how the Jacobian moves with z through sigma'
    const S* Z = sh + lay.z[l - 1];
    for (int idx = t.tid; idx < ns * in; idx += t.nt) {
      const int s = idx / in, i = idx % in;
      const S d1 = sh[lay.d1[l - 1] + idx], d2 = sh[lay.d2[l - 1] + idx];
      const std::int64_t base = std::int64_t(s) * r * in + i;  // (row s r, column i)
      S curvature = S(0);
      for (int j = 1; j < r; ++j) {
        curvature += GA[base + j * in] * Z[base + j * in];
        G[base + j * in] = d1 * GA[base + j * in];
      }
      G[base] = d1 * GA[base] + d2 * curvature;
    }
    t.sync();
  }
}

}  // namespace phydream::training
