// Jacobians of a step with soft contact, limits and friction loss by the implicit function
// theorem (engine/constraint_jvp.h, through step_jvp and step_jacobian_jvp), float64:
//   - against central differences of step() in tangent coordinates, at states in contact where
//     no row changes state within the difference's reach (checked: two step sizes agree);
//   - K = 1 and K = 8 directions per sweep give the same Jacobian, and so do the reverse sweeps
//     and the closed form (step_jacobian);
//   - the primal inside the derivative equals step() bit for bit.
// The solver runs to machine precision here (tolerance 0, so it stops when the line search
// stalls), so that finite differences of the solution are meaningful.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/articulated_jacobian.h"
#include "engine/articulated_ops.h"
#include "engine/data.h"
#include "engine/forward.h"
#include "engine/mjcf.h"
#include "engine/model_json.h"
#include "engine/model_view.h"
#include "engine/step_jvp.h"
#include "tests/engine/contact_fixture.h"

namespace phydream {
namespace {

using namespace contact_test;

TEST(ContactJacobian, IftMatchesCentralDifferences) {
  struct Spec {
    const char* asset;
    std::vector<double> qpos;  // empty: the first keyframe
    std::vector<double> qvel;
    int extra;
  };
  const std::vector<Spec> specs = {
      {"bounce", {}, {}, 3},
      {"bounce_wall", {}, {}, 3},
      {"two_balls", {}, {}, 2},
      {"finger", {-0.12, 0.0, 0.0}, {0.5, 0.0, 0.0}, 2},
      {"half_cheetah", {}, {}, 40},
      {"box_stack", {}, {}, 3},
  };
  int checked = 0;
  for (const Spec& s : specs) {
    SCOPED_TRACE(s.asset);
    Fixture f(load_model(asset_path(s.asset)));
    std::vector<double> x(f.nx(), 0.0);
    for (int i = 0; i < f.m.nq; ++i) x[i] = f.model.qpos0[i];
    if (!s.qpos.empty()) {
      std::copy(s.qpos.begin(), s.qpos.end(), x.begin());
      std::copy(s.qvel.begin(), s.qvel.end(), x.begin() + f.m.nq);
    } else if (f.model.nkey > 0) {
      std::copy(f.model.key_qpos.begin(), f.model.key_qpos.begin() + f.m.nq, x.begin());
      std::copy(f.model.key_qvel.begin(), f.model.key_qvel.begin() + f.m.nv, x.begin() + f.m.nq);
    }
    ASSERT_TRUE(settle_into_contact(f, &x, s.extra));
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> unit(-0.5, 0.5);
    std::vector<double> u(f.m.nu);
    for (double& a : u) a = unit(rng);

    std::vector<double> A, B, y, A1, B1, y1, Ar, Br, yr, Aa, Ba, ya, Af, Bf, Af2, Bf2;
    f.jacobian(x, u, &A, &B, &y, 8);
    f.jacobian(x, u, &A1, &B1, &y1, 1);
    f.rev(x, u, &Ar, &Br, &yr);
    f.analytic(x, u, &Aa, &Ba, &ya);
    EXPECT_EQ(y, f.next(x, u)) << "the primal of the derivative differs from step()";
    EXPECT_EQ(yr, y) << "the primal of the reverse sweeps differs from step()";
    EXPECT_EQ(ya, y) << "the primal of the closed form differs from step()";
    std::printf("%-14s closed form vs forward sweeps: A %.2e, B %.2e\n", s.asset, rel_error(Aa, A),
                B.empty() ? 0.0 : rel_error(Ba, B));
    EXPECT_LE(rel_error(Aa, A), 1e-11);
    if (!B.empty()) EXPECT_LE(rel_error(Ba, B), 1e-11);
    EXPECT_LE(rel_error(A1, A), 1e-13);
    EXPECT_LE(rel_error(B1, B), 1e-13);
    std::printf("%-14s reverse vs forward sweeps: A %.2e, B %.2e\n", s.asset, rel_error(Ar, A),
                B.empty() ? 0.0 : rel_error(Br, B));
    EXPECT_LE(rel_error(Ar, A), 1e-11);
    if (!B.empty()) EXPECT_LE(rel_error(Br, B), 1e-11);
    f.fd(x, u, 1e-6, &Af, &Bf);
    f.fd(x, u, 5e-7, &Af2, &Bf2);
    const double fd_consistency = std::max(rel_error(Af2, Af), B.empty() ? 0.0 : rel_error(Bf2, Bf));
    const double ea = rel_error(A, Af), eb = B.empty() ? 0.0 : rel_error(B, Bf);
    std::printf("%-14s rows %d: IFT vs central FD: A %.2e, B %.2e (FD step halving %.2e)\n", s.asset,
                f.rows_at(x, u), ea, eb, fd_consistency);
    ASSERT_LE(fd_consistency, 1e-6) << "the state is too close to an active-set switch";
    EXPECT_LE(ea, 1e-6);
    EXPECT_LE(eb, 1e-6);
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(specs.size()));
}

// random states of the pile under both cones: every state far enough from a switch is checked
TEST(ContactJacobian, IftMatchesCentralDifferencesOnRandomContactStates) {
  for (const char* integrator : {"Euler", "RK4"}) {
  for (const char* cone : {"pyramidal", "elliptic"}) {
    SCOPED_TRACE(std::string(cone) + " " + integrator);
    Fixture f(drop_model(cone, integrator));
    std::mt19937 rng(11);
    std::uniform_real_distribution<double> unit(-1, 1);
    int checked = 0, skipped = 0;
    double worst = 0, worst_rev = 0, worst_closed = 0;
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<double> x(f.nx(), 0.0);
      for (int i = 0; i < f.m.nq; ++i) x[i] = f.model.qpos0[i];
      x[2] = 0.05 + 0.03 * unit(rng);     // box height: touching or pressed in
      x[f.m.nq - 1] += 0.8 * unit(rng);   // shoulder angle: near or past its limits
      for (int i = 0; i < f.m.nv; ++i) x[f.m.nq + i] = 0.3 * unit(rng);
      std::vector<double> u = {unit(rng)};
      if (f.rows_at(x, u) == 0) continue;
      std::vector<double> A, B, y, Ar, Br, yr, Aa, Ba, ya, Af, Bf, Af2, Bf2;
      f.jacobian(x, u, &A, &B, &y, 8);
      f.rev(x, u, &Ar, &Br, &yr);
      f.analytic(x, u, &Aa, &Ba, &ya);
      worst_rev = std::max(worst_rev, std::max(rel_error(Ar, A), rel_error(Br, B)));
      worst_closed = std::max(worst_closed, std::max(rel_error(Aa, A), rel_error(Ba, B)));
      // RK4 chains four solves: on two ill-conditioned elliptic states their rounding compounds,
      // to 1.3e-10 at worst here (forward sweeps of 1 and 8 directions agree bit for bit there,
      // and the reverse sweeps agree with them to 1e-14 on the other states)
      const double rev_tol = std::string(integrator) == "RK4" ? 1e-9 : 1e-11;
      EXPECT_LE(std::max(rel_error(Ar, A), rel_error(Br, B)), rev_tol) << "trial " << trial;
      EXPECT_LE(std::max(rel_error(Aa, A), rel_error(Ba, B)), rev_tol) << "trial " << trial;
      // the reverse sweeps (which re-run RK4's stages) and the closed form leave the step's
      // result as step() does
      EXPECT_EQ(yr, y) << "trial " << trial;
      EXPECT_EQ(ya, y) << "trial " << trial;
      f.fd(x, u, 1e-6, &Af, &Bf);
      f.fd(x, u, 5e-7, &Af2, &Bf2);
      if (std::max(rel_error(Af2, Af), rel_error(Bf2, Bf)) > 1e-6) {
        ++skipped;  // a row changes state within the differences' reach
        continue;
      }
      const double e = std::max(rel_error(A, Af), rel_error(B, Bf));
      worst = std::max(worst, e);
      EXPECT_LE(e, 1e-6) << "trial " << trial;
      ++checked;
    }
    std::printf("drop (%s, %s): %d states checked, %d near a switch skipped, worst IFT vs FD %.2e, reverse vs "
                "forward sweeps %.2e, closed form vs forward sweeps %.2e\n",
                cone, integrator, checked, skipped, worst, worst_rev, worst_closed);
    EXPECT_GE(checked, 5);
  }
  }
}

// a box resting on the floor with a box, sphere or capsule on it: the box pairs of
// engine/collision_box.h. The box is 1.5 mm deep, past solimp's width (1 mm), so that no floor
// contact sits where the impedance's second derivative jumps (central differences there err by
// O(eps)).
std::string box_pair_xml(const std::string& type, const std::string& cone, const std::string& integrator) {
  const std::string size = type == "box" ? "0.06 0.05 0.04" : type == "sphere" ? "0.05" : "0.03 0.07";
  return R"(
<mujoco model="box_pair">
  <option timestep="0.002" cone=")" + cone + R"(" integrator=")" + integrator + R"("/>
  <worldbody>
    <geom name="floor" type="plane" size="5 5 0.1" friction="0.8 0.01 0.001"/>
    <body name="base" pos="0 0 0.0985">
      <freejoint/>
      <geom type="box" size="0.1 0.12 0.1" density="500"/>
    </body>
    <body name="top" pos="0 0 0.4">
      <freejoint/>
      <geom type=")" + type + R"(" size=")" + size + R"(" density="400" friction="0.6 0.01 0.001"/>
    </body>
  </worldbody>
</mujoco>)";
}

// random states of a geom pressed onto a box (random orientation, up to 4 mm deep or 1 mm
// apart within the margin's reach): sphere-box, capsule-box and box-box with face, edge and
// corner contacts; every state far enough from a switch is checked
TEST(ContactJacobian, IftMatchesCentralDifferencesOnBoxPairs) {
  struct Setting {
    const char* type;
    const char* cone;
    const char* integrator;
  };
  const std::vector<Setting> settings = {{"box", "pyramidal", "Euler"}, {"box", "elliptic", "Euler"},
                                         {"box", "pyramidal", "RK4"},   {"sphere", "pyramidal", "Euler"},
                                         {"capsule", "pyramidal", "Euler"}, {"capsule", "elliptic", "Euler"}};
  for (const Setting& st : settings) {
    SCOPED_TRACE(std::string(st.type) + " " + st.cone + " " + st.integrator);
    Fixture f(load_mjcf_string(box_pair_xml(st.type, st.cone, st.integrator), "box_pair"));
    std::mt19937 rng(13);
    std::uniform_real_distribution<double> unit(-1, 1);
    std::normal_distribution<double> gauss(0, 1);
    int checked = 0, skipped = 0, with_pair = 0;
    double worst = 0, worst_rev = 0, worst_closed = 0;
    for (int trial = 0; trial < 60 && checked < 12; ++trial) {
      std::vector<double> x(f.nx(), 0.0);
      for (int i = 0; i < f.m.nq; ++i) x[i] = f.model.qpos0[i];
      // the top geom: a random orientation, its lowest point placed at the base's top (z = 0.1985)
      double* q = x.data() + 10;
      double n = 0;
      for (int k = 0; k < 4; ++k) {
        q[k] = gauss(rng);
        n += q[k] * q[k];
      }
      for (int k = 0; k < 4; ++k) q[k] /= std::sqrt(n);
      const double w = q[0], a = q[1], b = q[2], c = q[3];
      const double zrow[3] = {2 * (a * c - w * b), 2 * (b * c + w * a), w * w - a * a - b * b + c * c};
      double low = 0;
      const std::string type = st.type;
      if (type == "box") {
        low = -(0.06 * std::abs(zrow[0]) + 0.05 * std::abs(zrow[1]) + 0.04 * std::abs(zrow[2]));
      } else if (type == "sphere") {
        low = -0.05;
      } else {
        low = -(0.03 + 0.07 * std::abs(zrow[2]));
      }
      x[7] = 0.03 * unit(rng);
      x[8] = 0.03 * unit(rng);
      x[9] = 0.1985 - low - 0.0015 + 0.0025 * unit(rng);
      for (int i = 0; i < f.m.nv; ++i) x[f.m.nq + i] = 0.2 * unit(rng);
      // only states where the top geom (geom 2) touches the box
      f.rows_at(x, {});
      const Data<double> d = f.data();
      int touching = 0;
      for (int c = 0; c < static_cast<int>(d.ncon[0]); ++c) {
        const int cand = static_cast<int>(d.con_cand[c]);
        touching += f.m.cand_geom1[cand] == 2 || f.m.cand_geom2[cand] == 2;
      }
      if (touching == 0) continue;
      ++with_pair;
      std::vector<double> A, B, y, Ar, Br, yr, Aa, Ba, ya, Af, Bf, Af2, Bf2;
      f.jacobian(x, {}, &A, &B, &y, 8);
      f.rev(x, {}, &Ar, &Br, &yr);
      f.analytic(x, {}, &Aa, &Ba, &ya);
      EXPECT_EQ(y, f.next(x, {})) << "trial " << trial;
      EXPECT_EQ(yr, y) << "trial " << trial;
      EXPECT_EQ(ya, y) << "trial " << trial;
      worst_rev = std::max(worst_rev, rel_error(Ar, A));
      worst_closed = std::max(worst_closed, rel_error(Aa, A));
      const double tol = std::string(st.integrator) == "RK4" ? 1e-9 : 1e-11;
      EXPECT_LE(rel_error(Ar, A), tol) << "trial " << trial;
      EXPECT_LE(rel_error(Aa, A), tol) << "trial " << trial;
      f.fd(x, {}, 1e-6, &Af, &Bf);
      f.fd(x, {}, 5e-7, &Af2, &Bf2);
      if (rel_error(Af2, Af) > 1e-6) {
        ++skipped;  // a row changes state, or a contact appears, within the differences' reach
        continue;
      }
      const double e = rel_error(A, Af);
      worst = std::max(worst, e);
      EXPECT_LE(e, 1e-6) << "trial " << trial;
      ++checked;
    }
    std::printf("%s on a box (%s, %s): %d states in contact with the box, %d checked, %d near a switch skipped, "
                "worst IFT vs FD %.2e, reverse vs forward sweeps %.2e, closed form vs forward sweeps %.2e\n",
                st.type, st.cone, st.integrator, with_pair, checked, skipped, worst, worst_rev, worst_closed);
    EXPECT_GE(checked, 8);
  }
}

// Reverse mode of a rollout through contact: the rollout VJP (stored trajectory and checkpointed)
// against the chain of forward-mode Jacobians along the same trajectory, and the adjoint identity
// <g, J v> = <J' g, v> per step with step_jvp and step_vjp, one direction each; with each asset's
// Euler integrator and with RK4 (whose reverse sweep re-runs each stage's solve).
TEST(ContactRolloutVjp, MatchesTheChainOfForwardJacobians) {
  for (const bool rk4 : {false, true}) {
  for (const char* asset : {"bounce", "two_balls", "finger", "half_cheetah", "box_stack"}) {
    SCOPED_TRACE(std::string(asset) + (rk4 ? " RK4" : " Euler"));
    Model model = load_model(asset_path(asset));
    if (rk4) {
      model.opt_integrator = ModelIntegrator::rk4;  // every stage solves its own rows
      // explicit RK4 is unstable with the Finger's stiff limits and contacts at its dt = 0.01
      if (std::string(asset) == "finger") model.opt_timestep = 0.002;
    }
    Fixture f(model);
    const int nx = f.nx(), ndx = f.ndx(), nu = f.m.nu;
    std::vector<double> x0(nx, 0.0);
    for (int i = 0; i < f.m.nq; ++i) x0[i] = f.model.qpos0[i];
    if (f.model.nkey > 0) {
      std::copy(f.model.key_qpos.begin(), f.model.key_qpos.begin() + f.m.nq, x0.begin());
      std::copy(f.model.key_qvel.begin(), f.model.key_qvel.begin() + f.m.nv, x0.begin() + f.m.nq);
    }
    if (std::string(asset) == "finger") {
      x0[0] = -0.12;
      x0[f.m.nq] = 0.5;
    }
    ASSERT_TRUE(settle_into_contact(f, &x0, 0));
    const int horizon = 40;
    std::mt19937 rng(5);
    std::uniform_real_distribution<double> unit(-0.5, 0.5);
    std::vector<double> actions(horizon * nu), g_final(ndx);
    for (double& a : actions) a = unit(rng);
    for (double& g : g_final) g = unit(rng);

    std::vector<double> states((horizon + 1) * nx);
    model_rollout(f.m, f.ws.data(), x0.data(), actions.data(), horizon, states.data());
    for (double v : states) ASSERT_TRUE(std::isfinite(v)) << "the rollout diverged";
    int rows = 0;
    for (int t = 0; t < horizon; ++t) {
      std::vector<double> xt(states.begin() + t * nx, states.begin() + (t + 1) * nx);
      std::vector<double> ut(actions.begin() + t * nu, actions.begin() + (t + 1) * nu);
      rows += f.rows_at(xt, ut) > 0;
      EXPECT_EQ(f.next(xt, ut), std::vector<double>(states.begin() + (t + 1) * nx, states.begin() + (t + 2) * nx))
          << "a rollout step differs from step() from the same state, t = " << t;
    }
    EXPECT_GT(rows, 0);

    // reverse: the rollout VJP, from the trajectory and checkpointed
    std::vector<double> gx0(ndx, 0.0), gu(horizon * nu, 0.0), gx0c(ndx, 0.0), guc(horizon * nu, 0.0);
    model_rollout_vjp(f.m, f.ws.data(), f.tws1.data(), states.data(), actions.data(), horizon, gx0.data(),
                      gu.data(), static_cast<const double*>(nullptr), g_final.data());
    std::vector<double> ckpt(rollout_checkpoint_size(f.m, horizon, 7));
    model_rollout_vjp_checkpointed(f.m, f.ws.data(), f.tws1.data(), x0.data(), actions.data(), horizon, 7,
                                   ckpt.data(), gx0c.data(), guc.data(), static_cast<const double*>(nullptr),
                                   g_final.data());
    EXPECT_EQ(gx0c, gx0);
    EXPECT_EQ(guc, gu);

    // forward: g' A_(T-1) ... A_0 and g' A_(T-1) ... A_(t+1) B_t from the forward sweeps
    std::vector<double> g = g_final, A, B, y;
    std::vector<double> gu_fwd(horizon * nu, 0.0);
    for (int t = horizon - 1; t >= 0; --t) {
      std::vector<double> xt(states.begin() + t * nx, states.begin() + (t + 1) * nx);
      std::vector<double> ut(actions.begin() + t * nu, actions.begin() + (t + 1) * nu);
      f.jacobian(xt, ut, &A, &B, &y, 8);
      std::vector<double> gn(ndx, 0.0);
      for (int i = 0; i < ndx; ++i) {
        for (int j = 0; j < ndx; ++j) gn[j] += g[i] * A[i * ndx + j];
        for (int j = 0; j < nu; ++j) gu_fwd[t * nu + j] += g[i] * B[i * nu + j];
      }
      g = gn;
    }
    const double ex = rel_error(gx0, g), eu = rel_error(gu, gu_fwd);
    std::printf("%-14s %-5s rollout VJP (%d steps, %d with rows) vs forward Jacobian chain: x0 %.2e, actions %.2e\n",
                asset, rk4 ? "RK4" : "Euler", horizon, rows, ex, eu);
    EXPECT_LE(ex, 1e-10);
    EXPECT_LE(eu, 1e-10);

    // adjoint identity of one step, one direction: <g, J v> = <J' g, v>
    std::vector<double> xt(states.begin() + (horizon / 2) * nx, states.begin() + (horizon / 2 + 1) * nx);
    std::vector<double> ut(actions.begin() + (horizon / 2) * nu, actions.begin() + (horizon / 2 + 1) * nu);
    std::vector<double> v(ndx), dv(nu), gn(ndx), out(ndx), yn(nx), gx(ndx, 0.0), gv(nu, 0.0);
    for (double& e : v) e = unit(rng);
    for (double& e : dv) e = unit(rng);
    for (double& e : gn) e = unit(rng);
    articulated_jvp(f.m, f.ws.data(), f.tws8.data(), xt.data(), ut.data(), v.data(), dv.data(), yn.data(),
                    out.data());
    articulated_vjp(f.m, f.ws.data(), f.tws8.data(), xt.data(), ut.data(), gx.data(), gv.data(), gn.data());
    double lhs = 0, rhs = 0, scale = 0;
    for (int i = 0; i < ndx; ++i) {
      lhs += gn[i] * out[i];
      rhs += gx[i] * v[i];
      scale += std::abs(gn[i] * out[i]) + std::abs(gx[i] * v[i]);
    }
    for (int i = 0; i < nu; ++i) {
      rhs += gv[i] * dv[i];
      scale += std::abs(gv[i] * dv[i]);
    }
    EXPECT_LE(std::abs(lhs - rhs), 1e-12 * std::max(scale, 1.0)) << lhs << " vs " << rhs;
  }
  }
}

}  // namespace
}  // namespace phydream
