// The forward-mode derivative of the articulated step (engine/step_jvp.h):
//   - the primal of step_jvp is step(), bit for bit (the whole primal workspace)
//   - K = 1 and K = 8 sweeps give identical tangents, bit for bit
//   - the Jacobian [A B] matches central differences of step() in double, in tangent coordinates
//     (integrate_pos to perturb, differentiate_pos to compare), at random states and at the
//     reference state (zero velocity, springs at rest: the series branches)
//   - every tangent intermediate of forward_jvp matches central differences of forward()
//   - integrate_pos_jvp matches differences, down to zero angular velocity
//   - float sweeps track double ones
//   - with MuJoCo: Euler Jacobians match mjd_transitionFD (centered, eps 1e-6); RK4 Jacobians
//     match centered differences of mj_step itself (see RK4ParityWithMujoco for why not
//     mjd_transitionFD's velocity and control columns)
// on hand-built models (always: every joint type, several joints on one body, two children on
// one body) and, with MuJoCo, on the MJCF test models.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <ostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/forward.h"
#include "engine/step_jvp.h"
#include "test_util.h"
#if PHYDREAM_TEST_WITH_MUJOCO
#include "tests/engine/mujoco_model.h"
#include "tests/engine/test_mjcf_models.h"
#endif

namespace phydream {
// readable test parameters in gtest's messages
inline void PrintTo(ModelIntegrator i, std::ostream* os) { *os << (i == ModelIntegrator::rk4 ? "rk4" : "euler"); }
}  // namespace phydream

namespace phydream::testing {
namespace {

// =============================================================================================
// hand-built models: bodies and joints added in tree order, addresses filled by finish()

class ModelBuilder {
 public:
  ModelBuilder(double timestep, ModelIntegrator integrator) {
    m_.source = "hand-built";
    m_.opt_timestep = timestep;
    m_.opt_integrator = integrator;
    m_.opt_disableflags = kDisableContact | kDisableLimit | kDisableFrictionloss;
    add_body(0, {0, 0, 0}, {1, 0, 0, 0}, 0, {0, 0, 0}, {1, 0, 0, 0}, {0, 0, 0});  // the world
  }

  int add_body(int parent, std::array<double, 3> pos, std::array<double, 4> quat, double mass,
               std::array<double, 3> ipos, std::array<double, 4> iquat, std::array<double, 3> inertia) {
    normalize(quat);
    normalize(iquat);
    m_.body_parentid.push_back(parent);
    append(m_.body_pos, pos);
    append(m_.body_quat, quat);
    m_.body_mass.push_back(mass);
    append(m_.body_ipos, ipos);
    append(m_.body_iquat, iquat);
    append(m_.body_inertia, inertia);
    m_.body_name.push_back("body" + std::to_string(m_.nbody));
    return m_.nbody++;
  }

  // joints of a body must be added right after it (before the next body)
  int add_joint(int body, JointType type, std::array<double, 3> pos, std::array<double, 3> axis,
                double stiffness, double damping, double armature, double ref = 0, double springref = 0) {
    const double n = std::sqrt(axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]);
    for (double& a : axis) a /= n;
    m_.jnt_type.push_back(static_cast<int>(type));
    m_.jnt_bodyid.push_back(body);
    append(m_.jnt_pos, pos);
    append(m_.jnt_axis, axis);
    m_.jnt_limited.push_back(0);
    m_.jnt_margin.push_back(0);
    m_.jnt_solref.insert(m_.jnt_solref.end(), {0.02, 1.0});
    m_.jnt_solimp.insert(m_.jnt_solimp.end(), {0.9, 0.95, 0.001, 0.5, 2.0});
    m_.jnt_range.insert(m_.jnt_range.end(), {0, 0});
    m_.jnt_stiffness.push_back(stiffness);
    m_.jnt_name.push_back("joint" + std::to_string(m_.njnt));
    const int nv = type == JointType::free ? 6 : type == JointType::ball ? 3 : 1;
    m_.jnt_qposadr.push_back(m_.nq);
    m_.jnt_dofadr.push_back(m_.nv);
    if (type == JointType::free) {
      const double* p = &m_.body_pos[3 * body];
      const double* q = &m_.body_quat[4 * body];
      for (int k = 0; k < 3; ++k) m_.qpos0.push_back(p[k]);
      for (int k = 0; k < 4; ++k) m_.qpos0.push_back(q[k]);
    } else if (type == JointType::ball) {
      m_.qpos0.insert(m_.qpos0.end(), {1, 0, 0, 0});
    } else {
      m_.qpos0.push_back(ref);
    }
    // the spring rests at the reference, except scalar joints with a springref
    const int nq = type == JointType::free ? 7 : type == JointType::ball ? 4 : 1;
    for (int k = 0; k < nq; ++k) m_.qpos_spring.push_back(m_.qpos0[m_.nq + k]);
    if (nq == 1) m_.qpos_spring.back() = springref;
    for (int k = 0; k < nv; ++k) {
      m_.dof_bodyid.push_back(body);
      m_.dof_jntid.push_back(m_.njnt);
      m_.dof_armature.push_back(armature);
      m_.dof_damping.push_back(damping);
      m_.dof_frictionloss.push_back(0);
    }
    m_.nq += nq;
    m_.nv += nv;
    return m_.njnt++;
  }

  void add_motor(int joint, double gear, bool limited, double lo = 0, double hi = 0) {
    m_.actuator_trnid.push_back(joint);
    m_.actuator_gear.push_back(gear);
    m_.actuator_ctrllimited.push_back(limited ? 1 : 0);
    m_.actuator_ctrlrange.insert(m_.actuator_ctrlrange.end(), {lo, hi});
    m_.actuator_name.push_back("motor" + std::to_string(m_.nu));
    ++m_.nu;
  }

  Model finish() {
    Model m = m_;
    m.body_jntnum.assign(m.nbody, 0);
    m.body_jntadr.assign(m.nbody, -1);
    m.body_dofnum.assign(m.nbody, 0);
    m.body_dofadr.assign(m.nbody, -1);
    for (int j = 0; j < m.njnt; ++j) {
      const int b = m.jnt_bodyid[j];
      if (m.body_jntadr[b] < 0) m.body_jntadr[b] = j;
      ++m.body_jntnum[b];
    }
    for (int i = 0; i < m.nv; ++i) {
      const int b = m.dof_bodyid[i];
      if (m.body_dofadr[b] < 0) m.body_dofadr[b] = i;
      ++m.body_dofnum[b];
    }
    // a dof's parent: the previous dof of its body, else the last dof of the nearest ancestor
    m.dof_parentid.assign(m.nv, -1);
    for (int i = 0; i < m.nv; ++i) {
      const int b = m.dof_bodyid[i];
      if (i > m.body_dofadr[b]) {
        m.dof_parentid[i] = i - 1;
        continue;
      }
      for (int p = m.body_parentid[b]; p > 0; p = m.body_parentid[p]) {
        if (m.body_dofnum[p] > 0) {
          m.dof_parentid[i] = m.body_dofadr[p] + m.body_dofnum[p] - 1;
          break;
        }
      }
    }
    return m;
  }

 private:
  template <size_t N>
  static void append(std::vector<double>& v, const std::array<double, N>& a) {
    v.insert(v.end(), a.begin(), a.end());
  }
  template <size_t N>
  static void normalize(std::array<double, N>& a) {
    double n = 0;
    for (double x : a) n += x * x;
    for (double& x : a) x /= std::sqrt(n);
  }
  Model m_;
};

// a tree with two joints on its first body (hinge + slide), a ball, two children on one body
Model hand_tree(ModelIntegrator integrator) {
  ModelBuilder b(0.005, integrator);
  const int b1 = b.add_body(0, {0, 0, 1}, {0.9, 0.1, -0.2, 0.3}, 1.3, {0.1, 0.02, -0.05}, {1, 0.2, 0, 0.1},
                            {0.02, 0.03, 0.04});
  const int hinge1 = b.add_joint(b1, JointType::hinge, {0, 0, 0.05}, {0, 1, 0.2}, 1.5, 0.2, 0.05, 0.1, 0.3);
  const int slide1 = b.add_joint(b1, JointType::slide, {0, 0, 0}, {1, 0.3, 0}, 0.4, 0.3, 0.1, -0.2, 0.1);
  const int b2 = b.add_body(b1, {0.4, 0, 0}, {1, 0.1, 0.1, -0.2}, 0.8, {0.15, 0, 0.01}, {1, 0, 0, 0},
                            {0.005, 0.02, 0.02});
  const int hinge2 = b.add_joint(b2, JointType::hinge, {0.02, 0, 0}, {1, 0, 1}, 0, 0.1, 0.02);
  const int b3 = b.add_body(b2, {0.3, 0.05, 0}, {1, 0, 0, 0}, 0.6, {0.1, 0.02, 0}, {1, 0, 0.3, 0},
                            {0.004, 0.01, 0.012});
  b.add_joint(b3, JointType::ball, {0, 0, 0.02}, {0, 0, 1}, 0.8, 0.1, 0.01);
  const int b4 = b.add_body(b1, {-0.3, 0.1, 0}, {1, 0, 0, 0.4}, 0.5, {-0.1, 0, 0}, {1, 0, 0, 0},
                            {0.003, 0.008, 0.009});
  b.add_joint(b4, JointType::hinge, {0, 0, 0}, {0, 0, 1}, 0.5, 0, 0);
  b.add_motor(hinge1, 2, true, -1, 1);
  b.add_motor(slide1, 1, false);
  b.add_motor(hinge2, -0.5, true, -0.5, 0.8);
  return b.finish();
}

// a floating base (free joint with a spring and damping) carrying a hinge and a ball chain
Model hand_floating(ModelIntegrator integrator) {
  ModelBuilder b(0.005, integrator);
  const int b1 = b.add_body(0, {0.1, -0.2, 1.5}, {0.95, 0.1, -0.15, 0.2}, 3, {0.02, 0, -0.01},
                            {1, 0, 0.1, 0}, {0.05, 0.08, 0.1});
  b.add_joint(b1, JointType::free, {0, 0, 0}, {0, 0, 1}, 0.3, 0.05, 0);
  const int b2 = b.add_body(b1, {0.25, 0, 0}, {1, 0, 0, 0}, 0.4, {0.15, 0, 0}, {1, 0, 0, 0},
                            {0.001, 0.003, 0.004});
  const int flap = b.add_joint(b2, JointType::hinge, {-0.02, 0, 0}, {0, 1, 0.3}, 1, 0.2, 0.01);
  const int b3 = b.add_body(b1, {-0.25, 0, 0.05}, {1, 0.2, 0, 0}, 0.3, {-0.15, 0.02, 0.05},
                            {1, 0, 0, 0}, {0.001, 0.004, 0.004});
  b.add_joint(b3, JointType::ball, {0, 0, 0}, {0, 0, 1}, 0.5, 0.05, 0);
  const int b4 = b.add_body(b3, {-0.3, 0.05, 0.1}, {1, 0, 0, 0}, 0.2, {-0.05, 0, 0}, {1, 0, 0, 0},
                            {0.001, 0.002, 0.002});
  b.add_joint(b4, JointType::hinge, {0, 0, 0}, {0, 0, 1}, 0, 0.02, 0);
  b.add_motor(flap, 0.5, true, -1, 1);
  return b.finish();
}

// =============================================================================================
// a model under test: its arrays, a primal workspace and tangent workspaces

struct Case {
  std::string name;
  std::function<Model(ModelIntegrator)> make;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::vector<Case> all_cases() {
  std::vector<Case> cases = {{"hand_tree", hand_tree}, {"hand_floating", hand_floating}};
#if PHYDREAM_TEST_WITH_MUJOCO
  for (const TestMjcf& t : test_mjcf_models()) {
    const std::string xml = t.xml;
    cases.push_back({t.name, [xml](ModelIntegrator integrator) {
                       MjModelPtr mj = mujoco_load_string(xml);
                       mj->opt.integrator = integrator == ModelIntegrator::rk4 ? mjINT_RK4 : mjINT_EULER;
                       return model_from_mujoco(mj.get());
                     }});
  }
#endif
  return cases;
}

template <class S>
struct Harness {
  Model model;
  ModelArrays<S> arrays;
  ModelView<S> m;
  DataStore<S> store;
  Data<S> d;
  DataLayout layout;
  int nq, nv, nu, nx;

  explicit Harness(const Model& mdl)
      : model(mdl), arrays(mdl), m(arrays.view()), store(m), d(store.view()), layout(data_layout(m)),
        nq(mdl.nq), nv(mdl.nv), nu(mdl.nu), nx(2 * mdl.nv) {}

  // a random state: quaternions random (normalised here), qvel, ctrl inside the ranges
  void random_state(std::mt19937_64& rng, std::vector<double>* qpos, std::vector<double>* qvel,
                    std::vector<double>* ctrl) {
    std::uniform_real_distribution<double> u(-1, 1);
    qpos->resize(nq);
    qvel->resize(nv);
    ctrl->resize(nu);
    for (int i = 0; i < nq; ++i) (*qpos)[i] = model.qpos0[i] + 0.7 * u(rng);
    for (int j = 0; j < model.njnt; ++j) {
      const int type = model.jnt_type[j];
      if (type == static_cast<int>(JointType::hinge) || type == static_cast<int>(JointType::slide)) continue;
      double* q = qpos->data() + model.jnt_qposadr[j] + (type == static_cast<int>(JointType::free) ? 3 : 0);
      const double n = std::sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
      for (int k = 0; k < 4; ++k) q[k] /= n;
    }
    for (double& v : *qvel) v = 1.5 * u(rng);
    for (int a = 0; a < nu; ++a) {
      const bool lim = model.actuator_ctrllimited[a];
      const double lo = lim ? model.actuator_ctrlrange[2 * a] : -1, hi = lim ? model.actuator_ctrlrange[2 * a + 1] : 1;
      (*ctrl)[a] = lo + (hi - lo) * (0.1 + 0.8 * (0.5 + 0.5 * u(rng)));
    }
  }

  void set(const std::vector<double>& qpos, const std::vector<double>& qvel, const std::vector<double>& ctrl) {
    for (int i = 0; i < nq; ++i) d.qpos[i] = static_cast<S>(qpos[i]);
    for (int i = 0; i < nv; ++i) d.qvel[i] = static_cast<S>(qvel[i]);
    for (int i = 0; i < nu; ++i) d.ctrl[i] = static_cast<S>(ctrl[i]);
    d.time[0] = S(0);
  }

  // step_jvp with K directions given column by column (each a vector of nx + nu): outputs
  // (nx x K) as doubles, column-major by direction
  template <int K>
  std::vector<double> jvp(const std::vector<double>& qpos, const std::vector<double>& qvel,
                          const std::vector<double>& ctrl, const std::vector<std::vector<double>>& dirs) {
    using T = Vec<S, K>;
    std::vector<T> ws(layout.size, T::zero());
    const Data<T> t = data_at(layout, ws.data());
    std::vector<T> dq(nv, T::zero()), dv(nv, T::zero()), du(nu, T::zero()), oq(nv), ov(nv);
    for (int k = 0; k < K && k < static_cast<int>(dirs.size()); ++k) {
      for (int i = 0; i < nv; ++i) {
        dq[i][k] = static_cast<S>(dirs[k][i]);
        dv[i][k] = static_cast<S>(dirs[k][nv + i]);
      }
      for (int a = 0; a < nu; ++a) du[a][k] = static_cast<S>(dirs[k][nx + a]);
    }
    set(qpos, qvel, ctrl);
    step_jvp<S, K>(m, d, t, dq.data(), dv.data(), du.data(), oq.data(), ov.data());
    std::vector<double> out(static_cast<size_t>(nx) * K);
    for (int k = 0; k < K; ++k) {
      for (int i = 0; i < nv; ++i) {
        out[k * nx + i] = oq[i][k];
        out[k * nx + nv + i] = ov[i][k];
      }
    }
    return out;
  }

  // [A B] (nx x (nx + nu), row-major) from JVP chunks of 8 columns
  std::vector<double> jacobian(const std::vector<double>& qpos, const std::vector<double>& qvel,
                               const std::vector<double>& ctrl) {
    const int nc = nx + nu;
    std::vector<double> J(static_cast<size_t>(nx) * nc);
    for (int c0 = 0; c0 < nc; c0 += 8) {
      std::vector<std::vector<double>> dirs;
      for (int c = c0; c < std::min(nc, c0 + 8); ++c) {
        dirs.emplace_back(nc, 0.0);
        dirs.back()[c] = 1;
      }
      const std::vector<double> out = jvp<8>(qpos, qvel, ctrl, dirs);
      for (int k = 0; k < static_cast<int>(dirs.size()); ++k) {
        for (int i = 0; i < nx; ++i) J[i * nc + c0 + k] = out[k * nx + i];
      }
    }
    return J;
  }
};

// the next state of step() in double from a perturbed input: qpos (+) eps dq, qvel + eps dv,
// ctrl + eps du
void step_from(Harness<double>& h, const std::vector<double>& qpos, const std::vector<double>& qvel,
               const std::vector<double>& ctrl, const std::vector<double>& dir, double eps,
               std::vector<double>* qpos_next, std::vector<double>* qvel_next) {
  h.set(qpos, qvel, ctrl);
  integrate_pos(h.m, h.d.qpos, dir.data(), eps);
  for (int i = 0; i < h.nv; ++i) h.d.qvel[i] += eps * dir[h.nv + i];
  for (int a = 0; a < h.nu; ++a) h.d.ctrl[a] += eps * dir[h.nx + a];
  step(h.m, h.d);
  qpos_next->assign(h.d.qpos, h.d.qpos + h.nq);
  qvel_next->assign(h.d.qvel, h.d.qvel + h.nv);
}

// central difference of step() along dir, in tangent coordinates (nx)
std::vector<double> fd_direction(Harness<double>& h, const std::vector<double>& qpos,
                                 const std::vector<double>& qvel, const std::vector<double>& ctrl,
                                 const std::vector<double>& dir, double eps) {
  std::vector<double> qp, vp, qm, vm;
  step_from(h, qpos, qvel, ctrl, dir, eps, &qp, &vp);
  step_from(h, qpos, qvel, ctrl, dir, -eps, &qm, &vm);
  std::vector<double> out(h.nx);
  differentiate_pos(h.m, out.data(), qm.data(), qp.data(), 2 * eps);
  for (int i = 0; i < h.nv; ++i) out[h.nv + i] = (vp[i] - vm[i]) / (2 * eps);
  return out;
}

std::vector<double> fd_jacobian(Harness<double>& h, const std::vector<double>& qpos,
                                const std::vector<double>& qvel, const std::vector<double>& ctrl, double eps) {
  const int nc = h.nx + h.nu;
  std::vector<double> J(static_cast<size_t>(h.nx) * nc);
  for (int c = 0; c < nc; ++c) {
    std::vector<double> dir(nc, 0.0);
    dir[c] = 1;
    const std::vector<double> col = fd_direction(h, qpos, qvel, ctrl, dir, eps);
    for (int i = 0; i < h.nx; ++i) J[i * nc + c] = col[i];
  }
  return J;
}

// central differences with eps 1e-5 in double: truncation ~eps^2, rounding ~1e-16 / eps
constexpr double kFdEps = 1e-5;
constexpr double kFdTol = 1e-7;

class StepJvp : public ::testing::TestWithParam<std::tuple<Case, ModelIntegrator>> {
 protected:
  Model make() const { return std::get<0>(GetParam()).make(std::get<1>(GetParam())); }
};

TEST_P(StepJvp, PrimalIsStepBitForBit) {
  Harness<double> a(make()), b(make());
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(-1, 1);
  for (int trial = 0; trial < 3; ++trial) {
    std::vector<double> qpos, qvel, ctrl;
    a.random_state(rng, &qpos, &qvel, &ctrl);
    std::vector<std::vector<double>> dirs(8, std::vector<double>(a.nx + a.nu));
    for (auto& dir : dirs) {
      for (double& x : dir) x = u(rng);
    }
    a.set(qpos, qvel, ctrl);
    step(a.m, a.d);
    b.jvp<8>(qpos, qvel, ctrl, dirs);
    // the whole primal workspace: state, time and every intermediate
    EXPECT_EQ(0, std::memcmp(a.store.workspace(), b.store.workspace(), a.store.workspace_size() * sizeof(double)))
        << "trial " << trial;
  }
}

TEST_P(StepJvp, OneDirectionAtATimeEqualsEightAtOnce) {
  Harness<double> h(make());
  std::mt19937_64 rng(12);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> qpos, qvel, ctrl;
  h.random_state(rng, &qpos, &qvel, &ctrl);
  // mixed directions, and velocity/control-only ones (whose position stages are skipped alone)
  std::vector<std::vector<double>> dirs(8, std::vector<double>(h.nx + h.nu, 0.0));
  for (int k = 0; k < 8; ++k) {
    for (int c = (k % 2 ? h.nv : 0); c < h.nx + h.nu; ++c) dirs[k][c] = u(rng);
  }
  const std::vector<double> eight = h.jvp<8>(qpos, qvel, ctrl, dirs);
  for (int k = 0; k < 8; ++k) {
    const std::vector<double> one = h.jvp<1>(qpos, qvel, ctrl, {dirs[k]});
    for (int i = 0; i < h.nx; ++i) EXPECT_EQ(one[i], eight[k * h.nx + i]) << "direction " << k << " row " << i;
  }
}

TEST_P(StepJvp, JacobianMatchesCentralDifferences) {
  Harness<double> h(make());
  std::mt19937_64 rng(13);
  for (int trial = 0; trial < 4; ++trial) {
    std::vector<double> qpos, qvel, ctrl;
    h.random_state(rng, &qpos, &qvel, &ctrl);
    if (trial == 0) {
      // the reference state: zero velocity, springs at rest (the series branches)
      qpos = h.model.qpos0;
      std::fill(qvel.begin(), qvel.end(), 0.0);
    } else if (trial == 1) {
      // rotations a few hundredths of a radian from the springs' rest: the series branch of the
      // logarithm's derivative with its higher-order terms significant
      std::vector<double> dir(h.nv);
      std::uniform_real_distribution<double> u(-0.03, 0.03);
      for (double& x : dir) x = u(rng);
      qpos = h.model.qpos0;
      integrate_pos(h.m, qpos.data(), dir.data(), 1.0);
    }
    const std::vector<double> J = h.jacobian(qpos, qvel, ctrl);
    const std::vector<double> F = fd_jacobian(h, qpos, qvel, ctrl, kFdEps);
    EXPECT_LT(rel_err(J, F), kFdTol) << "trial " << trial;
    EXPECT_NE(J, F);  // the comparison is not vacuous
  }
}

TEST_P(StepJvp, ForwardTangentsMatchDifferencesOfEveryIntermediate) {
  Harness<double> h(make());
  std::mt19937_64 rng(14);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> qpos, qvel, ctrl;
  h.random_state(rng, &qpos, &qvel, &ctrl);
  std::vector<double> dir(h.nx + h.nu);
  for (double& x : dir) x = u(rng);

  // forward() at the perturbed inputs, whole workspaces
  auto forward_at = [&](double eps) {
    h.set(qpos, qvel, ctrl);
    integrate_pos(h.m, h.d.qpos, dir.data(), eps);
    for (int i = 0; i < h.nv; ++i) h.d.qvel[i] += eps * dir[h.nv + i];
    for (int a = 0; a < h.nu; ++a) h.d.ctrl[a] += eps * dir[h.nx + a];
    forward(h.m, h.d);
    return std::vector<double>(h.store.workspace(), h.store.workspace() + h.store.workspace_size());
  };
  const std::vector<double> plus = forward_at(kFdEps), minus = forward_at(-kFdEps);

  // the tangents of one direction
  using T = Vec<double, 1>;
  std::vector<T> ws(h.layout.size, T::zero());
  const Data<T> t = data_at(h.layout, ws.data());
  for (int i = 0; i < h.nv; ++i) {
    t.qpos[i][0] = dir[i];
    t.qvel[i][0] = dir[h.nv + i];
  }
  for (int a = 0; a < h.nu; ++a) t.ctrl[a][0] = dir[h.nx + a];
  h.set(qpos, qvel, ctrl);
  forward(h.m, h.d);
  forward_jvp(h.m, h.d, t);

  const DataLayout& L = h.layout;
  const int nb = h.model.nbody, nv = h.nv, nj = h.model.njnt;
  struct Field {
    const char* name;
    int offset, n;
  };
  const Field fields[] = {{"xpos", L.xpos, 3 * nb},         {"xquat", L.xquat, 4 * nb},
                          {"xmat", L.xmat, 9 * nb},         {"xipos", L.xipos, 3 * nb},
                          {"ximat", L.ximat, 9 * nb},       {"xanchor", L.xanchor, 3 * nj},
                          {"xaxis", L.xaxis, 3 * nj},       {"subtree_com", L.subtree_com, 3 * nb},
                          {"cinert", L.cinert, 10 * nb},    {"cdof", L.cdof, 6 * nv},
                          {"crb", L.crb, 10 * nb},          {"qM", L.qM, nv * nv},
                          {"cvel", L.cvel, 6 * nb},         {"cdof_dot", L.cdof_dot, 6 * nv},
                          {"cacc", L.cacc, 6 * nb},         {"cfrc_body", L.cfrc_body, 6 * nb},
                          {"qfrc_bias", L.qfrc_bias, nv},   {"qfrc_passive", L.qfrc_passive, nv},
                          {"actuator_force", L.actuator_force, h.nu},
                          {"qfrc_actuator", L.qfrc_actuator, nv},
                          {"qfrc_smooth", L.qfrc_smooth, nv}, {"qacc", L.qacc, nv}};
  for (const Field& f : fields) {
    std::vector<double> fd(f.n), an(f.n);
    for (int i = 0; i < f.n; ++i) {
      fd[i] = (plus[f.offset + i] - minus[f.offset + i]) / (2 * kFdEps);
      an[i] = ws[f.offset + i][0];
    }
    EXPECT_LT(rel_err(an, fd), kFdTol) << f.name;
  }
}

TEST_P(StepJvp, FloatTracksDouble) {
  const Model model = make();
  Harness<double> hd(model);
  Harness<float> hf(model);
  std::mt19937_64 rng(15);
  std::vector<double> qpos, qvel, ctrl;
  hd.random_state(rng, &qpos, &qvel, &ctrl);
  // the float computation starts from the same (float-rounded) point
  for (double& x : qpos) x = static_cast<float>(x);
  for (double& x : qvel) x = static_cast<float>(x);
  for (double& x : ctrl) x = static_cast<float>(x);
  const std::vector<double> Jd = hd.jacobian(qpos, qvel, ctrl);
  const std::vector<double> Jf = hf.jacobian(qpos, qvel, ctrl);
  EXPECT_LT(rel_err(Jf, Jd), 2e-4);
  for (double x : Jf) ASSERT_TRUE(std::isfinite(x));
}

INSTANTIATE_TEST_SUITE_P(
    Models, StepJvp,
    ::testing::Combine(::testing::ValuesIn(all_cases()), ::testing::Values(ModelIntegrator::euler, ModelIntegrator::rk4)),
    [](const ::testing::TestParamInfo<std::tuple<Case, ModelIntegrator>>& info) {
      return std::get<0>(info.param).name + (std::get<1>(info.param) == ModelIntegrator::rk4 ? "_rk4" : "_euler");
    });

// =============================================================================================
// integrate_pos_jvp alone, down to zero angular velocity (the series branch of exp)

TEST(IntegratePosJvp, MatchesDifferencesAtAnyAngularSpeed) {
  Harness<double> h(hand_floating(ModelIntegrator::euler));
  std::mt19937_64 rng(16);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> qpos, qvel, ctrl;
  h.random_state(rng, &qpos, &qvel, &ctrl);
  const double hstep = 0.05;
  // rotation angles h |w| on both sides of the switch to the exponential's series (0.05)
  for (double angle : {1.0, 0.06, 0.04, 1e-3, 1e-7, 0.0}) {
    std::vector<double> v(h.nv);
    for (double& x : v) x = u(rng);
    for (int j = 0; j < h.model.njnt; ++j) {
      const int type = h.model.jnt_type[j];
      if (type != static_cast<int>(JointType::ball) && type != static_cast<int>(JointType::free)) continue;
      double* w = v.data() + h.model.jnt_dofadr[j] + (type == static_cast<int>(JointType::free) ? 3 : 0);
      const double n = std::sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
      for (int k = 0; k < 3; ++k) w[k] *= angle / (hstep * n);
    }
    std::vector<double> dq(h.nv), dv(h.nv);
    for (double& x : dq) x = u(rng);
    for (double& x : dv) x = u(rng);
    using T = Vec<double, 1>;
    std::vector<T> tq(h.nv), tv(h.nv), out(h.nv);
    for (int i = 0; i < h.nv; ++i) {
      tq[i][0] = dq[i];
      tv[i][0] = dv[i];
    }
    integrate_pos_jvp(h.m, qpos.data(), v.data(), hstep, tq.data(), tv.data(), out.data());
    // differences of q(eps) = integrate_pos(qpos (+) eps dq, v + eps dv, h) at q(0)
    auto at = [&](double eps) {
      std::vector<double> q = qpos, w = v;
      integrate_pos(h.m, q.data(), dq.data(), eps);
      for (int i = 0; i < h.nv; ++i) w[i] += eps * dv[i];
      integrate_pos(h.m, q.data(), w.data(), hstep);
      return q;
    };
    const std::vector<double> qp = at(kFdEps), qm = at(-kFdEps);
    std::vector<double> fd(h.nv), an(h.nv);
    differentiate_pos(h.m, fd.data(), qm.data(), qp.data(), 2 * kFdEps);
    for (int i = 0; i < h.nv; ++i) an[i] = out[i][0];
    EXPECT_LT(rel_err(an, fd), kFdTol) << "angle " << angle;
  }
}

#if PHYDREAM_TEST_WITH_MUJOCO
// =============================================================================================
// MuJoCo's finite-difference Jacobians

class MujocoJacobian : public ::testing::TestWithParam<TestMjcf> {};

// [A B] from mjd_transitionFD (centered), as (nx x (nx + nu)) row-major
std::vector<double> mujoco_transition_fd(const mjModel* m, mjData* d, double eps) {
  const int nx = 2 * m->nv, nu = m->nu, nc = nx + nu;
  std::vector<double> A(static_cast<size_t>(nx) * nx), B(static_cast<size_t>(nx) * std::max(nu, 1));
  mjd_transitionFD(m, d, eps, 1, A.data(), nu > 0 ? B.data() : nullptr, nullptr, nullptr);
  std::vector<double> J(static_cast<size_t>(nx) * nc);
  for (int i = 0; i < nx; ++i) {
    for (int c = 0; c < nx; ++c) J[i * nc + c] = A[i * nx + c];
    for (int a = 0; a < nu; ++a) J[i * nc + nx + a] = B[i * nu + a];
  }
  return J;
}

// centered differences of mj_step itself (mj_integratePos / mj_differentiatePos)
std::vector<double> mujoco_step_fd(const mjModel* m, mjData* d, const std::vector<double>& qpos,
                                   const std::vector<double>& qvel, const std::vector<double>& ctrl, double eps) {
  const int nv = m->nv, nq = m->nq, nu = m->nu, nx = 2 * nv, nc = nx + nu;
  std::vector<double> J(static_cast<size_t>(nx) * nc);
  for (int c = 0; c < nc; ++c) {
    std::vector<double> qn[2], vn[2];
    for (int s = 0; s < 2; ++s) {
      std::copy(qpos.begin(), qpos.end(), d->qpos);
      std::copy(qvel.begin(), qvel.end(), d->qvel);
      std::copy(ctrl.begin(), ctrl.end(), d->ctrl);
      const double e = s ? eps : -eps;
      if (c < nv) {
        std::vector<double> dq(nv, 0.0);
        dq[c] = 1;
        mj_integratePos(m, d->qpos, dq.data(), e);
      } else if (c < nx) {
        d->qvel[c - nv] += e;
      } else {
        d->ctrl[c - nx] += e;
      }
      mj_step(m, d);
      qn[s].assign(d->qpos, d->qpos + nq);
      vn[s].assign(d->qvel, d->qvel + nv);
    }
    std::vector<double> dp(nv);
    mj_differentiatePos(m, dp.data(), 2 * eps, qn[0].data(), qn[1].data());
    for (int i = 0; i < nv; ++i) {
      J[i * nc + c] = dp[i];
      J[(nv + i) * nc + c] = (vn[1][i] - vn[0][i]) / (2 * eps);
    }
  }
  return J;
}

// FD with eps 1e-6 as MuJoCo's default: rounding ~1e-16 / eps dominates
constexpr double kMujocoFdTol = 1e-6;

TEST_P(MujocoJacobian, EulerMatchesTransitionFD) {
  MjModelPtr mj = mujoco_load_string(GetParam().xml);
  mj->opt.integrator = mjINT_EULER;
  MjDataPtr md(mj_makeData(mj.get()));
  Harness<double> h(model_from_mujoco(mj.get()));
  std::mt19937_64 rng(21);
  for (int trial = 0; trial < 3; ++trial) {
    std::vector<double> qpos, qvel, ctrl;
    h.random_state(rng, &qpos, &qvel, &ctrl);
    const std::vector<double> J = h.jacobian(qpos, qvel, ctrl);
    std::copy(qpos.begin(), qpos.end(), md->qpos);
    std::copy(qvel.begin(), qvel.end(), md->qvel);
    std::copy(ctrl.begin(), ctrl.end(), md->ctrl);
    const std::vector<double> F = mujoco_transition_fd(mj.get(), md.get(), 1e-6);
    EXPECT_LT(rel_err(J, F), kMujocoFdTol) << "trial " << trial;
  }
}

TEST_P(MujocoJacobian, Rk4MatchesDifferencesOfMjStep) {
  MjModelPtr mj = mujoco_load_string(GetParam().xml);
  mj->opt.integrator = mjINT_RK4;
  MjDataPtr md(mj_makeData(mj.get()));
  Harness<double> h(model_from_mujoco(mj.get()));
  std::mt19937_64 rng(22);
  for (int trial = 0; trial < 3; ++trial) {
    std::vector<double> qpos, qvel, ctrl;
    h.random_state(rng, &qpos, &qvel, &ctrl);
    const std::vector<double> J = h.jacobian(qpos, qvel, ctrl);
    const std::vector<double> F = mujoco_step_fd(mj.get(), md.get(), qpos, qvel, ctrl, 1e-6);
    EXPECT_LT(rel_err(J, F), kMujocoFdTol) << "trial " << trial;
    // mjd_transitionFD itself: its position columns are differences of mj_step; its velocity
    // and control columns are not (MuJoCo 2.2.2 skips the position stages when it perturbs
    // velocities or controls, which RK4's later stages need), so only the former are compared
    std::copy(qpos.begin(), qpos.end(), md->qpos);
    std::copy(qvel.begin(), qvel.end(), md->qvel);
    std::copy(ctrl.begin(), ctrl.end(), md->ctrl);
    const std::vector<double> T = mujoco_transition_fd(mj.get(), md.get(), 1e-6);
    const int nv = h.nv, nc = h.nx + h.nu;
    std::vector<double> Jp, Tp;
    for (int i = 0; i < h.nx; ++i) {
      for (int c = 0; c < nv; ++c) {
        Jp.push_back(J[i * nc + c]);
        Tp.push_back(T[i * nc + c]);
      }
    }
    EXPECT_LT(rel_err(Jp, Tp), kMujocoFdTol) << "position columns, trial " << trial;
  }
}

INSTANTIATE_TEST_SUITE_P(TestModels, MujocoJacobian, ::testing::ValuesIn(test_mjcf_models()),
                         [](const ::testing::TestParamInfo<TestMjcf>& info) { return std::string(info.param.name); });
#endif

}  // namespace
}  // namespace phydream::testing
