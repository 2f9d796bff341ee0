// The neural dynamics model f_theta(x, u) -> x' and the losses it is trained with.
//
// Network: an MLP over the normalised input h_0 = (in - in_mean) / in_std, in = [x, u]:
//   z_l = W_l h_{l-1} + b_l,  h_l = sigma(z_l)        hidden layers l = 0 .. L-2
//   y   = W_{L-1} h_{L-2} + b_{L-1}                   output layer
//   f   = [x if residual] + out_mean + out_std * y    (out stats are of x' - x when residual)
// Its input Jacobian J = df/d[x, u] (nx, nx + nu) comes from forward tangents:
//   T_0 = diag(1 / in_std),  T_l = diag(sigma'(z_l)) W_l T_{l-1},
//   J = diag(out_std) W_{L-1} T_{L-2} + [I 0 if residual].
// Parameters live in one flat array: W_0 (out, in) row-major, b_0, W_1, b_1, ...
//
// Loss (seed eq. 1 and its variants), over a batch of N samples, k = nx, d = nx + nu:
//   L = lambda_mse MSE + lambda_jal JAL,  MSE = mean over N k of (f - x')^2,
//   JAL = mean over N k d of (s(J) - s(J*))^2          metric mse (eq. 1)
//       = mean over N of |s(J) - s(J*)|_F               metric frobenius
//       = mean over N k d of |s(J) - s(J*)|             metric l1
//       = mean over N k d of h(s(J) - s(J*))            metric huber, with
//         h(r) = r^2 for |r| <= delta, delta (2 |r| - delta) beyond: eq. 1 for the errors below
//         delta, growing like L1 above it (so a few huge entries, such as a contact's, cannot
//         carry the loss), continuously differentiable, dh/dr = 2 clamp(r, -delta, delta)
// where s scales each Jacobian batch: none; minmax (x - min) / (max - min) over the batch, as
// in the seed; zscore (x - mean) / std over the batch; std: each entry divided by the dataset
// standard deviation of that entry of the true Jacobian. The gradient flows through the batch
// statistics of J (min/max/mean/std), exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "training/activation.h"

namespace phydream::training {

const char* activation_name(Activation a);
/// Parses tanh | silu | softplus | relu; throws InputError naming the accepted values.
Activation parse_activation(const std::string& name);

/// The architecture and the fixed affine maps around it.
struct MlpSpec {
  int nx = 0;                         // state size: the outputs, and the first nx inputs
  int nu = 0;                         // action size: the last nu inputs
  std::vector<int> hidden;            // widths of the hidden layers, input to output
  Activation activation = Activation::tanh;
  bool residual = true;               // predict x' - x and add x back
  std::vector<double> in_mean, in_std;    // (nx + nu)
  std::vector<double> out_mean, out_std;  // (nx)

  int n_in() const { return nx + nu; }
  int n_out() const { return nx; }
  int num_layers() const { return static_cast<int>(hidden.size()) + 1; }
  int layer_in(int l) const { return l == 0 ? n_in() : hidden[l - 1]; }
  int layer_out(int l) const { return l == num_layers() - 1 ? n_out() : hidden[l]; }
  /// Offset of W_l (layer_out(l), layer_in(l)) in the flat parameter array; b_l follows it.
  std::size_t weight_offset(int l) const;
  std::size_t bias_offset(int l) const { return weight_offset(l) + std::size_t(layer_out(l)) * layer_in(l); }
  std::size_t num_params() const;
  int max_width() const;
  /// Throws InputError when sizes are inconsistent or statistics are missing or not positive.
  void validate() const;
  /// Identity normalisation (mean 0, std 1) of the right sizes.
  void set_identity_normalisation();
};

/// Glorot-uniform weights (scaled for the activation) and zero biases, from `seed`.
template <class S>
std::vector<S> init_params(const MlpSpec& spec, std::uint64_t seed);

enum class JalMetric : int { mse = 0, frobenius = 1, l1 = 2, huber = 3 };
enum class JacScaling : int { none = 0, minmax = 1, zscore = 2, std = 3 };

const char* metric_name(JalMetric m);
JalMetric parse_metric(const std::string& name);
const char* scaling_name(JacScaling s);
JacScaling parse_scaling(const std::string& name);

struct LossConfig {
  double lambda_mse = 1.0;
  double lambda_jal = 0.0;
  JalMetric metric = JalMetric::mse;
  JacScaling scaling = JacScaling::none;
  double huber_delta = 1.0;     // metric huber: where the quadratic turns linear (scaled units)
  std::vector<double> jac_std;  // (nx, nx + nu): for scaling std, per-entry std of J*
  bool uses_jacobian() const { return lambda_jal != 0; }
  /// Throws InputError for negative weights, a huber_delta that is not finite and > 0, or (with
  /// a JAL term and scaling std) a missing or negative jac_std.
  void validate(int nx, int nu) const;
};

/// The value of each loss term on a batch (the total is lambda-weighted).
struct LossTerms {
  double total = 0, mse = 0, jal = 0;
};

// numerical guards shared by every implementation of the loss
constexpr double kScaleRangeFloor = 1e-12;  // minmax: max - min below this is treated as this
constexpr double kZscoreEps = 1e-12;        // zscore: std = sqrt(var + eps), differentiable at 0
constexpr double kFrobeniusFloor = 1e-30;   // frobenius: no gradient direction at |D| = 0

// the huber metric's h(r) and dh/dr (see the top of this file), host and device
#if defined(__CUDACC__)
#define PHYDREAM_LOSS_HD __host__ __device__
#else
#define PHYDREAM_LOSS_HD
#endif
PHYDREAM_LOSS_HD inline double huber_value(double r, double delta) {
  const double a = r < 0 ? -r : r;
  return a <= delta ? r * r : delta * (2.0 * a - delta);
}
PHYDREAM_LOSS_HD inline double huber_grad(double r, double delta) {
  return 2.0 * (r > delta ? delta : r < -delta ? -delta : r);
}
#undef PHYDREAM_LOSS_HD

}  // namespace phydream::training
