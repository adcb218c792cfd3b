#!/usr/bin/env bash
# Installs the Debian packages swpu-sim needs: the C++ toolchain and libraries, and (for the Python
# trace tools, run with /usr/bin/python3) numpy, matplotlib, pandas, pytest, torch, torchvision,
# scikit-learn, Dask's distributed scheduler (sweeps on a cluster) and the Fashion-MNIST data set
# (IDX files under /usr/share/datasets/fashion-mnist/, for the trace generator and
# scripts/pruning_ratio.py). Idempotent: packages
# already installed are left alone, and `apt-get update` and `apt-get install` run only when
# something is missing. Works as root, or through sudo otherwise.
set -euo pipefail

PACKAGES=(
    build-essential cmake pkg-config
    libsystemc-dev libeigen3-dev libcli11-dev nlohmann-json3-dev libgtest-dev
    python3-numpy python3-matplotlib python3-pandas python3-pytest
    python3-torch python3-torchvision python3-sklearn python3-distributed
    dataset-fashion-mnist
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed$'; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install_deps: all ${#PACKAGES[@]} packages are installed"
    exit 0
fi

echo "install_deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "install_deps: not root and sudo is not available; install as root: apt-get install ${missing[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
