// Jacobians of a step with soft contact by differentiating the solver's iterations
// (GradMode::unrolled, engine/constraint_unrolled.h, through step_jvp and step_jacobian_jvp),
// float64, at states in contact of the contact assets and of a dropped box and a limited arm
// under both cones, and under RK4, whose later stages warm-start their solves (also a falling ball
// whose first stage has no rows):
//   - the dual solve's values equal the primal solve's bit for bit, and the derivative's primal
//     equals step();
//   - against central differences of step() when the solver runs a fixed number of iterations
//     (tolerance 0 and a cap of 2 or 5: every solve runs to the cap) or converges tightly: then
//     the step is a smooth function of the state wherever no branch switches within the
//     differences' reach (checked: two step sizes agree), and the unrolled derivative is its
//     derivative, also where the IFT derivative (of the converged solution) is not;
//   - with a tight solve it agrees with the implicit-function-theorem Jacobian; with one or two
//     iterations at a loose tolerance the two differ;
//   - K = 1 and K = 8 directions per sweep give the same Jacobian.
// Iterating far past convergence (tolerance 0, and solves that never stall) makes the unrolled
// derivative drift: at a solution converged to rounding, the line search's step is a ratio of
// rounding-level numbers whose tangents are not small, and each further iteration amplifies the
// tangent's error (printed by AgreesWithIftWhenConvergedAndDiffersWhenNot).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/articulated_jacobian.h"
#include "engine/articulated_ops.h"
#include "engine/constraint_unrolled.h"
#include "engine/data.h"
#include "engine/forward.h"
#include "engine/mjcf.h"
#include "engine/model_json.h"
#include "engine/model_view.h"
#include "tests/engine/contact_fixture.h"

namespace phydream {
namespace {

using namespace contact_test;

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// ---------------------------------------------------------------------------------------------
// the states: contact assets settled into contact, and random states of the drop model

struct Case {
  std::string name;
  Model model;
  std::vector<double> x, u;
};

std::vector<Case> asset_cases() {
  struct Spec {
    const char* asset;
    std::vector<double> qpos;  // empty: the first keyframe
    std::vector<double> qvel;
    int extra;
  };
  const std::vector<Spec> specs = {
      {"bounce", {}, {}, 3},
      {"two_balls", {}, {}, 2},
      {"finger", {-0.12, 0.0, 0.0}, {0.5, 0.0, 0.0}, 2},
      {"half_cheetah", {}, {}, 40},
      {"box_stack", {}, {}, 3},
  };
  std::vector<Case> cases;
  for (const Spec& s : specs) {
    Case c{s.asset, load_model(asset_path(s.asset)), {}, {}};
    Fixture f(c.model, GradMode::ift, Solver{0.0, -1});
    c.x.assign(f.nx(), 0.0);
    for (int i = 0; i < f.m.nq; ++i) c.x[i] = f.model.qpos0[i];
    if (!s.qpos.empty()) {
      std::copy(s.qpos.begin(), s.qpos.end(), c.x.begin());
      std::copy(s.qvel.begin(), s.qvel.end(), c.x.begin() + f.m.nq);
    } else if (f.model.nkey > 0) {
      std::copy(f.model.key_qpos.begin(), f.model.key_qpos.begin() + f.m.nq, c.x.begin());
      std::copy(f.model.key_qvel.begin(), f.model.key_qvel.begin() + f.m.nv, c.x.begin() + f.m.nq);
    }
    EXPECT_TRUE(settle_into_contact(f, &c.x, s.extra)) << s.asset;
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> unit(-0.5, 0.5);
    c.u.resize(f.m.nu);
    for (double& a : c.u) a = unit(rng);
    cases.push_back(std::move(c));
  }
  return cases;
}

// `count` random states of the drop model with rows: the box touching or pressed in, the arm
// near or past its limits
std::vector<Case> drop_cases(const std::string& cone, const std::string& integrator, int count) {
  const Model model = drop_model(cone, integrator);
  Fixture f(model, GradMode::ift, Solver{0.0, -1});
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> unit(-1, 1);
  std::vector<Case> cases;
  for (int trial = 0; trial < 200 && static_cast<int>(cases.size()) < count; ++trial) {
    std::vector<double> x(f.nx(), 0.0);
    for (int i = 0; i < f.m.nq; ++i) x[i] = f.model.qpos0[i];
    x[2] = 0.05 + 0.03 * unit(rng);
    x[f.m.nq - 1] += 0.8 * unit(rng);
    for (int i = 0; i < f.m.nv; ++i) x[f.m.nq + i] = 0.3 * unit(rng);
    std::vector<double> u = {unit(rng)};
    if (f.rows_at(x, u) == 0) continue;
    cases.push_back(Case{"drop " + cone + " " + integrator + " #" + std::to_string(trial), model, x, u});
  }
  EXPECT_EQ(static_cast<int>(cases.size()), count);
  return cases;
}

// a ball falling onto the floor under RK4 with its first stage just above the floor and its
// last in contact: a stage without rows, whose solve's start the next stage's solve warm-starts
// from, then warm-started stages
std::vector<Case> onset_cases() {
  const Model model = load_mjcf_string(R"(
<mujoco model="ball">
  <option timestep="0.01" integrator="RK4"/>
  <worldbody>
    <geom name="floor" type="plane" size="5 5 0.1"/>
    <body name="ball" pos="0 0 0.3">
      <freejoint/>
      <geom type="sphere" size="0.1" mass="1"/>
    </body>
  </worldbody>
</mujoco>)",
                                       "ball.xml");
  std::vector<Case> cases;
  for (double gap : {0.002, 0.004, 0.007}) {
    Fixture f(model, GradMode::ift, Solver{0.0, -1});
    std::vector<double> x(f.nx(), 0.0);
    for (int i = 0; i < f.m.nq; ++i) x[i] = f.model.qpos0[i];
    x[2] = 0.1 + gap;
    x[f.m.nq] = 0.7;       // sliding
    x[f.m.nq + 2] = -1.0;  // and falling
    const std::vector<double> u;
    EXPECT_GT(f.rows_at(x, u), 0);
    const Data<double> d = f.data();
    articulated_detail::load_state(f.m, d, x.data(), u.data());
    forward(f.m, d);
    EXPECT_EQ(d.nefc[0], 0.0) << "the first stage should have no rows";
    cases.push_back(Case{"ball RK4 onset " + std::to_string(gap), model, x, u});
  }
  return cases;
}

std::vector<Case> all_cases(int drops) {
  std::vector<Case> cases = asset_cases();
  for (const char* cone : {"pyramidal", "elliptic"}) {
    for (Case& c : drop_cases(cone, "Euler", drops)) cases.push_back(std::move(c));
  }
  for (Case& c : drop_cases("elliptic", "RK4", drops)) cases.push_back(std::move(c));
  for (Case& c : onset_cases()) cases.push_back(std::move(c));
  return cases;
}

const Solver kDefault{1e-8, -1};  // the models' tolerance
const Solver kTight{1e-10, -1};   // converged to about rounding, then stops
const Solver kToTheCap{0.0, -1};  // until the line search stalls, or the model's cap

// ---------------------------------------------------------------------------------------------

// dual numbers: values computed as the scalar code computes them, tangents the known derivatives
TEST(DualNumbers, ValuesAndKnownDerivatives) {
  using D = Dual<double, 2>;
  const double x = 0.7, y = -1.3;
  const D dx(x, Vec<double, 2>::unit(0)), dy(y, Vec<double, 2>::unit(1));
  // f = (x y + 2) / (x - y) - sqrt(x) |y| + 3 / x
  const D f = (dx * dy + 2.0) / (dx - dy) - sqrt_(dx) * abs_(dy) + 3.0 / dx;
  EXPECT_EQ(f.v, (x * y + 2.0) / (x - y) - std::sqrt(x) * std::abs(y) + 3.0 / x);
  const double fx =
      (y * (x - y) - (x * y + 2.0)) / ((x - y) * (x - y)) - 0.5 / std::sqrt(x) * std::abs(y) - 3.0 / (x * x);
  const double fy = (x * (x - y) + (x * y + 2.0)) / ((x - y) * (x - y)) + std::sqrt(x);
  EXPECT_NEAR(f.d[0], fx, 1e-14);
  EXPECT_NEAR(f.d[1], fy, 1e-14);
  // compound forms, comparisons on values, integers, zero tests
  D g = dx;
  g *= dy;
  g /= dx;
  g -= dy;
  EXPECT_EQ(g.v, x * y / x - y);
  EXPECT_NEAR(g.d[0], 0.0, 1e-15);
  EXPECT_NEAR(g.d[1], 0.0, 1e-15);
  EXPECT_TRUE(dy < dx && dx > 0.5 && 1.0 > dx && !(dx == D(x + 1.0)) && dx == x);
  EXPECT_EQ(static_cast<int>(D(3.0)), 3);
  EXPECT_TRUE(exact_zero(D(0.0)));
  EXPECT_FALSE(exact_zero(D(0.0, Vec<double, 2>::unit(1))));
  const D s0 = sqrt_(D(0.0, Vec<double, 2>::unit(0)));
  EXPECT_EQ(s0.d[0], 0.0) << "sqrt at 0: zero tangent, not infinity";
}

// the dual solve's values are the primal's, bit for bit, and the view fits the workspace
TEST(UnrolledSolve, DualValuesEqualThePrimal) {
  for (const Solver solver : {kDefault, kToTheCap, Solver{0.0, 2}}) {
    for (const Case& c : all_cases(3)) {
      SCOPED_TRACE(c.name + " tolerance " + std::to_string(solver.tolerance) + " iterations " +
                   std::to_string(solver.iterations));
      Fixture f(c.model, GradMode::unrolled, solver);
      const DataLayout layout = data_layout(f.m);
      ASSERT_EQ(layout.size - layout.sol_dual, unrolled_dual_entries(f.m.nv, f.m.ncon_max, f.m.nefc_max));
      for (int k : {1, 8}) {
        std::vector<double> A, B, y;
        f.jacobian(c.x, c.u, &A, &B, &y, k);
        EXPECT_EQ(y, f.next(c.x, c.u)) << "the primal of the derivative differs from step()";
        f.jacobian(c.x, c.u, &A, &B, &y, k);  // leaves the last stage's primal and duals
        const Data<double> d = f.data();
        const int nv = f.m.nv, nefc = static_cast<int>(d.nefc[0]);
        ASSERT_GT(nefc, 0);
        auto check = [&](const auto& u, const auto* end) {
          const auto& dd = u.d;
          EXPECT_LE(reinterpret_cast<const char*>(dd.sol_quad + 3 * f.m.nefc_max),
                    reinterpret_cast<const char*>(end))
              << "the dual numbers overrun sol_dual";
          int differ = 0;
          for (int i = 0; i < nv; ++i) {
            differ += !same_bits(dd.qacc[i].v, d.qacc[i]) + !same_bits(dd.qfrc_constraint[i].v, d.qfrc_constraint[i]);
          }
          for (int i = 0; i < nefc; ++i) {
            differ += !same_bits(dd.efc_force[i].v, d.efc_force[i]) + !same_bits(dd.efc_jar[i].v, d.efc_jar[i]) +
                      !same_bits(dd.efc_state[i].v, d.efc_state[i]);
          }
          differ += !same_bits(dd.solver_iter[0].v, d.solver_iter[0]) +
                    !same_bits(dd.solver_status[0].v, d.solver_status[0]);
          EXPECT_EQ(differ, 0) << "values of the dual solve differ from the primal's (K = " << k << ")";
        };
        if (k == 8) {
          const Data<Vec<double, 8>> t = data_at(layout, f.tws8.data());
          check(unrolled_dual_view(f.m, t.sol_dual), t.sol_dual + (layout.size - layout.sol_dual));
        } else {
          const Data<Vec<double, 1>> t = data_at(layout, f.tws1.data());
          check(unrolled_dual_view(f.m, t.sol_dual), t.sol_dual + (layout.size - layout.sol_dual));
        }
      }
    }
  }
}

// with a fixed number of iterations (or a tight solve) the step is smooth between branch
// switches, and the unrolled derivative is its derivative: against central differences (two
// step sizes agree)
TEST(UnrolledJacobian, MatchesCentralDifferencesWithFixedIterations) {
  for (const Solver solver : {Solver{0.0, 2}, Solver{0.0, 5}, kTight}) {
    int checked = 0, skipped = 0;
    double worst = 0, worst_ift = 0;
    for (const Case& c : all_cases(8)) {
      SCOPED_TRACE(c.name);
      Fixture f(c.model, GradMode::unrolled, solver);
      Fixture g(c.model, GradMode::ift, solver);
      std::vector<double> A, B, y, Ai, Bi, yi, Af, Bf, Af2, Bf2;
      f.jacobian(c.x, c.u, &A, &B, &y, 8);
      g.jacobian(c.x, c.u, &Ai, &Bi, &yi, 8);
      EXPECT_EQ(y, yi);
      f.fd(c.x, c.u, 1e-6, &Af, &Bf);
      f.fd(c.x, c.u, 5e-7, &Af2, &Bf2);
      const double fd_consistency = std::max(rel_error(Af2, Af), B.empty() ? 0.0 : rel_error(Bf2, Bf));
      if (fd_consistency > 1e-6) {
        ++skipped;  // a branch switches within the differences' reach
        continue;
      }
      const double e = std::max(rel_error(A, Af), B.empty() ? 0.0 : rel_error(B, Bf));
      const double ei = std::max(rel_error(Ai, Af), Bi.empty() ? 0.0 : rel_error(Bi, Bf));
      if (c.name.rfind("drop", 0) != 0 && c.name.rfind("ball", 0) != 0) {
        std::printf("tolerance %.0e, iterations %3d, %-14s rows %2d: unrolled vs FD %.2e, IFT vs FD %.2e (FD step "
                    "halving %.2e)\n",
                    solver.tolerance, f.m.iterations, c.name.c_str(), f.rows_at(c.x, c.u), e, ei, fd_consistency);
      }
      worst = std::max(worst, e);
      worst_ift = std::max(worst_ift, ei);
      EXPECT_LE(e, 1e-6);
      ++checked;
    }
    std::printf("tolerance %.0e, iterations %s: %d states checked, %d near a switch skipped; worst unrolled vs "
                "FD %.2e, IFT vs FD %.2e\n",
                solver.tolerance, solver.iterations < 0 ? "the model's" : std::to_string(solver.iterations).c_str(),
                checked, skipped, worst, worst_ift);
    EXPECT_GE(checked, 15);
  }
}

// a tight solve: unrolled and IFT agree; one or two iterations at a loose tolerance: they differ.
// Also printed (not checked): tolerance 0, where a solve that never stalls iterates at rounding
// level up to the cap and the unrolled derivative drifts from the IFT one
TEST(UnrolledJacobian, AgreesWithIftWhenConvergedAndDiffersWhenNot) {
  double worst_tight = 0, most_loose = 0, worst_to_cap = 0;
  for (const Case& c : all_cases(3)) {
    SCOPED_TRACE(c.name);
    std::vector<double> A, B, y, Ai, Bi, yi;
    {
      Fixture f(c.model, GradMode::unrolled, kTight), g(c.model, GradMode::ift, kTight);
      f.jacobian(c.x, c.u, &A, &B, &y, 8);
      g.jacobian(c.x, c.u, &Ai, &Bi, &yi, 8);
    }
    const double tight = std::max(rel_error(A, Ai), B.empty() ? 0.0 : rel_error(B, Bi));
    worst_tight = std::max(worst_tight, tight);
    EXPECT_LE(tight, 1e-6);
    std::printf("%-28s unrolled vs IFT: tight %.2e", c.name.c_str(), tight);
    {
      Fixture f(c.model, GradMode::unrolled, kToTheCap), g(c.model, GradMode::ift, kToTheCap);
      f.jacobian(c.x, c.u, &A, &B, &y, 8);
      g.jacobian(c.x, c.u, &Ai, &Bi, &yi, 8);
      const double to_cap = std::max(rel_error(A, Ai), B.empty() ? 0.0 : rel_error(B, Bi));
      worst_to_cap = std::max(worst_to_cap, to_cap);
      std::printf(", tolerance 0 %.2e (%d iterations)", to_cap, static_cast<int>(f.data().solver_iter[0]));
    }
    for (int iterations : {1, 2}) {
      Fixture f(c.model, GradMode::unrolled, Solver{1e-3, iterations});
      Fixture g(c.model, GradMode::ift, Solver{1e-3, iterations});
      f.jacobian(c.x, c.u, &A, &B, &y, 8);
      g.jacobian(c.x, c.u, &Ai, &Bi, &yi, 8);
      const double loose = std::max(rel_error(A, Ai), B.empty() ? 0.0 : rel_error(B, Bi));
      most_loose = std::max(most_loose, loose);
      std::printf(", %d iteration%s %.2e", iterations, iterations > 1 ? "s" : "", loose);
    }
    std::printf("\n");
  }
  std::printf("unrolled vs IFT: tight solves at most %.2e, tolerance 0 up to %.2e, 1-2 loose iterations up to "
              "%.2e\n",
              worst_tight, worst_to_cap, most_loose);
  EXPECT_GE(most_loose, 1e-4) << "one or two iterations should leave the solve measurably unconverged";
}

// K = 1 and K = 8 directions per sweep: the same Jacobian
TEST(UnrolledJacobian, OneAndEightDirectionsAgree) {
  for (const Case& c : all_cases(3)) {
    SCOPED_TRACE(c.name);
    Fixture f(c.model, GradMode::unrolled, kDefault);
    std::vector<double> A, B, y, A1, B1, y1;
    f.jacobian(c.x, c.u, &A, &B, &y, 8);
    f.jacobian(c.x, c.u, &A1, &B1, &y1, 1);
    EXPECT_EQ(y1, y);
    EXPECT_LE(rel_error(A1, A), 1e-13);
    if (!B.empty()) {
      EXPECT_LE(rel_error(B1, B), 1e-13);
    }
  }
}

}  // namespace
}  // namespace phydream
