#include "engine/model_constants.h"

#include "engine/constraint.h"
#include "engine/forward.h"

namespace phydream {

ModelConstants model_constants(const Model& model) {
  const ModelArrays<double> arrays(model, /*smooth_only=*/true);
  const ModelView<double> m = arrays.view();
  DataStore<double> store(m);
  const Data<double> d = store.view();
  kinematics(m, d);
  com_pos(m, d);
  crb(m, d);
  factor_m(m, d);

  const int nv = m.nv;
  ModelConstants c;
  c.body_invweight0.assign(2 * m.nbody, 0.0);
  c.dof_invweight0.assign(nv, 0.0);
  c.meaninertia = 1;
  if (nv == 0) return c;

  // A = J M^-1 J^T for 6 x nv Jacobians, row by row: solve M x = J_r^T, then A_rs = J_s x
  std::vector<double> jac(6 * nv), x(nv);
  auto block_diagonal = [&](int rows, auto&& diag_entry) {
    for (int r = 0; r < rows; ++r) {
      for (int k = 0; k < nv; ++k) x[k] = jac[r * nv + k];
      solve_m(m, d, x.data());
      double a = 0;
      for (int k = 0; k < nv; ++k) a += jac[r * nv + k] * x[k];
      diag_entry(r, a);
    }
  };

  // bodies: translational and rotational means of the diagonal, at the centre of mass
  for (int b = 1; b < m.nbody; ++b) {
    point_jacobian(m, d, d.xipos + 3 * b, b, jac.data(), jac.data() + 3 * nv);
    double tran = 0, rot = 0;
    block_diagonal(6, [&](int r, double a) { (r < 3 ? tran : rot) += a; });
    c.body_invweight0[2 * b] = tran / 3;
    c.body_invweight0[2 * b + 1] = rot / 3;
  }

  // joints: the mean diagonal of the joint's dofs (a free joint's translation and rotation apart)
  for (int j = 0; j < m.njnt; ++j) {
    const int adr = m.jnt_dofadr[j];
    const int n = detail::joint_dofs(m.jnt_type[j]);
    std::fill(jac.begin(), jac.end(), 0.0);
    for (int r = 0; r < n; ++r) jac[r * nv + adr + r] = 1;
    double part[2] = {0, 0};
    block_diagonal(n, [&](int r, double a) { part[n == 6 && r >= 3] += a; });
    if (n == 6) {
      for (int r = 0; r < 6; ++r) c.dof_invweight0[adr + r] = part[r >= 3] / 3;
    } else {
      for (int r = 0; r < n; ++r) c.dof_invweight0[adr + r] = part[0] / n;
    }
  }

  double trace = 0;
  for (int i = 0; i < nv; ++i) trace += d.qM[nv * i + i];
  c.meaninertia = trace / nv;
  return c;
}

}  // namespace phydream
