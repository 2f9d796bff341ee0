// Small MJCF models written for the dynamics tests: every joint type, multiple joints on one
// body, joint offsets and tilted axes, damping, armature, stiffness about springref, ref,
// gears and control ranges. Contacts, limits and friction loss are present where the assets
// have them, and disabled by option flags, as the contact-free engine requires.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace phydream::testing {

struct TestMjcf {
  const char* name;
  const char* xml;
};
// gtest prints a parameter with its name
inline void PrintTo(const TestMjcf& t, std::ostream* os) { *os << t.name; }

// a tilted four-link hinge chain: damping, armature, stiffness about springref, ref, offsets
inline const char* kHingeChainXml = R"(
<mujoco model="hinge_chain">
  <compiler angle="radian"/>
  <option timestep="0.005">
    <flag contact="disable" limit="disable" frictionloss="disable"/>
  </option>
  <worldbody>
    <body name="l1" pos="0 0 1" quat="0.9 0.1 -0.2 0.3">
      <joint name="j1" type="hinge" axis="0 1 0" pos="0 0 0.05" damping="0.2" armature="0.05"
             stiffness="1.5" springref="0.3" ref="0.1" limited="true" range="-1 1" frictionloss="0.1"/>
      <geom type="capsule" fromto="0 0 0 0.4 0 0" size="0.05"/>
      <body name="l2" pos="0.4 0 0" euler="0.2 0.1 -0.3">
        <joint name="j2" type="hinge" axis="0.3 1 0.2" pos="0.02 0 0" damping="0.1" armature="0.02"/>
        <geom type="capsule" fromto="0 0 0 0.35 0.05 0" size="0.04"/>
        <body name="l3" pos="0.35 0.05 0">
          <joint name="j3" type="hinge" axis="1 0 1" stiffness="0.7" ref="-0.2"/>
          <geom type="box" size="0.15 0.03 0.02" pos="0.15 0 0" euler="0 0.3 0"/>
          <body name="l4" pos="0.3 0 0">
            <joint name="j4" type="hinge" axis="0 0 1" damping="0.05"/>
            <geom type="sphere" size="0.07" pos="0.1 0.02 0"/>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor joint="j1" gear="2" ctrllimited="true" ctrlrange="-1 1"/>
    <motor joint="j3" gear="-0.5"/>
    <motor joint="j4" gear="1.5" ctrllimited="true" ctrlrange="-0.5 0.8"/>
  </actuator>
</mujoco>)";

// a cart on a slide with a pole on a hinge (the cartpole's structure)
inline const char* kSlideHingeXml = R"(
<mujoco model="slide_hinge">
  <option timestep="0.01">
    <flag contact="disable" limit="disable" frictionloss="disable"/>
  </option>
  <worldbody>
    <geom type="plane" size="5 5 0.1"/>
    <body name="cart" pos="0 0 0.5">
      <joint name="slider" type="slide" axis="1 0 0" damping="0.5" armature="0.1" limited="true" range="-2 2"/>
      <geom type="box" size="0.2 0.1 0.05" mass="1"/>
      <body name="pole" pos="0 0 0.05">
        <joint name="hinge" type="hinge" axis="0 1 0" damping="0.05" stiffness="0.2"/>
        <geom type="capsule" fromto="0 0 0 0 0 0.6" size="0.04" mass="0.2"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor joint="slider" gear="10" ctrllimited="true" ctrlrange="-1 1"/>
  </actuator>
</mujoco>)";

// a planar half-cheetah-like tree: three root joints on the torso, two three-link legs
inline const char* kPlanarTreeXml = R"(
<mujoco model="planar_tree">
  <compiler angle="degree"/>
  <default>
    <joint limited="true" damping="6" stiffness="8" armature="0.1" frictionloss="0.2"/>
    <geom type="capsule" size="0.046" contype="1" conaffinity="1"/>
  </default>
  <option timestep="0.01">
    <flag contact="disable" limit="disable" frictionloss="disable"/>
  </option>
  <worldbody>
    <geom name="floor" type="plane" size="40 40 40"/>
    <body name="torso" pos="0 0 0.7">
      <joint name="rootx" type="slide" axis="1 0 0" limited="false" damping="0" stiffness="0" armature="0"/>
      <joint name="rootz" type="slide" axis="0 0 1" limited="false" damping="0" stiffness="0" armature="0"/>
      <joint name="rooty" type="hinge" axis="0 1 0" limited="false" damping="0" stiffness="0" armature="0"/>
      <geom name="torso" fromto="-0.5 0 0 0.5 0 0"/>
      <geom name="head" pos="0.6 0 0.1" axisangle="0 1 0 87" size="0.046 0.15"/>
      <body name="bthigh" pos="-0.5 0 0">
        <joint name="bthigh" type="hinge" axis="0 1 0" range="-30 60" stiffness="240" damping="6"/>
        <geom pos="0.1 0 -0.13" axisangle="0 1 0 -218" size="0.046 0.145"/>
        <body name="bshin" pos="0.16 0 -0.25">
          <joint name="bshin" type="hinge" axis="0 1 0" range="-45 45" stiffness="180" damping="4.5"/>
          <geom pos="-0.14 0 -0.07" axisangle="0 1 0 -116" size="0.046 0.15"/>
          <body name="bfoot" pos="-0.28 0 -0.14">
            <joint name="bfoot" type="hinge" axis="0 1 0" range="-45 45" stiffness="120" damping="3"/>
            <geom pos="0.03 0 -0.097" axisangle="0 1 0 -15" size="0.046 0.094"/>
          </body>
        </body>
      </body>
      <body name="fthigh" pos="0.5 0 0">
        <joint name="fthigh" type="hinge" axis="0 1 0" range="-57 40" stiffness="180" damping="4.5"/>
        <geom pos="-0.07 0 -0.12" axisangle="0 1 0 30" size="0.046 0.133"/>
        <body name="fshin" pos="-0.14 0 -0.24">
          <joint name="fshin" type="hinge" axis="0 1 0" range="-70 50" stiffness="120" damping="3"/>
          <geom pos="0.065 0 -0.09" axisangle="0 1 0 -34" size="0.046 0.106"/>
          <body name="ffoot" pos="0.13 0 -0.18">
            <joint name="ffoot" type="hinge" axis="0 1 0" range="-28 28" stiffness="60" damping="1.5"/>
            <geom pos="0.045 0 -0.07" axisangle="0 1 0 -34" size="0.046 0.07"/>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor gear="120" joint="bthigh" ctrllimited="true" ctrlrange="-1 1"/>
    <motor gear="90" joint="bshin" ctrllimited="true" ctrlrange="-1 1"/>
    <motor gear="60" joint="bfoot" ctrllimited="true" ctrlrange="-1 1"/>
    <motor gear="120" joint="fthigh" ctrllimited="true" ctrlrange="-1 1"/>
    <motor gear="60" joint="fshin" ctrllimited="true" ctrlrange="-1 1"/>
    <motor gear="30" joint="ffoot" ctrllimited="true" ctrlrange="-1 1"/>
  </actuator>
</mujoco>)";

// a ball-joint pendulum with a hinge below it: quaternion coordinates, spring about a tilted rest
inline const char* kBallPendulumXml = R"(
<mujoco model="ball_pendulum">
  <option timestep="0.005">
    <flag contact="disable" limit="disable" frictionloss="disable"/>
  </option>
  <worldbody>
    <body name="upper" pos="0 0 2" quat="0.95 0.1 0.2 0.1">
      <joint name="ball" type="ball" pos="0 0 0.1" damping="0.3" stiffness="2" armature="0.01"/>
      <geom type="capsule" fromto="0 0 0 0.1 0.05 -0.6" size="0.05"/>
      <body name="lower" pos="0.1 0.05 -0.6">
        <joint name="elbow" type="hinge" axis="1 0.2 0" damping="0.1"/>
        <geom type="box" size="0.05 0.04 0.2" pos="0 0 -0.2"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor joint="elbow" gear="3" ctrllimited="true" ctrlrange="-1 1"/>
  </actuator>
</mujoco>)";

// a free-floating body with a hinged flap and a ball-jointed tail: 6 + 1 + 3 dofs, nq = 12
inline const char* kFreeBodyXml = R"(
<mujoco model="free_body">
  <option timestep="0.005" gravity="0 0 -9.81">
    <flag contact="disable" limit="disable" frictionloss="disable"/>
  </option>
  <worldbody>
    <body name="base" pos="0.1 -0.2 1.5" euler="0.3 -0.2 0.5">
      <freejoint name="root"/>
      <geom type="box" size="0.2 0.15 0.1"/>
      <body name="flap" pos="0.25 0 0">
        <joint name="flap" type="hinge" axis="0 1 0.3" pos="-0.02 0 0" damping="0.2" stiffness="1"/>
        <geom type="box" size="0.15 0.1 0.01" pos="0.15 0 0"/>
      </body>
      <body name="tail" pos="-0.25 0 0.05">
        <joint name="tail" type="ball" damping="0.05" stiffness="0.5"/>
        <geom type="capsule" fromto="0 0 0 -0.3 0.05 0.1" size="0.03"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor joint="flap" gear="0.5"/>
  </actuator>
</mujoco>)";

inline std::vector<TestMjcf> test_mjcf_models() {
  return {{"hinge_chain", kHingeChainXml},
          {"slide_hinge", kSlideHingeXml},
          {"planar_tree", kPlanarTreeXml},
          {"ball_pendulum", kBallPendulumXml},
          {"free_body", kFreeBodyXml}};
}

}  // namespace phydream::testing
