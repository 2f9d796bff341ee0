// Steps a batch of double pendulums and checks one Jacobian entry, through the installed API.
#include <phydream/phydream.h>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  phydream::SimulatorOptions options;
  options.env = "double_pendulum";
  options.backend = phydream::Backend::cpu;
  phydream::Simulator<double> sim(options);
  const std::int64_t batch = 3;
  std::vector<double> x(batch * 4, 0.1), u(batch * 2, 0.0), xn(batch * 4);
  std::vector<double> jx(batch * 16), ju(batch * 8);
  sim.jacobian(batch, x.data(), u.data(), xn.data(), jx.data(), ju.data());
  // d theta1' / d omega1 = dt for explicit Euler
  const bool ok = std::abs(jx[2] - 0.1) < 1e-15 && std::abs(ju[2 * 2 + 0] - 1.0 * 0.1) < 1e-15;
  std::printf("consumer: x' = [%g, %g, %g, %g], %s\n", xn[0], xn[1], xn[2], xn[3],
              ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
