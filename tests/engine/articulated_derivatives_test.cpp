// Derivatives of the articulated step (engine/step_vjp.h, engine/step_jvp.h,
// engine/articulated_jacobian.h), in MuJoCo's tangent coordinates, every model x integrator:
//   - full Jacobians from reverse sweeps, forward sweeps and the closed-form (analytic) path
//     against central differences of step() in double, and against each other to rounding
//   - the closed-form stage force derivative against reverse sweeps of force_vjp
//   - the adjoint identity <g, J v> = <J^T g, v> between step_jvp and step_vjp
//   - VJPs accumulate; K-cotangent sweeps equal one-cotangent sweeps bit for bit
//   - the primal every derivative routine leaves behind equals step()'s bit for bit
//   - a linear system with a known answer (a damped spring on a slide, Euler and RK4)
//   - rollout VJPs (stored and checkpointed) against central differences of a rollout loss
//   - float against the double references, looser
//   - MuJoCo's finite differences (mjd_transitionFD, centered) as an oracle, when MuJoCo is found
// Models are built by hand here (always) and, with MuJoCo, loaded from the MJCF of
// engine/test_mjcf_models.h through MuJoCo itself (engine/mujoco_model.h). The largest error
// each test measures is printed as "[ measured ] ..." for the record.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <iostream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/articulated_jacobian.h"
#include "engine/forward.h"
#include "engine/step_jvp.h"
#include "engine/step_vjp.h"
#include "test_util.h"

#if defined(PHYDREAM_TEST_MUJOCO)
#include "engine/mujoco_model.h"
#include "engine/test_mjcf_models.h"
#endif

namespace phydream::testing {
namespace {

// =============================================================================================
// hand-built models

// builds a Model body by body and joint by joint (joints in body order), filling the address
// arrays, qpos0 / qpos_spring and dof_parentid as MuJoCo's compiler does
class Builder {
 public:
  Builder() { body(0, {0, 0, 0}, {1, 0, 0, 0}, 0, {0, 0, 0}, {1, 0, 0, 0}, {0, 0, 0}); }

  int body(int parent, std::array<double, 3> pos, std::array<double, 4> quat, double mass,
           std::array<double, 3> ipos, std::array<double, 4> iquat, std::array<double, 3> inertia) {
    m_.body_parentid.push_back(parent);
    m_.body_jntnum.push_back(0);
    m_.body_jntadr.push_back(-1);
    m_.body_dofnum.push_back(0);
    m_.body_dofadr.push_back(-1);
    push_unit(&m_.body_quat, quat);
    push_unit(&m_.body_iquat, iquat);
    for (int k = 0; k < 3; ++k) {
      m_.body_pos.push_back(pos[k]);
      m_.body_ipos.push_back(ipos[k]);
      m_.body_inertia.push_back(inertia[k]);
    }
    m_.body_mass.push_back(mass);
    m_.body_name.push_back("body" + std::to_string(m_.nbody));
    return m_.nbody++;
  }

  int joint(int b, JointType type, std::array<double, 3> pos, std::array<double, 3> axis,
            double stiffness = 0, double damping = 0, double armature = 0, double ref = 0,
            double springref = 0) {
    const int j = m_.njnt++;
    const int t = static_cast<int>(type);
    const int nqj = t == 0 ? 7 : t == 1 ? 4 : 1, nvj = t == 0 ? 6 : t == 1 ? 3 : 1;
    if (m_.body_jntnum[b]++ == 0) m_.body_jntadr[b] = j;
    if (m_.body_dofnum[b] == 0) m_.body_dofadr[b] = m_.nv;
    m_.body_dofnum[b] += nvj;
    m_.jnt_type.push_back(t);
    m_.jnt_bodyid.push_back(b);
    m_.jnt_qposadr.push_back(m_.nq);
    m_.jnt_dofadr.push_back(m_.nv);
    for (double v : pos) m_.jnt_pos.push_back(v);
    const double n = std::sqrt(axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]);
    for (double v : axis) m_.jnt_axis.push_back(v / n);
    m_.jnt_limited.push_back(0);
    m_.jnt_margin.push_back(0);
    m_.jnt_solref.insert(m_.jnt_solref.end(), {0.02, 1.0});
    m_.jnt_solimp.insert(m_.jnt_solimp.end(), {0.9, 0.95, 0.001, 0.5, 2.0});
    m_.jnt_range.insert(m_.jnt_range.end(), {0.0, 0.0});
    m_.jnt_stiffness.push_back(stiffness);
    m_.jnt_name.push_back("joint" + std::to_string(j));
    if (type == JointType::free) {
      for (int k = 0; k < 3; ++k) m_.qpos0.push_back(m_.body_pos[3 * b + k]);
      for (int k = 0; k < 4; ++k) m_.qpos0.push_back(m_.body_quat[4 * b + k]);
      m_.qpos_spring.insert(m_.qpos_spring.end(), m_.qpos0.end() - 7, m_.qpos0.end());
    } else if (type == JointType::ball) {
      m_.qpos0.insert(m_.qpos0.end(), {1.0, 0.0, 0.0, 0.0});
      m_.qpos_spring.insert(m_.qpos_spring.end(), {1.0, 0.0, 0.0, 0.0});
    } else {
      m_.qpos0.push_back(ref);
      m_.qpos_spring.push_back(springref);
    }
    for (int k = 0; k < nvj; ++k) {
      m_.dof_bodyid.push_back(b);
      m_.dof_jntid.push_back(j);
      m_.dof_armature.push_back(armature);
      m_.dof_damping.push_back(damping);
      m_.dof_frictionloss.push_back(0);
    }
    m_.nq += nqj;
    m_.nv += nvj;
    return j;
  }

  void motor(int j, double gear, bool limited = false, double lo = 0, double hi = 0) {
    m_.actuator_trnid.push_back(j);
    m_.actuator_gear.push_back(gear);
    m_.actuator_ctrllimited.push_back(limited ? 1 : 0);
    m_.actuator_ctrlrange.insert(m_.actuator_ctrlrange.end(), {lo, hi});
    m_.actuator_name.push_back("motor" + std::to_string(m_.nu++));
  }

  Model finish(const std::string& name, double timestep) {
    // dof_parentid: the previous dof of the body, else the last dof of the nearest ancestor
    m_.dof_parentid.assign(m_.nv, -1);
    for (int k = 0; k < m_.nv; ++k) {
      const int b = m_.dof_bodyid[k];
      if (k > m_.body_dofadr[b]) {
        m_.dof_parentid[k] = k - 1;
        continue;
      }
      for (int p = m_.body_parentid[b]; p > 0; p = m_.body_parentid[p]) {
        if (m_.body_dofnum[p] > 0) {
          m_.dof_parentid[k] = m_.body_dofadr[p] + m_.body_dofnum[p] - 1;
          break;
        }
      }
    }
    m_.opt_timestep = timestep;
    m_.opt_disableflags = kDisableContact | kDisableLimit | kDisableFrictionloss;
    m_.source = name;
    return m_;
  }

 private:
  static void push_unit(std::vector<double>* out, std::array<double, 4> q) {
    const double n = std::sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
    for (double v : q) out->push_back(v / n);
  }
  Model m_;
};

// three tilted hinges: damping, armature, stiffness about springref, ref, a clamped motor
Model hinge_chain() {
  Builder b;
  int parent = 0;
  for (int i = 0; i < 3; ++i) {
    const int body = b.body(parent, {0.1, 0, i == 0 ? 1.0 : -0.5}, {1, 0.1 * i, 0.2, 0}, 1.0 + i,
                            {0.05, 0.02, -0.25}, {1, 0.2, 0, 0.1}, {0.1, 0.2, 0.15});
    const int j = b.joint(body, JointType::hinge, {0, 0.01, 0.02}, {0.1, 1, 0.2 * i}, 1.5 * i,
                          0.3, 0.05 * (i + 1), 0.1 * i, 0.3);
    b.motor(j, 1.5 + i, i != 1, -0.8, 0.6);
    parent = body;
  }
  return b.finish("hinge_chain", 0.01);
}

// a cart on a slide and a pole on a hinge (cartpole's structure)
Model cartpole() {
  Builder b;
  const int cart = b.body(0, {0, 0, 0.5}, {1, 0, 0, 0}, 1.0, {0, 0, 0}, {1, 0, 0, 0}, {0.01, 0.02, 0.02});
  const int slider = b.joint(cart, JointType::slide, {0, 0, 0}, {1, 0, 0}, 0, 0.5, 0.1);
  const int pole = b.body(cart, {0, 0, 0.05}, {1, 0, 0, 0}, 0.2, {0, 0, 0.3}, {1, 0, 0, 0}, {0.006, 0.006, 0.0002});
  b.joint(pole, JointType::hinge, {0, 0, 0}, {0, 1, 0}, 0.2, 0.05);
  b.motor(slider, 10, true, -1, 1);
  return b.finish("cartpole", 0.01);
}

// a planar half-cheetah-like tree: rootx, rootz, rooty on the torso, two three-link legs with
// stiff, damped, geared hinges
Model planar_tree() {
  Builder b;
  const int torso = b.body(0, {0, 0, 0.7}, {1, 0, 0, 0}, 6.4, {0.02, 0, 0.01}, {1, 0, 0.05, 0}, {0.1, 0.95, 0.9});
  b.joint(torso, JointType::slide, {0, 0, 0}, {1, 0, 0});
  b.joint(torso, JointType::slide, {0, 0, 0}, {0, 0, 1});
  b.joint(torso, JointType::hinge, {0, 0, 0}, {0, 1, 0});
  const double stiffness[2][3] = {{240, 180, 120}, {180, 120, 60}};
  const double gear[2][3] = {{120, 90, 60}, {120, 60, 30}};
  for (int leg = 0; leg < 2; ++leg) {
    int parent = torso;
    for (int s = 0; s < 3; ++s) {
      const std::array<double, 3> pos = s == 0 ? std::array<double, 3>{leg ? 0.5 : -0.5, 0, 0}
                                               : std::array<double, 3>{leg ? -0.14 : 0.16, 0, -0.25};
      const int body = b.body(parent, pos, {1, 0, 0.1 * (s - 1), 0}, 1.5 - 0.4 * s,
                              {0.05, 0, -0.1}, {1, 0, 0.3, 0}, {0.03, 0.03, 0.002});
      const int j = b.joint(body, JointType::hinge, {0, 0, 0}, {0, 1, 0}, stiffness[leg][s],
                            stiffness[leg][s] / 40, 0.1);
      b.motor(j, gear[leg][s], true, -1, 1);
      parent = body;
    }
  }
  return b.finish("planar_tree", 0.01);
}

// a ball-joint pendulum (spring about the identity, damping, armature) with a geared hinge below
Model ball_pendulum() {
  Builder b;
  const int upper = b.body(0, {0, 0, 2}, {0.95, 0.1, 0.2, 0.1}, 1.0, {0.05, 0.02, -0.3},
                           {1, 0.1, 0.2, 0.3}, {0.05, 0.06, 0.02});
  b.joint(upper, JointType::ball, {0, 0.02, 0.1}, {0, 0, 1}, 2.0, 0.3, 0.01);
  const int lower = b.body(upper, {0.1, 0.05, -0.6}, {1, 0, 0, 0}, 0.5, {0, 0, -0.2},
                           {1, 0, 0, 0}, {0.01, 0.01, 0.005});
  const int elbow = b.joint(lower, JointType::hinge, {0, 0, 0}, {1, 0.2, 0}, 0, 0.1);
  b.motor(elbow, 3, true, -1, 1);
  return b.finish("ball_pendulum", 0.005);
}

// a free body (spring-free, undamped root) with a hinged flap and a ball-jointed tail
Model free_body() {
  Builder b;
  const int base = b.body(0, {0.1, -0.2, 1.5}, {0.9, 0.15, -0.1, 0.25}, 2.0, {0.01, 0.02, -0.01},
                          {1, 0, 0.2, 0.1}, {0.05, 0.07, 0.03});
  b.joint(base, JointType::free, {0, 0, 0}, {0, 0, 1});
  const int flap = b.body(base, {0.25, 0, 0}, {1, 0, 0, 0.2}, 0.5, {0.15, 0, 0}, {1, 0, 0, 0},
                          {0.002, 0.004, 0.005});
  const int j = b.joint(flap, JointType::hinge, {-0.02, 0, 0}, {0, 1, 0.3}, 1.0, 0.2);
  const int tail = b.body(base, {-0.25, 0, 0.05}, {1, 0, 0, 0}, 0.3, {-0.15, 0.02, 0.05},
                          {1, 0.3, 0, 0}, {0.001, 0.01, 0.01});
  b.joint(tail, JointType::ball, {0, 0, 0}, {0, 0, 1}, 0.5, 0.05);
  b.motor(j, 0.5);
  return b.finish("free_body", 0.005);
}

// the odd corners: a hinge then a slide on one body, a welded (jointless) body in the chain, a
// ball below it, a free joint with a spring and damping, gravity along a tilted direction
Model mixed_tree() {
  Builder b;
  const int a = b.body(0, {0, 0, 1}, {1, 0, 0, 0}, 1.0, {0, 0, -0.3}, {1, 0, 0, 0}, {0.05, 0.05, 0.02});
  const int hinge = b.joint(a, JointType::hinge, {0, 0, 0.1}, {1, 0, 0}, 0.1, 0.1);
  b.joint(a, JointType::slide, {0, 0, 0}, {0, 0.3, 1}, 1.0, 0.2, 0.02);
  const int weld = b.body(a, {0.2, 0, -0.3}, {1, 0.3, 0, 0}, 0.4, {0.05, 0, 0}, {1, 0, 0, 0}, {0.01, 0.01, 0.01});
  const int c = b.body(weld, {0, 0.1, -0.2}, {1, 0, 0, 0}, 0.7, {0, 0.05, -0.1}, {1, 0, 0.1, 0}, {0.02, 0.03, 0.01});
  b.joint(c, JointType::ball, {0, 0, 0.05}, {0, 0, 1}, 0.5, 0.05, 0.01);
  const int f = b.body(0, {1, 0, 0}, {1, 0, 0, 0}, 0.8, {0.02, 0, 0}, {1, 0, 0, 0}, {0.01, 0.02, 0.03});
  b.joint(f, JointType::free, {0, 0, 0}, {0, 0, 1}, 0.3, 0.02, 0.01);
  b.motor(hinge, 1.0);
  Model m = b.finish("mixed_tree", 0.01);
  m.opt_gravity = {1.0, -2.0, -9.0};
  return m;
}

struct NamedModel {
  const char* name;
  Model (*make)();
};
const std::vector<NamedModel>& hand_built_models() {
  static const std::vector<NamedModel> models = {{"hinge_chain", hinge_chain},
                                                 {"cartpole", cartpole},
                                                 {"planar_tree", planar_tree},
                                                 {"ball_pendulum", ball_pendulum},
                                                 {"free_body", free_body},
                                                 {"mixed_tree", mixed_tree}};
  return models;
}

// a case: a model (hand-built, or "mj_" + an MJCF test model compiled by MuJoCo) and an integrator
struct Case {
  std::string model;
  ModelIntegrator integrator;
};

std::vector<Case> all_cases(bool mujoco_only) {
  std::vector<std::string> names;
  if (!mujoco_only) {
    for (const auto& nm : hand_built_models()) names.push_back(nm.name);
  }
#if defined(PHYDREAM_TEST_MUJOCO)
  for (const auto& t : test_mjcf_models()) names.push_back(std::string("mj_") + t.name);
#endif
  std::vector<Case> cases;
  for (const auto& n : names) {
    cases.push_back({n, ModelIntegrator::euler});
    cases.push_back({n, ModelIntegrator::rk4});
  }
  return cases;
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return info.param.model + (info.param.integrator == ModelIntegrator::rk4 ? "_rk4" : "_euler");
}

Model make_model(const Case& c) {
  Model m;
  if (c.model.rfind("mj_", 0) == 0) {
#if defined(PHYDREAM_TEST_MUJOCO)
    for (const auto& t : test_mjcf_models()) {
      if (c.model == std::string("mj_") + t.name) {
        m = model_from_mujoco(mujoco_load_string(t.xml).get(), c.model);
      }
    }
#endif
  } else {
    for (const auto& nm : hand_built_models()) {
      if (c.model == nm.name) m = nm.make();
    }
  }
  m.opt_integrator = c.integrator;
  return m;
}

// =============================================================================================
// one environment of a model in Scalar S, with every workspace the derivatives need

// how a full Jacobian is computed
enum class Sweep { reverse, forward, analytic };

// the workspaces of the Jacobian and rollout functions start as NaN, so that a read of a slot
// those functions did not write first shows up (as the engines' do under the tests)
template <class S>
const S kPoison = std::numeric_limits<S>::quiet_NaN();
template <class S, int K>
Vec<S, K> poison_vec() {
  Vec<S, K> v;
  for (int i = 0; i < K; ++i) v.v[i] = kPoison<S>;
  return v;
}

template <class S>
class Env {
 public:
  explicit Env(const Model& model)
      : arrays_(model),
        m(arrays_.view()),
        layout(data_layout(m)),
        ws_(static_cast<std::size_t>(jacobian_scalar_size(m)), kPoison<S>),
        data_ws_(static_cast<std::size_t>(layout.size)),
        d(data_at(layout, data_ws_.data())),
        scratch_(static_cast<std::size_t>(vjp_scratch_size(m))) {}

  int nq() const { return m.nq; }
  int nv() const { return m.nv; }
  int nu() const { return m.nu; }
  int nx() const { return m.nq + m.nv; }
  int ndx() const { return 2 * m.nv; }

  void load(const std::vector<S>& x, const std::vector<S>& u) {
    d.time[0] = S(0);
    std::copy(x.begin(), x.begin() + m.nq, d.qpos);
    std::copy(x.begin() + m.nq, x.end(), d.qvel);
    std::copy(u.begin(), u.end(), d.ctrl);
  }
  std::vector<S> state() const {
    std::vector<S> x(d.qpos, d.qpos + m.nq);
    x.insert(x.end(), d.qvel, d.qvel + m.nv);
    return x;
  }
  std::vector<S> step_from(const std::vector<S>& x, const std::vector<S>& u) {
    load(x, u);
    step(m, d);
    return state();
  }

  // [A | B] (2nv x (2nv + nu)) from the Jacobian functions, as doubles; the next state too
  template <int K>
  std::vector<double> jacobian(const std::vector<S>& x, const std::vector<S>& u, Sweep sweep,
                               std::vector<S>* x_next = nullptr) {
    std::vector<Vec<S, K>> tws(static_cast<std::size_t>(jacobian_tangent_size(m)), poison_vec<S, K>());
    std::vector<S> A(ndx() * ndx()), B(ndx() * nu()), xn(nx());
    if (sweep == Sweep::reverse) {
      step_jacobian_vjp<S, K>(m, ws_.data(), tws.data(), x.data(), u.data(), xn.data(), A.data(), B.data());
    } else if (sweep == Sweep::forward) {
      step_jacobian_jvp<S, K>(m, ws_.data(), tws.data(), x.data(), u.data(), xn.data(), A.data(), B.data());
    } else {
      step_jacobian(m, ws_.data(), x.data(), u.data(), xn.data(), A.data(), B.data());
    }
    if (x_next != nullptr) *x_next = xn;
    return join(A, B);
  }

  std::vector<double> join(const std::vector<S>& A, const std::vector<S>& B) const {
    const int n = ndx(), c = n + nu();
    std::vector<double> J(n * c);
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < n; ++j) J[i * c + j] = A[i * n + j];
      for (int j = 0; j < nu(); ++j) J[i * c + n + j] = B[i * nu() + j];
    }
    return J;
  }

  // one VJP with K cotangents: g_next (2nv) in, (g_x (2nv), g_u (nu)) accumulated
  template <int K>
  void vjp(const std::vector<S>& x, const std::vector<S>& u, const std::vector<Vec<S, K>>& g_next,
           std::vector<Vec<S, K>>* g_x, std::vector<Vec<S, K>>* g_u) {
    std::vector<Vec<S, K>> aws(layout.size);
    load(x, u);
    step_vjp<S, K>(m, d, scratch_.data(), data_at(layout, aws.data()), g_next.data(),
                   g_next.data() + nv(), g_x->data(), g_x->data() + nv(), g_u->data());
  }

  // one JVP with K directions: (dx (2nv), du (nu)) in, dx' (2nv) out
  template <int K>
  std::vector<Vec<S, K>> jvp(const std::vector<S>& x, const std::vector<S>& u,
                             const std::vector<Vec<S, K>>& dx, const std::vector<Vec<S, K>>& du) {
    std::vector<Vec<S, K>> tws(layout.size), out(ndx());
    load(x, u);
    step_jvp<S, K>(m, d, data_at(layout, tws.data()), dx.data(), dx.data() + nv(), du.data(),
                   out.data(), out.data() + nv());
    return out;
  }

  // rollout and its reverse modes
  std::vector<S> rollout(const std::vector<S>& x0, const std::vector<S>& actions, long long T) {
    std::vector<S> states((T + 1) * nx());
    model_rollout(m, ws_.data(), x0.data(), actions.data(), T, states.data());
    return states;
  }
  void rollout_vjp(const std::vector<S>& states, const std::vector<S>& actions, long long T,
                   const std::vector<S>& g_states, std::vector<S>* gx0, std::vector<S>* g_actions) {
    std::vector<Vec<S, 1>> tws(static_cast<std::size_t>(jacobian_tangent_size(m)), poison_vec<S, 1>());
    model_rollout_vjp(m, ws_.data(), tws.data(), states.data(), actions.data(), T, gx0->data(),
                      g_actions->data(), g_states.data(), static_cast<const S*>(nullptr));
  }
  void rollout_vjp_checkpointed(const std::vector<S>& x0, const std::vector<S>& actions,
                                long long T, long long interval, const std::vector<S>& g_states,
                                const std::vector<S>& g_final, std::vector<S>* gx0,
                                std::vector<S>* g_actions) {
    std::vector<Vec<S, 1>> tws(static_cast<std::size_t>(jacobian_tangent_size(m)), poison_vec<S, 1>());
    std::vector<S> checkpoints(static_cast<std::size_t>(rollout_checkpoint_size(m, T, interval)),
                               kPoison<S>);
    model_rollout_vjp_checkpointed(m, ws_.data(), tws.data(), x0.data(), actions.data(), T,
                                   interval, checkpoints.data(), gx0->data(), g_actions->data(),
                                   g_states.data(), g_final.data());
  }

 private:
  ModelArrays<S> arrays_;

 public:
  ModelView<S> m;
  DataLayout layout;

 private:
  std::vector<S> ws_, data_ws_;

 public:
  Data<S> d;

 private:
  std::vector<S> scratch_;
};

// =============================================================================================
// references in double

// x (+) dx in tangent coordinates: qpos (+) dqpos, qvel + dqvel
std::vector<double> perturb(const Env<double>& e, const std::vector<double>& x, const std::vector<double>& dx) {
  std::vector<double> r = x;
  integrate_pos(e.m, r.data(), dx.data(), 1.0);
  for (int i = 0; i < e.nv(); ++i) r[e.nq() + i] += dx[e.nv() + i];
  return r;
}

// x2 (-) x1 in tangent coordinates, at x1
std::vector<double> difference(const Env<double>& e, const std::vector<double>& x1, const std::vector<double>& x2) {
  std::vector<double> r(e.ndx());
  differentiate_pos(e.m, r.data(), x1.data(), x2.data(), 1.0);
  for (int i = 0; i < e.nv(); ++i) r[e.nv() + i] = x2[e.nq() + i] - x1[e.nq() + i];
  return r;
}

// [A | B] by central differences in tangent coordinates, as mjd_transitionFD (centered) takes
// them: both perturbed next states differenced at the unperturbed one
std::vector<double> fd_jacobian(Env<double>& e, const std::vector<double>& x, const std::vector<double>& u,
                                double eps = 1e-6) {
  const int n = e.ndx(), nu = e.nu(), c = n + nu;
  const std::vector<double> center = e.step_from(x, u);
  std::vector<double> J(n * c);
  for (int col = 0; col < c; ++col) {
    std::vector<double> dplus, dminus;
    for (int sign = -1; sign <= 1; sign += 2) {
      std::vector<double> xp = x, up = u;
      if (col < n) {
        std::vector<double> dx(n, 0.0);
        dx[col] = sign * eps;
        xp = perturb(e, x, dx);
      } else {
        up[col - n] += sign * eps;
      }
      (sign > 0 ? dplus : dminus) = difference(e, center, e.step_from(xp, up));
    }
    for (int i = 0; i < n; ++i) J[i * c + col] = (dplus[i] - dminus[i]) / (2 * eps);
  }
  return J;
}

// a random state: qpos0 (+) a random tangent, random velocities, controls partly outside their
// range (to exercise the clamp) but never within 1e-3 of a bound (where the clamp has a kink)
void random_input(const Env<double>& e, std::mt19937_64& rng, std::vector<double>* x,
                  std::vector<double>* u, double vel_scale = 1.0) {
  std::uniform_real_distribution<double> unit(-1, 1);
  std::vector<double> dx(e.ndx());
  for (double& v : dx) v = unit(rng);
  for (int i = 0; i < e.nv(); ++i) dx[e.nv() + i] *= vel_scale;
  std::vector<double> x0(e.nx(), 0.0);
  std::copy(e.m.qpos0, e.m.qpos0 + e.nq(), x0.begin());
  *x = perturb(e, x0, dx);
  u->assign(e.nu(), 0.0);
  for (int a = 0; a < e.nu(); ++a) {
    double v;
    do {
      v = 1.3 * unit(rng);
    } while (e.m.actuator_ctrllimited[a] && (std::abs(v - e.m.actuator_ctrlrange[2 * a]) < 1e-3 ||
                                             std::abs(v - e.m.actuator_ctrlrange[2 * a + 1]) < 1e-3));
    (*u)[a] = v;
  }
}

// the rest state: qpos0, zero velocity, zero control (no rotation anywhere: the series branches)
void rest_input(const Env<double>& e, std::vector<double>* x, std::vector<double>* u) {
  x->assign(e.nx(), 0.0);
  std::copy(e.m.qpos0, e.m.qpos0 + e.nq(), x->begin());
  u->assign(e.nu(), 0.0);
}

template <class S>
std::vector<S> cast(const std::vector<double>& v) {
  return std::vector<S>(v.begin(), v.end());
}

// prints the largest error a test measured, for the record
void report(const std::string& what, double err) {
  std::cout << "[ measured ] " << ::testing::UnitTest::GetInstance()->current_test_info()->name()
            << " " << what << ": " << err << "\n";
}

// =============================================================================================
// the step

class StepDerivatives : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    model = make_model(GetParam());
    ASSERT_GT(model.nbody, 1) << "no model " << GetParam().model;
  }
  Model model;
  std::mt19937_64 rng{20261122};
};

TEST_P(StepDerivatives, VjpJacobianMatchesCentralDifferences) {
  Env<double> e(model);
  double worst = 0;
  for (int trial = 0; trial < 6; ++trial) {
    std::vector<double> x, u;
    if (trial == 0) {
      rest_input(e, &x, &u);
    } else {
      random_input(e, rng, &x, &u, trial < 4 ? 1.0 : 4.0);
    }
    const auto fd = fd_jacobian(e, x, u);
    const auto rev = e.jacobian<4>(x, u, Sweep::reverse);
    const double err = rel_err(rev, fd);
    worst = std::max(worst, err);
    EXPECT_LT(err, 1e-6) << "trial " << trial;
    EXPECT_NE(rev, fd);  // not vacuous: they differ in the last bits somewhere
  }
  report("max rel err vs FD", worst);
}

TEST_P(StepDerivatives, JvpJacobianMatchesCentralDifferences) {
  Env<double> e(model);
  double worst = 0;
  for (int trial = 0; trial < 4; ++trial) {
    std::vector<double> x, u;
    random_input(e, rng, &x, &u);
    const double err = rel_err(e.jacobian<4>(x, u, Sweep::forward), fd_jacobian(e, x, u));
    worst = std::max(worst, err);
    EXPECT_LT(err, 1e-6) << "trial " << trial;
  }
  report("max rel err vs FD", worst);
}

TEST_P(StepDerivatives, JvpVjpAndAnalyticJacobiansAgreeToRounding) {
  Env<double> e(model);
  double worst = 0, worst_analytic = 0;
  for (int trial = 0; trial < 6; ++trial) {
    std::vector<double> x, u;
    if (trial == 0) {
      rest_input(e, &x, &u);
    } else {
      random_input(e, rng, &x, &u, trial < 4 ? 1.0 : 4.0);
    }
    const auto rev = e.jacobian<8>(x, u, Sweep::reverse);
    const double err = rel_err(rev, e.jacobian<3>(x, u, Sweep::forward));
    const double err_analytic = rel_err(e.jacobian<1>(x, u, Sweep::analytic), rev);
    worst = std::max(worst, err);
    worst_analytic = std::max(worst_analytic, err_analytic);
    EXPECT_LT(err, 1e-10) << "trial " << trial;
    EXPECT_LT(err_analytic, 1e-10) << "trial " << trial;
  }
  report("max rel diff JVP vs VJP", worst);
  report("max rel diff analytic vs VJP", worst_analytic);
}

TEST_P(StepDerivatives, AnalyticJacobianMatchesCentralDifferences) {
  Env<double> e(model);
  double worst = 0;
  for (int trial = 0; trial < 6; ++trial) {
    std::vector<double> x, u;
    if (trial == 0) {
      rest_input(e, &x, &u);
    } else {
      random_input(e, rng, &x, &u, trial < 4 ? 1.0 : 4.0);
    }
    const double err = rel_err(e.jacobian<1>(x, u, Sweep::analytic), fd_jacobian(e, x, u));
    worst = std::max(worst, err);
    EXPECT_LT(err, 1e-6) << "trial " << trial;
  }
  report("max rel err vs FD", worst);
}

// the closed-form stage force derivative against nv reverse sweeps of force_vjp, every stage
TEST_P(StepDerivatives, ForceDerivativeMatchesReverseSweeps) {
  constexpr int K = 4;
  using T = Vec<double, K>;
  Env<double> e(model);
  const int nv = e.nv(), nu = e.nu(), ncol = 2 * nv + nu;
  double worst = 0;
  for (int trial = 0; trial < 3; ++trial) {
    std::vector<double> x, u;
    random_input(e, rng, &x, &u);
    std::vector<double> primal(vjp_scratch_size(e.m)), scratch(force_derivative_scratch_size(e.m));
    e.load(x, u);
    step_vjp_primal(e.m, e.d, primal.data());
    for (int s = 0; s < adjoint::stage_count(e.m); ++s) {
      const adjoint::StagePrimal<double> p = adjoint::stage_primal(e.m, e.d, primal.data(), s);
      std::vector<double> analytic(nv * ncol), swept(nv * ncol);
      force_derivative(e.m, p, scratch.data(), analytic.data());
      std::vector<T> aws(e.layout.size);
      const Data<T> a = data_at(e.layout, aws.data());
      for (int i0 = 0; i0 < nv; i0 += K) {
        std::vector<T> lam(nv, T::zero()), gq(nv, T::zero()), gv(nv, T::zero()), gu(nu, T::zero());
        for (int k = 0; k < K && i0 + k < nv; ++k) lam[i0 + k][k] = 1.0;
        adjoint::force_vjp(e.m, p, a, gq.data(), gv.data(), gu.data(), lam.data());
        for (int k = 0; k < K && i0 + k < nv; ++k) {
          for (int j = 0; j < nv; ++j) {
            swept[(i0 + k) * ncol + j] = gq[j][k];
            swept[(i0 + k) * ncol + nv + j] = gv[j][k];
          }
          for (int j = 0; j < nu; ++j) swept[(i0 + k) * ncol + 2 * nv + j] = gu[j][k];
        }
      }
      const double err = rel_err(analytic, swept);
      worst = std::max(worst, err);
      EXPECT_LT(err, 1e-11) << "trial " << trial << " stage " << s;
    }
  }
  report("max rel diff closed form vs sweeps", worst);
}

TEST_P(StepDerivatives, AdjointIdentityHolds) {
  constexpr int K = 3;
  using T = Vec<double, K>;
  Env<double> e(model);
  std::uniform_real_distribution<double> unit(-1, 1);
  double worst = 0;
  for (int trial = 0; trial < 10; ++trial) {
    std::vector<double> x, u;
    random_input(e, rng, &x, &u);
    std::vector<T> v(e.ndx()), vu(e.nu()), w(e.ndx());
    for (auto* arr : {&v, &vu, &w}) {
      for (T& t : *arr) {
        for (int k = 0; k < K; ++k) t[k] = unit(rng);
      }
    }
    const std::vector<T> jv = e.jvp<K>(x, u, v, vu);
    std::vector<T> gx(e.ndx(), T::zero()), gu(e.nu(), T::zero());
    e.vjp<K>(x, u, w, &gx, &gu);
    for (int k = 0; k < K; ++k) {
      double lhs = 0, rhs = 0, scale = 0;  // <w, J v> and <J^T w, v>
      for (int i = 0; i < e.ndx(); ++i) {
        lhs += w[i][k] * jv[i][k];
        scale += std::abs(w[i][k] * jv[i][k]);
      }
      for (int i = 0; i < e.ndx(); ++i) rhs += gx[i][k] * v[i][k];
      for (int i = 0; i < e.nu(); ++i) rhs += gu[i][k] * vu[i][k];
      const double err = std::abs(lhs - rhs) / std::max(scale, 1.0);
      worst = std::max(worst, err);
      EXPECT_LT(err, 1e-12) << "trial " << trial << " direction " << k;
    }
  }
  report("max |<w,Jv> - <J^T w,v>| / scale", worst);
}

TEST_P(StepDerivatives, VjpAccumulatesIntoItsOutputs) {
  constexpr int K = 2;
  using T = Vec<double, K>;
  Env<double> e(model);
  std::vector<double> x, u;
  random_input(e, rng, &x, &u);
  std::vector<T> w(e.ndx());
  for (int i = 0; i < e.ndx(); ++i) w[i] = T{{0.5 + i, -1.0 + 0.3 * i}};
  std::vector<T> g1x(e.ndx(), T::zero()), g1u(e.nu(), T::zero());
  std::vector<T> g2x(e.ndx(), T{{3.0, -1.0}}), g2u(e.nu(), T{{-2.0, 5.0}});
  e.vjp<K>(x, u, w, &g1x, &g1u);
  e.vjp<K>(x, u, w, &g2x, &g2u);
  for (int k = 0; k < K; ++k) {
    for (int i = 0; i < e.ndx(); ++i) {
      EXPECT_NEAR(g2x[i][k], (k == 0 ? 3.0 : -1.0) + g1x[i][k], 1e-12 * (3 + std::abs(g1x[i][k])));
    }
    for (int i = 0; i < e.nu(); ++i) {
      EXPECT_NEAR(g2u[i][k], (k == 0 ? -2.0 : 5.0) + g1u[i][k], 1e-12 * (5 + std::abs(g1u[i][k])));
    }
  }
}

TEST_P(StepDerivatives, MultiCotangentSweepsEqualSingleOnes) {
  Env<double> e(model);
  for (int trial = 0; trial < 2; ++trial) {
    std::vector<double> x, u;
    random_input(e, rng, &x, &u);
    // K = 1 and K = 8 reverse sweeps do the same arithmetic per lane: equal bit for bit
    EXPECT_EQ(e.jacobian<1>(x, u, Sweep::reverse), e.jacobian<8>(x, u, Sweep::reverse)) << "trial " << trial;
    EXPECT_EQ(e.jacobian<1>(x, u, Sweep::forward), e.jacobian<8>(x, u, Sweep::forward)) << "trial " << trial;
  }
}

TEST_P(StepDerivatives, PrimalOutputsEqualThePlainStep) {
  Env<double> e(model);
  for (int trial = 0; trial < 3; ++trial) {
    std::vector<double> x, u;
    random_input(e, rng, &x, &u);
    const std::vector<double> plain = e.step_from(x, u);
    std::vector<double> xn_rev, xn_fwd, xn_analytic;
    e.jacobian<4>(x, u, Sweep::reverse, &xn_rev);
    e.jacobian<4>(x, u, Sweep::forward, &xn_fwd);
    e.jacobian<1>(x, u, Sweep::analytic, &xn_analytic);
    EXPECT_EQ(xn_rev, plain);
    EXPECT_EQ(xn_fwd, plain);
    EXPECT_EQ(xn_analytic, plain);
    // step_vjp leaves the next state in d, and time advanced, exactly as step()
    std::vector<Vec<double, 1>> g(e.ndx(), Vec<double, 1>::zero()), gx = g, gu(e.nu());
    e.vjp<1>(x, u, g, &gx, &gu);
    EXPECT_EQ(e.state(), plain);
    EXPECT_EQ(e.d.time[0], e.m.timestep);
  }
}

TEST_P(StepDerivatives, FloatSweepsMatchTheDoubleReference) {
  Env<double> ed(model);
  Env<float> ef(model);
  double worst_fd = 0, worst_fwd = 0, worst_analytic = 0;
  for (int trial = 0; trial < 4; ++trial) {
    std::vector<double> x, u;
    random_input(ed, rng, &x, &u);
    // the reference at the float-rounded point
    const std::vector<float> xf = cast<float>(x), uf = cast<float>(u);
    x.assign(xf.begin(), xf.end());
    u.assign(uf.begin(), uf.end());
    const auto ref = ed.jacobian<4>(x, u, Sweep::reverse);
    const auto rev = ef.jacobian<4>(xf, uf, Sweep::reverse);
    const auto fwd = ef.jacobian<4>(xf, uf, Sweep::forward);
    const auto analytic = ef.jacobian<1>(xf, uf, Sweep::analytic);
    worst_fd = std::max(worst_fd, rel_err(rev, ref));
    worst_fwd = std::max(worst_fwd, rel_err(fwd, ref));
    worst_analytic = std::max(worst_analytic, rel_err(analytic, ref));
    EXPECT_LT(rel_err(rev, ref), 1e-3) << "trial " << trial;
    EXPECT_LT(rel_err(fwd, ref), 1e-3) << "trial " << trial;
    EXPECT_LT(rel_err(analytic, ref), 1e-3) << "trial " << trial;
  }
  report("float VJP vs double", worst_fd);
  report("float JVP vs double", worst_fwd);
  report("float analytic vs double", worst_analytic);
}

TEST_P(StepDerivatives, LongRandomRolloutsStayFinite) {
  Env<double> e(model);
  std::vector<double> x, u;
  random_input(e, rng, &x, &u);
  const long long T = 300;
  std::uniform_real_distribution<double> unit(-1, 1);
  std::vector<double> actions(T * e.nu());
  for (double& a : actions) a = unit(rng);
  const std::vector<double> states = e.rollout(x, actions, T);
  std::vector<double> g_states((T + 1) * e.ndx());
  for (double& g : g_states) g = unit(rng);
  std::vector<double> gx0(e.ndx(), 0.0), g_actions(T * e.nu(), 0.0);
  e.rollout_vjp(states, actions, T, g_states, &gx0, &g_actions);
  for (double v : states) ASSERT_TRUE(std::isfinite(v));
  for (double v : gx0) ASSERT_TRUE(std::isfinite(v));
  for (double v : g_actions) ASSERT_TRUE(std::isfinite(v));
}

INSTANTIATE_TEST_SUITE_P(Models, StepDerivatives, ::testing::ValuesIn(all_cases(false)), case_name);

// =============================================================================================
// rollouts

class RolloutDerivatives : public StepDerivatives {};

TEST_P(RolloutDerivatives, VjpMatchesCentralDifferencesOfALoss) {
  Env<double> e(model);
  const long long T = 12;
  std::vector<double> x0, u;
  random_input(e, rng, &x0, &u);
  std::uniform_real_distribution<double> unit(-1, 1);
  std::vector<double> actions(T * e.nu());
  for (double& a : actions) a = 0.8 * unit(rng);
  const std::vector<double> nominal = e.rollout(x0, actions, T);
  // L = sum_t w_t . (x_t (-) nominal_t) + w_f . (x_T (-) nominal_T): the tangent-coordinate
  // cotangents are exactly w_t and w_f (the difference is the identity at nominal)
  std::vector<double> w((T + 1) * e.ndx()), wf(e.ndx());
  for (double& v : w) v = unit(rng);
  for (double& v : wf) v = unit(rng);
  auto loss = [&](const std::vector<double>& x, const std::vector<double>& acts) {
    const std::vector<double> s = e.rollout(x, acts, T);
    double l = 0;
    for (long long t = 0; t <= T; ++t) {
      const std::vector<double> a(nominal.begin() + t * e.nx(), nominal.begin() + (t + 1) * e.nx());
      const std::vector<double> b(s.begin() + t * e.nx(), s.begin() + (t + 1) * e.nx());
      const std::vector<double> dlt = difference(e, a, b);
      for (int i = 0; i < e.ndx(); ++i) l += w[t * e.ndx() + i] * dlt[i] + (t == T ? wf[i] * dlt[i] : 0.0);
    }
    return l;
  };
  std::vector<double> fd_x(e.ndx()), fd_u(T * e.nu());
  const double eps = 1e-6;
  for (int i = 0; i < e.ndx(); ++i) {
    std::vector<double> dx(e.ndx(), 0.0);
    dx[i] = eps;
    const double lp = loss(perturb(e, x0, dx), actions);
    dx[i] = -eps;
    const double lm = loss(perturb(e, x0, dx), actions);
    fd_x[i] = (lp - lm) / (2 * eps);
  }
  for (int i = 0; i < T * e.nu(); ++i) {
    std::vector<double> ap = actions, am = actions;
    ap[i] += eps;
    am[i] -= eps;
    fd_u[i] = (loss(x0, ap) - loss(x0, am)) / (2 * eps);
  }

  // stored trajectory (g_final folded into g_states[T] here), then checkpoints with g_final
  std::vector<double> w_with_final = w;
  for (int i = 0; i < e.ndx(); ++i) w_with_final[T * e.ndx() + i] += wf[i];
  std::vector<double> gx0(e.ndx(), 0.0), g_actions(T * e.nu(), 0.0);
  e.rollout_vjp(nominal, actions, T, w_with_final, &gx0, &g_actions);
  const double err_x = rel_err(gx0, fd_x), err_u = rel_err(g_actions, fd_u);
  EXPECT_LT(err_x, 1e-6);
  EXPECT_LT(err_u, 1e-6);
  report("stored: max rel err dL/dx0 vs FD", err_x);
  report("stored: max rel err dL/dU vs FD", err_u);

  for (long long interval : {default_checkpoint_interval(T), 5LL, 1LL, T}) {
    std::vector<double> cx0(e.ndx(), 0.0), c_actions(T * e.nu(), 0.0);
    e.rollout_vjp_checkpointed(x0, actions, T, interval, w, wf, &cx0, &c_actions);
    // the re-simulated states are the stored ones, so only the order of two additions into
    // g_states[T] differs
    EXPECT_LT(rel_err(cx0, gx0), 1e-13) << "interval " << interval;
    EXPECT_LT(rel_err(c_actions, g_actions), 1e-13) << "interval " << interval;
  }
}

TEST_P(RolloutDerivatives, CheckpointedVjpAccumulatesLikeTheStoredOne) {
  Env<double> e(model);
  const long long T = 7;
  std::vector<double> x0, u;
  random_input(e, rng, &x0, &u);
  std::vector<double> actions(T * e.nu(), 0.3);
  const std::vector<double> states = e.rollout(x0, actions, T);
  std::vector<double> g_states((T + 1) * e.ndx(), 0.0), g_final(e.ndx(), 0.0);
  for (int i = 0; i < e.ndx(); ++i) g_final[i] = 1.0 / (1 + i);
  std::vector<double> with_final = g_states;
  std::copy(g_final.begin(), g_final.end(), with_final.end() - e.ndx());
  std::vector<double> a(e.ndx(), 1.0), au(T * e.nu(), -1.0), b = a, bu = au;
  e.rollout_vjp(states, actions, T, with_final, &a, &au);
  e.rollout_vjp_checkpointed(x0, actions, T, 3, g_states, g_final, &b, &bu);
  EXPECT_EQ(a, b);
  EXPECT_EQ(au, bu);
  // accumulated on top of the 1 and -1 already there
  std::vector<double> z(e.ndx(), 0.0), zu(T * e.nu(), 0.0);
  e.rollout_vjp(states, actions, T, with_final, &z, &zu);
  for (int i = 0; i < e.ndx(); ++i) EXPECT_NEAR(a[i], 1.0 + z[i], 1e-12 * (1 + std::abs(z[i])));
  for (int i = 0; i < T * e.nu(); ++i) EXPECT_NEAR(au[i], -1.0 + zu[i], 1e-12 * (1 + std::abs(zu[i])));
}

INSTANTIATE_TEST_SUITE_P(Models, RolloutDerivatives, ::testing::ValuesIn(all_cases(false)), case_name);

// =============================================================================================
// a known answer: a damped spring on a slide, no gravity, x' = A x + B u in closed form

TEST(KnownAnswer, DampedSpringOnASlide) {
  const double mass = 2.0, armature = 0.5, k = 30.0, c = 1.5, gear = 4.0, h = 0.05;
  for (ModelIntegrator integrator : {ModelIntegrator::euler, ModelIntegrator::rk4}) {
    Builder b;
    const int body = b.body(0, {0, 0, 0}, {1, 0, 0, 0}, mass, {0.1, 0.2, 0}, {1, 0, 0, 0}, {1, 1, 1});
    const int j = b.joint(body, JointType::slide, {0, 0, 0}, {1, 0, 0}, k, c, armature, 0.0, 0.25);
    b.motor(j, gear);
    Model model = b.finish("spring", h);
    model.opt_gravity = {0, 0, 0};
    model.opt_integrator = integrator;
    Env<double> e(model);
    const double mt = mass + armature;
    double A[4], B[2];
    if (integrator == ModelIntegrator::euler) {
      // (m + h c) a = -k (q - q_s) - c v + g u;  v' = v + h a;  q' = q + h v'
      const double s = 1.0 / (mt + h * c);
      const double dv_dq = -h * k * s, dv_dv = 1.0 - h * c * s, dv_du = h * gear * s;
      A[0] = 1.0 + h * dv_dq;
      A[1] = h * dv_dv;
      A[2] = dv_dq;
      A[3] = dv_dv;
      B[0] = h * dv_du;
      B[1] = dv_du;
    } else {
      // RK4 on the linear system: Phi = sum_{n <= 4} (hF)^n / n!, Gamma = sum_{n <= 3} h (hF)^n / (n + 1)! G
      const double F[4] = {0, 1, -k / mt, -c / mt}, G[2] = {0, gear / mt};
      double P[4] = {1, 0, 0, 1}, Phi[4] = {1, 0, 0, 1}, Gam[4] = {h, 0, 0, h};
      double fact = 1;
      for (int n = 1; n <= 4; ++n) {
        const double Q[4] = {h * (F[0] * P[0] + F[1] * P[2]), h * (F[0] * P[1] + F[1] * P[3]),
                             h * (F[2] * P[0] + F[3] * P[2]), h * (F[2] * P[1] + F[3] * P[3])};
        std::copy(Q, Q + 4, P);
        fact *= n;
        for (int i = 0; i < 4; ++i) Phi[i] += P[i] / fact;
        if (n <= 3) {
          for (int i = 0; i < 4; ++i) Gam[i] += h * P[i] / (fact * (n + 1));
        }
      }
      std::copy(Phi, Phi + 4, A);
      B[0] = Gam[0] * G[0] + Gam[1] * G[1];
      B[1] = Gam[2] * G[0] + Gam[3] * G[1];
    }
    const std::vector<double> x = {0.4, -0.7}, u = {0.3};
    const std::vector<double> expected = {A[0], A[1], B[0], A[2], A[3], B[1]};
    EXPECT_LT(rel_err(e.jacobian<2>(x, u, Sweep::reverse), expected), 1e-13);
    EXPECT_LT(rel_err(e.jacobian<1>(x, u, Sweep::forward), expected), 1e-13);
    EXPECT_LT(rel_err(e.jacobian<1>(x, u, Sweep::analytic), expected), 1e-13);
  }
}

// =============================================================================================
// MuJoCo's mjd_transitionFD (centered) on the same MJCF

#if defined(PHYDREAM_TEST_MUJOCO)

// MuJoCo's Jacobians of the same MJCF at the same state, in the same tangent coordinates:
//   - mjd_transitionFD (centered, eps 1e-6) for Euler;
//   - for RK4, central differences of MuJoCo's own mj_step (mj_integratePos to perturb,
//     mj_differentiatePos to difference, as mjd_transitionFD does): MuJoCo 2.2.2's
//     mjd_transitionFD skips the position stage for velocity perturbations (and the velocity
//     stage for control ones), which under RK4 reuses the intermediates of the last stage of the
//     previous step instead of the perturbed state's; measured here, its velocity columns then
//     differ from the differences of mj_step by up to 100 %. Its position columns are exact and
//     are compared as well.
// Controls stay inside ctrlrange: with a ball joint and a control outside its range, 2.2.2's
// mjd_transitionFD returns position and velocity columns off by orders of magnitude although
// mj_step's differences agree with ours (measured); clamped controls are covered by the
// central differences of step() above.
class MujocoOracle : public StepDerivatives {
 protected:
  void SetUp() override {
    StepDerivatives::SetUp();
    const std::string name = GetParam().model.substr(3);
    for (const auto& t : test_mjcf_models()) {
      if (name == t.name) mm = mujoco_load_string(t.xml);
    }
    ASSERT_TRUE(mm != nullptr);
    mm->opt.integrator = GetParam().integrator == ModelIntegrator::rk4 ? mjINT_RK4 : mjINT_EULER;
    md.reset(mj_makeData(mm.get()));
  }

  void set_state(const std::vector<double>& x, const std::vector<double>& u) {
    mj_resetData(mm.get(), md.get());
    std::copy(x.begin(), x.begin() + mm->nq, md->qpos);
    std::copy(x.begin() + mm->nq, x.end(), md->qvel);
    std::copy(u.begin(), u.end(), md->ctrl);
  }

  // [A | B] of mjd_transitionFD
  std::vector<double> transition_fd(const std::vector<double>& x, const std::vector<double>& u) {
    const int n = 2 * mm->nv, nu = mm->nu, c = n + nu;
    set_state(x, u);
    std::vector<double> A(n * n), B(n * std::max(nu, 1));
    mjd_transitionFD(mm.get(), md.get(), 1e-6, 1, A.data(), nu > 0 ? B.data() : nullptr, nullptr, nullptr);
    std::vector<double> J(n * c);
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < n; ++j) J[i * c + j] = A[i * n + j];
      for (int j = 0; j < nu; ++j) J[i * c + n + j] = B[i * nu + j];
    }
    return J;
  }

  // [A | B] by central differences of mj_step
  std::vector<double> step_fd(const std::vector<double>& x, const std::vector<double>& u, double eps = 1e-6) {
    const int nq = mm->nq, nv = mm->nv, n = 2 * nv, nu = mm->nu, c = n + nu;
    auto next = [&](const std::vector<double>& xx, const std::vector<double>& uu) {
      set_state(xx, uu);
      mj_step(mm.get(), md.get());
      std::vector<double> r(md->qpos, md->qpos + nq);
      r.insert(r.end(), md->qvel, md->qvel + nv);
      return r;
    };
    const std::vector<double> center = next(x, u);
    std::vector<double> J(n * c);
    for (int col = 0; col < c; ++col) {
      std::vector<double> diff[2];
      for (int s = 0; s < 2; ++s) {
        const double e = s == 0 ? eps : -eps;
        std::vector<double> xx = x, uu = u;
        if (col < nv) {
          std::vector<double> dq(nv, 0.0);
          dq[col] = e;
          mj_integratePos(mm.get(), xx.data(), dq.data(), 1.0);
        } else if (col < n) {
          xx[nq + col - nv] += e;
        } else {
          uu[col - n] += e;
        }
        const std::vector<double> y = next(xx, uu);
        diff[s].assign(n, 0.0);
        mj_differentiatePos(mm.get(), diff[s].data(), 1.0, center.data(), y.data());
        for (int i = 0; i < nv; ++i) diff[s][nv + i] = y[nq + i] - center[nq + i];
      }
      for (int i = 0; i < n; ++i) J[i * c + col] = (diff[0][i] - diff[1][i]) / (2 * eps);
    }
    return J;
  }

  MjModelPtr mm;
  MjDataPtr md;
};

TEST_P(MujocoOracle, JacobiansMatchMujocosFiniteDifferences) {
  Env<double> e(model);
  const int n = e.ndx(), c = n + e.nu();
  const bool rk4 = GetParam().integrator == ModelIntegrator::rk4;
  double worst = 0;
  for (int trial = 0; trial < 4; ++trial) {
    std::vector<double> x, u;
    random_input(e, rng, &x, &u);
    for (int a = 0; a < e.nu(); ++a) {
      if (e.m.actuator_ctrllimited[a]) {
        const double lo = e.m.actuator_ctrlrange[2 * a], hi = e.m.actuator_ctrlrange[2 * a + 1];
        u[a] = 0.5 * (lo + hi) + 0.45 * (hi - lo) * std::max(-1.0, std::min(1.0, u[a]));
      }
    }
    const auto rev = e.jacobian<8>(x, u, Sweep::reverse);
    const auto oracle = rk4 ? step_fd(x, u) : transition_fd(x, u);
    const double err = rel_err(rev, oracle);
    worst = std::max(worst, err);
    EXPECT_LT(err, 1e-6) << "trial " << trial;
    EXPECT_LT(rel_err(e.jacobian<1>(x, u, Sweep::analytic), oracle), 1e-6) << "trial " << trial;
    if (rk4) {
      // mjd_transitionFD's position columns, which it computes without skipping a stage
      const auto tfd = transition_fd(x, u);
      for (int i = 0; i < n; ++i) {
        for (int j = 0; j < e.nv(); ++j) {
          EXPECT_NEAR(rev[i * c + j], tfd[i * c + j], 1e-6 * std::max(1.0, std::abs(tfd[i * c + j])))
              << "row " << i << " column " << j << " trial " << trial;
        }
      }
    }
  }
  report(rk4 ? "max rel err vs FD of mj_step" : "max rel err vs mjd_transitionFD", worst);
}

INSTANTIATE_TEST_SUITE_P(Models, MujocoOracle, ::testing::ValuesIn(all_cases(true)), case_name);

#endif

}  // namespace
}  // namespace phydream::testing
