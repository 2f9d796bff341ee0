#!/usr/bin/env bash
# The main job: builds PhyDream, then simulates a large batch of the seed's double pendulum,
# reports the throughput of steps and Jacobians, and self-checks the derivatives
# (on the GPU when one is visible, else on the CPU). Arguments go to `phydream demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >&2
exec build/phydream demo "$@"
