#!/usr/bin/env bash
# Installs PhyDream's build and test dependencies from Debian's packages, only those missing.
# Nothing is vendored and nothing is downloaded at configure time: this script is the one place
# the project fetches anything.
#
#   scripts/install_deps.sh            # build + test dependencies
#   scripts/install_deps.sh --plots    # also python3-matplotlib/numpy for the plotting scripts
#   scripts/install_deps.sh --fuzz     # also Clang, libFuzzer and LLVM's OpenMP (scripts/fuzz.sh)
set -euo pipefail

packages=(
  build-essential cmake          # C++17 compiler, CMake >= 3.25
  ninja-build                    # the build tool scripts/build.sh configures (parallel across targets)
  libgtest-dev libgmock-dev      # GoogleTest (static libraries)
  nlohmann-json3-dev             # JSON output, configs
  libcli11-dev                   # command-line parsing
  libeigen3-dev                  # host-side linear algebra (references, loaders)
  libtinyxml2-dev                # the MJCF importer
  libmujoco-dev                  # peer and oracle in tests and benchmarks
)
case "${1:-}" in
  "") ;;
  --plots) packages+=(python3-matplotlib python3-numpy) ;;
  --fuzz) packages+=(clang libclang-rt-dev libomp-dev) ;;
  *) echo "install_deps: unknown argument '$1' (expected --plots or --fuzz)" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "install_deps: installing ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "install_deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
