#!/usr/bin/env bash
# The main job: builds PhyDream, then trains an MLP model of the seed's double pendulum with
# MSE only, JAL only, and MSE + JAL over several seeds, evaluates every model against the
# simulator, and prints the comparison (on the GPU when one is visible, a larger experiment).
# Arguments go to `phydream experiment` (e.g. --steps 500 --seeds 2).
set -euo pipefail
cd "$(dirname "$0")/.."
PHYDREAM_TARGETS=phydream_cli scripts/build.sh >&2
if build/phydream info | grep -q "^--backend auto: *cuda"; then
  config=assets/experiments/double_pendulum.json
else
  config=assets/experiments/double_pendulum_quick.json
fi
out="runs/$(basename "$config" .json)-$(date +%Y%m%d-%H%M%S)"
build/phydream experiment --config "$config" --out "$out" "$@"
# the figures, when Debian's matplotlib is there (scripts/install_deps.sh --plots)
if /usr/bin/python3 -c "import matplotlib" >/dev/null 2>&1; then
  /usr/bin/python3 scripts/plot_results.py "$out"
else
  echo "(for the figures: scripts/install_deps.sh --plots, then /usr/bin/python3 scripts/plot_results.py $out)"
fi
