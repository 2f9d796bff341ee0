// `phydream inspect MODEL`: loads an articulated model (MJCF .xml or JSON .json) and prints what
// PhyDream made of it: sizes, options, bodies, joints, dofs, actuators, geoms, sites and
// keyframes, as text or (--json) one JSON object. A model that does not load is an InputError
// (exit status 2) and nothing is printed on stdout.
#pragma once

#include <string>

namespace phydream::cli {

struct InspectArgs {
  std::string model;  // path, .xml or .json
  bool json = false;
};

int run_inspect(const InspectArgs& args);

}  // namespace phydream::cli
