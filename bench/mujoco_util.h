// MuJoCo as the benchmarks' peer: owners of a loaded mjModel and of an mjData. Included only
// where PHYDREAM_WITH_MUJOCO is defined (MuJoCo found at configure time).
#pragma once

#include <mujoco/mujoco.h>

#include <string>

#include "engine/errors.h"

namespace phydream::bench {

/// mj_loadXML(path); throws InputError with MuJoCo's message when it cannot load the file.
struct MjModel {
  mjModel* m = nullptr;
  explicit MjModel(const std::string& path) {
    char error[1000] = "";
    m = mj_loadXML(path.c_str(), nullptr, error, sizeof error);
    if (m == nullptr) throw phydream::InputError("MuJoCo cannot load '" + path + "': " + error);
  }
  MjModel(const MjModel&) = delete;
  MjModel& operator=(const MjModel&) = delete;
  ~MjModel() { mj_deleteModel(m); }
};

/// mj_makeData(m).
struct MjData {
  mjData* d = nullptr;
  explicit MjData(const mjModel* m) : d(mj_makeData(m)) {}
  MjData(const MjData&) = delete;
  MjData& operator=(const MjData&) = delete;
  ~MjData() { mj_deleteData(d); }
};

}  // namespace phydream::bench
