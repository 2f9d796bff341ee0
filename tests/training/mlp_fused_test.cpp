// The fused small-width MLP path (training/mlp_fused.h), run on the host exactly as the CUDA
// kernels run it, tile by tile, against the CPU reference CpuMlp: predictions and input
// Jacobians, and the gradient of every loss (activation x metric x scaling x weighting) with
// the loss head's gradients fed into the fused backward. Tiles of 1, 3 and more samples than the
// batch, accumulators shared across a block's tiles and summed across blocks, as on the device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "training/loss_cases.h"
#include "training/mlp.h"
#include "training/mlp_cpu.h"
#include "training/mlp_fused.h"

namespace phydream::testing {
namespace {

using training::Activation;
using training::FusedLayout;
using training::FusedNet;
using training::MlpSpec;
using training::Team;

std::vector<double> constants(const MlpSpec& spec) {
  std::vector<double> c;
  for (const auto* v : {&spec.in_mean, &spec.in_std, &spec.out_mean, &spec.out_std}) {
    c.insert(c.end(), v->begin(), v->end());
  }
  return c;
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

// max |a - b| over max(max |b|, 1)
double rel_err(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const double e = std::abs(a[i] - b[i]);
    if (!(e <= worst)) worst = e;  // NaN sticks
  }
  return worst / std::max(max_abs(b), 1.0);
}

// The fused forward over a batch, in tiles of ts samples: pred (N, k), jac (N, k, d) or empty.
void fused_forward(const MlpSpec& spec, const std::vector<double>& theta,
                   const std::vector<double>& inputs, std::int64_t N, int ts, bool tangents,
                   std::vector<double>* pred, std::vector<double>* jac) {
  const std::vector<double> consts = constants(spec);
  const FusedNet net = training::fused_net(spec, consts.data());
  const FusedLayout lay = training::fused_layout(net, ts, tangents, false);
  std::vector<double> sh(static_cast<std::size_t>(lay.total), std::nan(""));
  const int k = spec.n_out(), d = spec.n_in();
  pred->assign(N * k, 0.0);
  jac->assign(tangents ? N * k * d : 0, 0.0);
  const Team team;
  training::fused_load(net, lay, theta.data(), false, sh.data(), team);
  for (std::int64_t s0 = 0; s0 < N; s0 += ts) {
    const int ns = static_cast<int>(std::min<std::int64_t>(ts, N - s0));
    training::fused_tile_forward(net, lay, ns, inputs.data() + s0 * d, true, sh.data(), team);
    training::fused_tile_outputs(net, lay, ns, inputs.data() + s0 * d, pred->data() + s0 * k,
                                 tangents ? jac->data() + s0 * k * d : nullptr, sh.data(), team);
  }
}

// The fused backward: the tiles are dealt round-robin to `blocks` blocks, each with its own
// accumulator, summed at the end (the kernel's partials and their reduction).
std::vector<double> fused_grad(const MlpSpec& spec, const std::vector<double>& theta,
                               const std::vector<double>& inputs, std::int64_t N, int ts,
                               bool tangents, const std::vector<double>& g_pred,
                               const std::vector<double>& g_jac, int blocks) {
  const std::vector<double> consts = constants(spec);
  const FusedNet net = training::fused_net(spec, consts.data());
  const FusedLayout lay = training::fused_layout(net, ts, tangents, true);
  const int k = spec.n_out(), d = spec.n_in();
  const std::int64_t tiles = (N + ts - 1) / ts;
  std::vector<double> grad(spec.num_params(), 0.0);
  const Team team;
  for (int blk = 0; blk < blocks; ++blk) {
    std::vector<double> sh(static_cast<std::size_t>(lay.total), std::nan(""));
    training::fused_load(net, lay, theta.data(), true, sh.data(), team);
    for (std::int64_t tile = blk; tile < tiles; tile += blocks) {
      const std::int64_t s0 = tile * ts;
      const int ns = static_cast<int>(std::min<std::int64_t>(ts, N - s0));
      training::fused_tile_forward(net, lay, ns, inputs.data() + s0 * d, false, sh.data(), team);
      training::fused_tile_backward(net, lay, ns, g_pred.data() + s0 * k,
                                    tangents ? g_jac.data() + s0 * k * d : nullptr, sh.data(),
                                    team);
    }
    for (std::size_t p = 0; p < grad.size(); ++p) grad[p] += sh[lay.grad + p];
  }
  return grad;
}

struct Net {
  std::string name;
  std::vector<int> hidden;
};

const std::vector<Net> kNets = {{"linear", {}}, {"one", {7}}, {"two", {6, 5}},
                                {"three", {5, 9, 3}}, {"wide", {33, 64}}};

TEST(FusedMlp, ForwardEqualsTheReference) {
  for (const Net& net : kNets) {
    for (Activation act : {Activation::tanh, Activation::silu, Activation::softplus,
                           Activation::relu}) {
      for (bool residual : {true, false}) {
        const MlpSpec spec = make_spec(act, residual, net.hidden);
        const std::int64_t N = 11;
        const Batch b = random_batch(spec, N, 3);
        const std::vector<double> theta = random_theta(spec, 5, 0.2);
        training::CpuMlp<double> ref(spec, loss_config(1, 0, training::JalMetric::mse,
                                                       training::JacScaling::none, spec));
        std::vector<double> pred(N * spec.n_out()), jac(N * spec.n_out() * spec.n_in());
        ref.forward(N, theta.data(), b.inputs.data(), pred.data(), jac.data());
        for (int ts : {1, 3, 16}) {
          const std::string where = net.name + " " + training::activation_name(act) +
                                    " residual " + std::to_string(residual) + " tile " +
                                    std::to_string(ts);
          std::vector<double> fp, fj;
          fused_forward(spec, theta, b.inputs, N, ts, true, &fp, &fj);
          EXPECT_LT(rel_err(fp, pred), 1e-13) << "pred, " << where;
          EXPECT_LT(rel_err(fj, jac), 1e-13) << "jac, " << where;
          fused_forward(spec, theta, b.inputs, N, ts, false, &fp, &fj);
          EXPECT_LT(rel_err(fp, pred), 1e-13) << "pred without tangents, " << where;
          EXPECT_TRUE(fj.empty());
        }
      }
    }
  }
}

class FusedLoss : public ::testing::TestWithParam<LossCase> {};

// fused forward -> the reference loss head -> fused backward equals CpuMlp::loss_and_grad
TEST_P(FusedLoss, GradientEqualsTheReference) {
  const LossCase c = GetParam();
  for (const Net& net : kNets) {
    const MlpSpec spec = make_spec(std::get<0>(c), std::get<3>(c) != 1, net.hidden);
    const training::LossConfig cfg = case_config(c, spec);
    const bool tangents = cfg.uses_jacobian();
    const std::int64_t N = 13;
    const Batch b = random_batch(spec, N, 17);
    const std::vector<double> theta = random_theta(spec, 23, 0.2);
    const int k = spec.n_out(), d = spec.n_in();

    training::CpuMlp<double> ref(spec, cfg);
    std::vector<double> grad_ref(spec.num_params());
    const training::LossTerms terms_ref = ref.loss_and_grad(
        N, theta.data(), b.inputs.data(), b.targets.data(), b.target_jac.data(), grad_ref.data());

    for (int ts : {1, 4, 32}) {
      const std::string where = net.name + " tile " + std::to_string(ts);
      std::vector<double> pred, jac;
      fused_forward(spec, theta, b.inputs, N, ts, tangents, &pred, &jac);
      std::vector<double> g_pred(N * k), g_jac(tangents ? N * k * d : 0);
      const training::LossTerms terms = training::loss_head(
          cfg, N, k, d, pred.data(), b.targets.data(), tangents ? jac.data() : nullptr,
          tangents ? b.target_jac.data() : nullptr, g_pred.data(),
          tangents ? g_jac.data() : nullptr);
      EXPECT_NEAR(terms.total, terms_ref.total, 1e-12 * std::max(1.0, terms_ref.total)) << where;
      for (int blocks : {1, 3}) {
        const std::vector<double> grad =
            fused_grad(spec, theta, b.inputs, N, ts, tangents, g_pred, g_jac, blocks);
        EXPECT_LT(rel_err(grad, grad_ref), 1e-12) << where << " blocks " << blocks;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllLosses, FusedLoss, all_loss_cases({0, 1, 2}), loss_case_name);

TEST(FusedMlp, LayoutKeepsBuffersApartAndRowsOnOddStrides) {
  const MlpSpec spec = make_spec(Activation::tanh, true, {64, 32});
  const std::vector<double> consts = constants(spec);
  const FusedNet net = training::fused_net(spec, consts.data());
  EXPECT_EQ(net.P, static_cast<std::int64_t>(spec.num_params()));
  for (bool backward : {false, true}) {
    const FusedLayout lay = training::fused_layout(net, 5, true, backward);
    EXPECT_EQ(lay.r, 1 + spec.n_in());
    // every buffer [start, start + size) in increasing, non-overlapping order
    std::vector<std::pair<std::int64_t, std::int64_t>> spans;
    for (int l = 0; l < net.L; ++l) {
      EXPECT_EQ(lay.wstride[l] % 2, 1);
      EXPECT_GE(lay.wstride[l], net.width[l]);
      spans.push_back({lay.w[l], std::int64_t(net.width[l + 1]) * lay.wstride[l]});
      spans.push_back({lay.b[l], net.width[l + 1]});
    }
    if (backward) spans.push_back({lay.grad, net.P});
    spans.push_back({lay.h0, 5 * net.d()});
    for (int l = 0; l + 1 < net.L; ++l) {
      const std::int64_t w = net.width[l + 1];
      spans.push_back({lay.z[l], 5 * lay.r * w});
      spans.push_back({lay.f[l], 5 * w});
      spans.push_back({lay.d1[l], 5 * w});
      spans.push_back({lay.d2[l], 5 * w});
    }
    if (!backward) spans.push_back({lay.y, 5 * lay.r * net.k()});
    if (backward) {
      spans.push_back({lay.g, 5 * lay.r * net.max_width()});
      spans.push_back({lay.ga, 5 * lay.r * net.max_width()});
    }
    std::int64_t end = 0;
    for (const auto& [start, size] : spans) {
      EXPECT_GE(start, end);
      end = start + size;
    }
    EXPECT_EQ(lay.total, end);
  }
}

}  // namespace
}  // namespace phydream::testing
