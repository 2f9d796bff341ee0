// The MJCF importer: MuJoCo's XML model format, the subset PhyDream simulates.
//
// Read with tinyxml2 into a ModelSpec and compiled by engine/model_compile.h exactly as MuJoCo
// 2.2.2 compiles it (tests compare every Model field with mj_loadXML's mjModel, bit for bit). Everything outside
// the subset is an InputError naming the file, line, element and attribute; nothing is silently
// dropped except the purely visual or memory-sizing parts listed below.
//
// Supported (semantics: MuJoCo's XML reference, version 2.2.2):
//   <mujoco model>
//   <compiler angle="degree|radian" coordinate="local" inertiafromgeom="true|false|auto"
//             settotalmass eulerseq autolimits boundmass boundinertia inertiagrouprange>
//   <option timestep gravity integrator="Euler|RK4" cone="pyramidal|elliptic" iterations
//           tolerance> with <flag NAME="enable|disable"/>: the disable flags constraint, equality,
//           frictionloss, limit, contact, passive, gravity, clampctrl, warmstart, filterparent,
//           actuation, refsafe, sensor (bits of Model::opt_disableflags); the enable flags
//           override, energy, fwdinv, sensornoise, multiccd only as "disable"
//   <default class> (nested; the top one is "main") holding <joint>, <geom>, <site>, <motor>
//   <worldbody> with <body>, <geom>, <site>
//   <body name childclass pos quat|axisangle|euler|xyaxes|zaxis> with <inertial>, <joint>,
//         <freejoint>, <geom>, <site>, <body>
//   <inertial pos mass diaginertia|fullinertia quat|axisangle|euler|xyaxes|zaxis>
//   <joint name class type="hinge|slide|ball|free" pos axis range limited="true|false|auto" ref
//          springref stiffness damping armature frictionloss margin solreflimit solimplimit>
//   <freejoint name>
//   <geom name class type="plane|sphere|capsule|ellipsoid|cylinder|box" size pos
//         quat|axisangle|euler|xyaxes|zaxis fromto mass density friction condim contype
//         conaffinity solref solimp margin group>
//   <site name class type size pos quat|axisangle|euler|xyaxes|zaxis fromto>
//   <actuator> with <motor name class joint gear ctrlrange ctrllimited="true|false|auto">
//   <keyframe> with <key name time qpos qvel ctrl>
// Angles (euler, axisangle, hinge and ball range, hinge ref and springref) are in degrees unless
// compiler angle="radian", as in MuJoCo.
//
// Accepted and ignored because they only affect rendering, the user interface or memory sizes:
//   elements <visual>, <statistic>, <size> (its allocation sizes), <asset> holding only
//   <texture> and <material>, <light> and <camera> (in bodies and in <default>), <material> in
//   <default>; attributes rgba and material (geom, site), group (joint, freejoint, site, motor;
//   a geom's group is used: it selects geoms for inertia with compiler inertiagrouprange).
#pragma once

#include <string>

#include "engine/model.h"
#include "engine/model_compile.h"

namespace phydream {

/// Loads an MJCF file. Throws InputError "PATH:LINE: <element>: ..." on anything malformed or
/// outside the subset.
Model load_mjcf(const std::string& path);

/// The same from XML text; `source` names it in messages and Model::source.
Model load_mjcf_string(const std::string& xml, const std::string& source = "<string>");

/// The parsed tree before compilation (for tests and tools).
ModelSpec parse_mjcf_string(const std::string& xml, const std::string& source = "<string>");

}  // namespace phydream
