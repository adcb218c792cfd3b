"""Where the script tests find the simulator: $SWPU_SIM, else <repo>/build/swpu-sim."""
import os

import pytest

SCRIPTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(SCRIPTS)
SIM = os.path.abspath(os.environ.get("SWPU_SIM") or os.path.join(REPO, "build", "swpu-sim"))

needs_sim = pytest.mark.skipif(
    not (os.path.isfile(SIM) and os.access(SIM, os.X_OK)),
    reason="swpu-sim is not built at %s: build it with `cmake -S %s -B %s/build "
           "-DCMAKE_BUILD_TYPE=Release && cmake --build %s/build --target swpu-sim` or set "
           "SWPU_SIM" % (SIM, REPO, REPO, REPO))
