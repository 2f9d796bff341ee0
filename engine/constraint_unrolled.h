// Forward mode of the constraint solve by differentiating its iterations (GradMode::unrolled):
// the derivative that automatic differentiation through the iterative solver gives, the
// baseline the implicit-function-theorem derivative (engine/constraint_jvp.h) is compared with.
//
// solve_constraints (engine/constraint.h) runs unchanged on a Data of dual numbers
// Dual<S, K> (engine/dual.h): the values are the primal solve's inputs, the tangents those of
// the smooth stages and of the rows (qM, qfrc_smooth, qacc_smooth, efc_J, efc_aref, efc_D and
// R = 1 / D, dR = -R^2 dD; friction losses, the regularised cones' mu, row types and ids are
// constant). Every operation of the solve is differentiated as computed: the warm-start choice,
// each Newton step's cost, gradient, Hessian and its Cholesky factorization and solve, and every
// line-search evaluation (the Newton steps on the line, the bracket's midpoints, the chosen
// step). The control flow (row states, cone zones, line-search branches, the iteration count) is
// the primal's, since dual comparisons compare values only and the values are the primal's bit
// for bit (tests), so the result is the derivative of the computed qacc along the branch the
// primal took; where a branch switches under the perturbation, it is that branch's one-sided
// derivative, as for any derivative of a piecewise computation.
//
// Relation to the IFT derivative: Newton's iterations converge in their derivatives too, so when
// the solver converges tightly (a small tolerance that stops it there) the unrolled derivative
// tends to the IFT derivative at the solution; with a loose tolerance or few iterations it is the
// derivative of the unconverged iterate, which differs from the IFT derivative (and is exact for
// the step as computed: central differences of step() agree with it wherever no branch switches
// within their reach). Iterating on past convergence degrades it: at a solution converged to
// rounding the line search's step is a ratio of rounding-level numbers whose tangents are not
// small, and each further iteration amplifies the tangent's error (tolerance 0 with a solve that
// never stalls: 2e-14 after 12 iterations, 1e-6 after 100, 4e4 after 200 in the tests' elliptic
// drop), as automatic differentiation through such a solver does.
//
// The warm start: the dual solve starts where the primal's did. step_jvp records the step's
// warm start (d.qacc_warmstart on entry, 0 for every step of the engine's; unrolled_begin_step)
// as a constant; each solve's dual solution then becomes the start of the next (an RK4 stage's),
// as forward() keeps the solution in qacc_warmstart (after a stage without rows, qacc_smooth).
// One dual solve per solve.
//
// Every function is PHYDREAM_HD and allocates nothing: the dual numbers live in the tangent
// Data's sol_dual (unrolled_dual_entries in engine/data.h, allocated when the model's grad_mode
// is unrolled). The cost is that of the primal solve with every scalar operation carrying K
// tangents, against one Cholesky solve for the IFT derivative.
#pragma once

#include "engine/constraint.h"
#include "engine/data.h"
#include "engine/dual.h"
#include "engine/model.h"
#include "engine/model_view.h"
#include "engine/small_vec.h"

namespace phydream {

/// The dual numbers of the unrolled solve, laid out in a tangent Data's sol_dual:
///   d      a Data of dual numbers whose solver fields point into sol_dual: inputs qM, qfrc_smooth,
///          qacc_smooth, qacc_warmstart, nefc, nf, con_cand, con_mu (ncon_max), efc_type, efc_id,
///          efc_J, efc_frictionloss, efc_R, efc_D, efc_aref (nefc_max rows); outputs qacc, efc_jar,
///          efc_force, efc_state, qfrc_constraint, solver_iter, solver_status; scratch sol_*.
///          Every other field is null
///   start  (nv) the start of the next warm-started solve: the last solution with its tangents
template <class S, int K>
struct UnrolledDual {
  Data<Dual<S, K>> d;
  Dual<S, K>* start;
};

namespace detail {

// the next n dual numbers from p
template <class D>
PHYDREAM_HD D* take_duals(D*& p, int n) {
  D* a = p;
  p += n;
  return a;
}

}  // namespace detail

/// Dual numbers of the model's capacities at sol_dual: 2 nv^2 + 11 nv + 4 + 2 ncon_max +
/// nefc_max (nv + 13) of them, each K + 1 Scalars, within unrolled_dual_entries() entries of K.
template <class S, int K>
PHYDREAM_HD UnrolledDual<S, K> unrolled_dual_view(const ModelView<S>& m, Vec<S, K>* sol_dual) {
  using D = Dual<S, K>;
  const int nv = m.nv, ncon = m.ncon_max, nefc = m.nefc_max;
  UnrolledDual<S, K> u{};
  Data<D>& dd = u.d;
  D* p = reinterpret_cast<D*>(sol_dual);
  dd.qM = detail::take_duals(p, nv * nv);
  dd.sol_H = detail::take_duals(p, nv * nv);
  dd.qfrc_smooth = detail::take_duals(p, nv);
  dd.qacc_smooth = detail::take_duals(p, nv);
  dd.qacc_warmstart = detail::take_duals(p, nv);
  dd.qacc = detail::take_duals(p, nv);
  dd.qfrc_constraint = detail::take_duals(p, nv);
  dd.sol_Ma = detail::take_duals(p, nv);
  dd.sol_grad = detail::take_duals(p, nv);
  dd.sol_Mgrad = detail::take_duals(p, nv);
  dd.sol_search = detail::take_duals(p, nv);
  dd.sol_Mv = detail::take_duals(p, nv);
  u.start = detail::take_duals(p, nv);
  dd.nefc = detail::take_duals(p, 1);
  dd.nf = detail::take_duals(p, 1);
  dd.solver_iter = detail::take_duals(p, 1);
  dd.solver_status = detail::take_duals(p, 1);
  dd.con_cand = detail::take_duals(p, ncon);
  dd.con_mu = detail::take_duals(p, ncon);
  dd.efc_J = detail::take_duals(p, nefc * nv);
  dd.efc_type = detail::take_duals(p, nefc);
  dd.efc_id = detail::take_duals(p, nefc);
  dd.efc_frictionloss = detail::take_duals(p, nefc);
  dd.efc_R = detail::take_duals(p, nefc);
  dd.efc_D = detail::take_duals(p, nefc);
  dd.efc_aref = detail::take_duals(p, nefc);
  dd.efc_jar = detail::take_duals(p, nefc);
  dd.efc_force = detail::take_duals(p, nefc);
  dd.efc_state = detail::take_duals(p, nefc);
  dd.sol_Jv = detail::take_duals(p, nefc);
  dd.sol_quad = detail::take_duals(p, 3 * nefc);
  return u;
}

namespace detail {

// the dual solve from `start` (nv duals; null: 0)
template <class S, class D>
PHYDREAM_HD void unrolled_solve(const ModelView<S>& m, const Data<D>& dd, const D* start) {
  for (int k = 0; k < m.nv; ++k) dd.qacc_warmstart[k] = start != nullptr ? start[k] : D(S(0));
  solve_constraints(m, dd);
}

}  // namespace detail

/// Records the warm start a step begins with (d.qacc_warmstart before the step's first
/// forward(): 0 for every step of the engine's) as the dual start of its first solve, with zero
/// tangent; step_jvp calls it first in the unrolled mode. Later solves of the step (RK4 stages)
/// start from the previous solution, which constraints_unrolled_jvp keeps in the same place, as
/// forward() keeps it in qacc_warmstart.
template <class S, class T>
PHYDREAM_HD void unrolled_begin_step(const ModelView<S>& m, const Data<S>& d, const Data<T>& t) {
  using D = typename DualOf<T>::type;
  if (m.grad_mode != static_cast<int>(GradMode::unrolled) || m.nefc_max == 0) return;
  const auto u = unrolled_dual_view(m, t.sol_dual);
  for (int k = 0; k < m.nv; ++k) u.start[k] = D(d.qacc_warmstart[k]);
}

/// Tangent of the constraint solve by its iterations (see the top of this file): reads the
/// primal Data after forward() (rows and the solve's inputs) and the
/// tangents of the solve's inputs in t (qM, qfrc_smooth, qacc_smooth, efc_J, efc_aref, efc_D);
/// overwrites t.qacc, t.qfrc_constraint, t.efc_force and t.efc_jar (the tangent of the solver's
/// J qacc - aref), and the dual numbers in t.sol_dual. A model without rows (nefc_max = 0) has
/// no dual workspace: nothing is done. constraints_jvp calls it in the unrolled mode, also for a
/// stage without rows (only to keep the next solve's start).
template <class S, class T>
PHYDREAM_HD_STAGE void constraints_unrolled_jvp(const ModelView<S>& m, const Data<S>& d, const Data<T>& t) {
  using D = typename DualOf<T>::type;
  if (m.nefc_max == 0) return;
  const auto u = unrolled_dual_view(m, t.sol_dual);
  const Data<D>& dd = u.d;
  const int nv = m.nv, nefc = static_cast<int>(d.nefc[0]);
  if (nefc == 0) {
    // the solve copied qacc_smooth into the warm start of the next one
    for (int k = 0; k < nv; ++k) u.start[k] = D(d.qacc_smooth[k], t.qacc_smooth[k]);
    return;
  }

  // the solve's inputs: values from the primal, tangents from t (zero for the constants)
  dd.nefc[0] = D(d.nefc[0]);
  dd.nf[0] = D(d.nf[0]);
  for (int k = 0; k < nv * nv; ++k) dd.qM[k] = D(d.qM[k], t.qM[k]);
  for (int k = 0; k < nv; ++k) {
    dd.qfrc_smooth[k] = D(d.qfrc_smooth[k], t.qfrc_smooth[k]);
    dd.qacc_smooth[k] = D(d.qacc_smooth[k], t.qacc_smooth[k]);
  }
  const int ncon = static_cast<int>(d.ncon[0]);
  for (int c = 0; c < ncon; ++c) {
    dd.con_cand[c] = D(d.con_cand[c]);
    dd.con_mu[c] = D(d.con_mu[c]);
  }
  for (int i = 0; i < nefc; ++i) {
    dd.efc_type[i] = D(d.efc_type[i]);
    dd.efc_id[i] = D(d.efc_id[i]);
    dd.efc_frictionloss[i] = D(d.efc_frictionloss[i]);
    dd.efc_D[i] = D(d.efc_D[i], t.efc_D[i]);
    // R = 1 / D: dR = -R^2 dD
    dd.efc_R[i] = D(d.efc_R[i], (-(d.efc_R[i] * d.efc_R[i])) * t.efc_D[i]);
    dd.efc_aref[i] = D(d.efc_aref[i], t.efc_aref[i]);
    for (int k = 0; k < nv; ++k) dd.efc_J[nv * i + k] = D(d.efc_J[nv * i + k], t.efc_J[nv * i + k]);
  }

  // the solve from where the primal's started: the step's warm start (unrolled_begin_step), or
  // the last stage's solution
  detail::unrolled_solve(m, dd, static_cast<const D*>(u.start));

  // the tangents of the solution; its dual is the next solve's start
  for (int k = 0; k < nv; ++k) {
    t.qacc[k] = dd.qacc[k].d;
    t.qfrc_constraint[k] = dd.qfrc_constraint[k].d;
    u.start[k] = dd.qacc[k];
  }
  for (int i = 0; i < nefc; ++i) {
    t.efc_jar[i] = dd.efc_jar[i].d;
    t.efc_force[i] = dd.efc_force[i].d;
  }
}

}  // namespace phydream
