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
