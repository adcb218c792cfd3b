#!/usr/bin/env bash
# Cross-validates the fast engine against the cycle engine on the whole random corpus (300 points)
# and writes the result table that docs/architecture.md quotes:
#   docs/data/crossval.md (summary and every point beyond 1%), docs/data/crossval.csv (every point).
# Usage: scripts/cross_validate.sh [POINTS] [SEED]   (builds first if needed)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export SC_COPYRIGHT_MESSAGE=DISABLE
POINTS="${1:-300}"
SEED="${2:-1}"
[ -x build/swpu-crossval ] || bash scripts/build.sh
mkdir -p docs/data
build/swpu-crossval --points "$POINTS" --seed "$SEED" --bound 5 \
    --markdown docs/data/crossval.md --csv docs/data/crossval.csv
