// Shared by the contact derivative tests (contact_derivative_test.cpp, contact_unrolled_test.cpp):
// a fixture that steps and differentiates one articulated model with the engine's per-environment
// functions (engine/articulated_ops.h) in a chosen gradient mode and solver setting, the contact
// states it settles into, the relative error the tests compare with, and the "drop" model (a box
// dropped on the floor and a limited arm with friction loss).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/articulated_jacobian.h"
#include "engine/articulated_ops.h"
#include "engine/data.h"
#include "engine/mjcf.h"
#include "engine/model_json.h"
#include "engine/model_view.h"

namespace phydream {
namespace contact_test {

std::string asset_path(const std::string& name) {
  return std::string(PHYDREAM_SOURCE_DIR) + "/assets/" + name + ".xml";
}

// the solver's settings of a fixture: tolerance and iteration cap (-1: the model's)
struct Solver {
  double tolerance;
  int iterations;
};

struct Fixture {
  Model model;
  std::unique_ptr<ModelArrays<double>> arrays;
  ModelView<double> m{};
  std::vector<double> ws;
  std::vector<Vec<double, 8>> tws8;
  std::vector<Vec<double, 1>> tws1;

  Fixture(Model mdl, GradMode mode, Solver solver) : model(std::move(mdl)) {
    model.opt_tolerance = solver.tolerance;
    if (solver.iterations >= 0) model.opt_iterations = solver.iterations;
    arrays = std::make_unique<ModelArrays<double>>(model);
    arrays->set_grad_mode(mode);
    m = arrays->view();
    const ArticulatedWorkspaceSizes sz = articulated_workspace_sizes(m);
    // NaN: a read of a slot the functions did not write first shows up
    const double nan = std::numeric_limits<double>::quiet_NaN();
    ws.assign(sz.scalars, nan);
    Vec<double, 8> nan8;
    for (double& e : nan8.v) e = nan;
    tws8.assign(sz.tangents, nan8);
    tws1.assign(sz.tangents * 8, Vec<double, 1>{{nan}});
  }
  // the IFT mode with the solver run to machine precision (tolerance 0: it stops when the line
  // search stalls), so that finite differences of the solution are meaningful
  explicit Fixture(Model mdl) : Fixture(std::move(mdl), GradMode::ift, Solver{0.0, -1}) {}
  int nx() const { return m.nq + m.nv; }
  int ndx() const { return 2 * m.nv; }
  Data<double> data() { return data_at(data_layout(m), ws.data()); }

  std::vector<double> next(const std::vector<double>& x, const std::vector<double>& u) {
    std::vector<double> y(nx());
    articulated_step(m, ws.data(), x.data(), u.data(), y.data());
    return y;
  }
  int rows_at(const std::vector<double>& x, const std::vector<double>& u) {
    next(x, u);
    return static_cast<int>(data().nefc[0]);
  }
  // A (ndx x ndx), B (ndx x nu) and the next state (nx), zeroed
  void size_outputs(std::vector<double>* A, std::vector<double>* B, std::vector<double>* y) const {
    A->assign(ndx() * ndx(), 0.0);
    B->assign(ndx() * m.nu, 0.0);
    y->assign(nx(), 0.0);
  }
  // A, B and the next state by forward sweeps of K directions (the model's grad_mode)
  void jacobian(const std::vector<double>& x, const std::vector<double>& u, std::vector<double>* A,
                std::vector<double>* B, std::vector<double>* y, int k) {
    size_outputs(A, B, y);
    if (k == 8) {
      step_jacobian_jvp<double, 8>(m, ws.data(), tws8.data(), x.data(), u.data(), y->data(), A->data(), B->data());
    } else {
      step_jacobian_jvp<double, 1>(m, ws.data(), tws1.data(), x.data(), u.data(), y->data(), A->data(), B->data());
    }
  }
  // the same Jacobians by reverse sweeps of 8 cotangents
  void rev(const std::vector<double>& x, const std::vector<double>& u, std::vector<double>* A,
           std::vector<double>* B, std::vector<double>* y) {
    size_outputs(A, B, y);
    step_jacobian_vjp<double, 8>(m, ws.data(), tws8.data(), x.data(), u.data(), y->data(), A->data(), B->data());
  }
  // the same Jacobians in closed form (step_jacobian: the IFT's partials by reverse sweeps of 8
  // unit cotangents and one-lane ones)
  void analytic(const std::vector<double>& x, const std::vector<double>& u, std::vector<double>* A,
                std::vector<double>* B, std::vector<double>* y) {
    size_outputs(A, B, y);
    step_jacobian<double, 8>(m, ws.data(), tws8.data(), x.data(), u.data(), y->data(), A->data(), B->data());
  }
  void fd(const std::vector<double>& x, const std::vector<double>& u, double eps, std::vector<double>* A,
          std::vector<double>* B) {
    A->assign(ndx() * ndx(), 0.0);
    B->assign(ndx() * m.nu, 0.0);
    articulated_jacobian_fd(m, ws.data(), x.data(), u.data(), eps, A->data(), B->data());
  }
};

double rel_error(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::abs(a[i] - b[i]));
    den = std::max(den, std::abs(b[i]));
  }
  return num / std::max(den, 1e-300);
}

// runs the model from x under zero control until it has rows, then `extra` steps
bool settle_into_contact(Fixture& f, std::vector<double>* x, int extra) {
  std::vector<double> u(f.m.nu, 0.0);
  for (int t = 0; t < 3000; ++t) {
    if (f.rows_at(*x, u) > 0) {
      for (int k = 0; k < extra; ++k) *x = f.next(*x, u);
      return f.rows_at(*x, u) > 0;
    }
    *x = f.next(*x, u);
  }
  return false;
}

// a box dropped on the floor and an arm against its joint limit, with friction loss
Model drop_model(const std::string& cone, const std::string& integrator) {
  const std::string xml = R"(
<mujoco model="drop">
  <option timestep="0.002" cone=")" + cone + R"(" integrator=")" + integrator + R"("/>
  <default>
    <geom contype="2" conaffinity="1"/>
  </default>
  <worldbody>
    <geom name="floor" type="plane" size="5 5 0.1" friction="0.8 0.01 0.001" contype="1" conaffinity="2"/>
    <body name="box" pos="0 0 0.12" euler="10 20 30">
      <freejoint/>
      <geom type="box" size="0.1 0.08 0.05" density="500"/>
    </body>
    <body name="arm" pos="0.5 0 0.3">
      <joint name="shoulder" type="hinge" axis="0 1 0" limited="true" range="-30 45"
             frictionloss="0.05" damping="0.1"/>
      <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.04"/>
    </body>
  </worldbody>
  <actuator>
    <motor joint="shoulder" gear="2" ctrllimited="true" ctrlrange="-1 1"/>
  </actuator>
</mujoco>)";
  return load_mjcf_string(xml, "drop.xml");
}

}  // namespace contact_test
}  // namespace phydream
