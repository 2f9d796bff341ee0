// The CPU reference of the MLP: forward pass with the input Jacobian, the loss head (MSE and JAL
// with its scalings), and the hand-written backward and double backward, with Eigen GEMMs.
//
// The batch is processed as one "augmented" matrix per layer: for each sample one primal row
// followed by d = nx + nu tangent rows (the rows of T_l^T), so every layer's primal and tangent
// products are a single GEMM with N (1 + d) rows. Without JAL the tangent rows are dropped.
// Backward, per hidden layer, with G_A the gradient w.r.t. the layer's output rows:
//   primal row:   G_z  = sigma'(z) G_h + sigma''(z) sum_j (G_T_j * Z'_j)
//   tangent row:  G_Z'_j = sigma'(z) G_T_j
//   dW += G_Z^T A_prev,  db += sum of primal rows of G_Z,  G_A_prev = G_Z W
// where the sigma'' term is what reverse mode over the tangent chain adds (the double backward).
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <vector>

#include "training/mlp.h"

namespace phydream::training {

/// Loss value and its gradient w.r.t. the predictions and the network's Jacobians.
/// pred, targets: (N, k); jac, target_jac: (N, k, d) (may be null when cfg has no JAL term);
/// g_pred (N, k) and g_jac (N, k, d) are overwritten (g_jac may be null without JAL).
template <class S>
LossTerms loss_head(const LossConfig& cfg, std::int64_t N, int k, int d, const S* pred,
                    const S* targets, const S* jac, const S* target_jac, S* g_pred, S* g_jac);

/// Limits the OpenMP threads of the calling thread's parallel regions (its nthreads ICV, which
/// Eigen's GEMM also reads) to `threads` while in scope; 0 leaves them as they are (all cores).
class OmpThreadLimit {
 public:
  explicit OmpThreadLimit(int threads);
  ~OmpThreadLimit();
  OmpThreadLimit(const OmpThreadLimit&) = delete;
  OmpThreadLimit& operator=(const OmpThreadLimit&) = delete;

 private:
  int saved_ = 0;
};

template <class S>
class CpuMlp {
 public:
  using Matrix = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

  /// threads: OpenMP threads of every pass (GEMMs and elementwise loops), 0 = all cores.
  CpuMlp(const MlpSpec& spec, const LossConfig& loss, int threads = 0);

  const MlpSpec& spec() const { return spec_; }
  const LossConfig& loss() const { return loss_; }

  /// Predictions pred (N, nx) and, when jac is not null, the input Jacobian (N, nx, nx + nu)
  /// of the full map, for inputs (N, nx + nu) = [x, u]. theta: (num_params).
  void forward(std::int64_t N, const S* theta, const S* inputs, S* pred, S* jac);

  /// The loss on a batch and its gradient, grad (num_params) overwritten.
  /// targets: (N, nx) next states; target_jac: (N, nx, nx + nu) = [dx'/dx | dx'/du] (may be
  /// null when the loss has no JAL term).
  LossTerms loss_and_grad(std::int64_t N, const S* theta, const S* inputs, const S* targets,
                          const S* target_jac, S* grad);

 private:
  // fills A_[0] .. and Z_ for the batch; tangent rows when `tangents`
  void run_forward(std::int64_t N, const S* theta, const S* inputs, bool tangents);
  // the network output rows (N r, k) -> pred and jac
  void read_outputs(std::int64_t N, const S* inputs, S* pred, S* jac) const;

  MlpSpec spec_;
  LossConfig loss_;
  int threads_ = 0;
  int rows_per_sample_ = 1;
  std::vector<Matrix> A_;  // A_[0]: normalised inputs; A_[l + 1]: output of layer l
  std::vector<Matrix> Z_;  // pre-activations of the hidden layers
  std::vector<Matrix> D1_, D2_;  // (N x width) sigma'(z), sigma''(z) on the primal rows
  std::vector<S> pred_, jac_, g_pred_, g_jac_;
};

}  // namespace phydream::training
