#!/usr/bin/env bash
# Installs the Debian 12 packages Tessera needs (only those missing, so a second run is quick)
# and configures + builds it in ./build (Release). Run as root on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")"

packages=(
  g++ cmake make pkg-config
  libopenblas-dev libopenblas0-openmp  # GEMM; the OpenMP build shares our thread pool
  libhdf5-dev                          # datasets and checkpoints
  libfmt-dev libyaml-cpp-dev           # text and recipes
  libboost-test-dev                    # unit tests
  libpng-dev libjpeg62-turbo-dev       # image-folder importer and PNG grids
  libopenmpi-dev openmpi-bin           # data-parallel training (mpirun -np N tessera train)
  dataset-fashion-mnist                # the default data set
  python3 python3-numpy python3-h5py   # tests check that h5py-written files load unchanged
  python3-torch                        # tests: layers agree with PyTorch (reference only)
  python3-torchvision python3-venv     # tests: exports load into timm and open_clip (tests/interop)
  clang libclang-rt-14-dev libomp-14-dev  # tests/sanitize.sh: ASan/UBSan/TSan, libFuzzer, OpenMP + Archer
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

mkdir -p build
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > build/configure.log 2>&1 || { cat build/configure.log; exit 1; }
cmake --build build -j "$(nproc)" 2>&1 | tail -n 3

# Test-only: timm, open_clip and safetensors from PyPI, over Debian's torch, in build/interop-venv,
# so that a test can load `tessera export` output the way a PyTorch user does. Made once (again
# when tests/interop/requirements.txt changes); never on Tessera's run path.
venv=build/interop-venv
if ! cmp -s tests/interop/requirements.txt "$venv/requirements.txt" 2>/dev/null; then
  rm -rf "$venv"
  if /usr/bin/python3 -m venv --system-site-packages "$venv" &&
     "$venv/bin/pip" install -q --disable-pip-version-check --no-deps -r tests/interop/requirements.txt; then
    cp tests/interop/requirements.txt "$venv/requirements.txt"
  else
    echo "setup: could not make the test venv $venv from PyPI; the interop test will fail under CI and be skipped elsewhere"
  fi
fi
