"""Where the script tests find the simulator: the package's one rule ($SWPU_SIM, else
<repo>/build/swpu-sim, swpu.simulator.find_simulator)."""
import os
import sys

import pytest

SCRIPTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, SCRIPTS)
from swpu.simulator import REPO_ROOT as REPO, find_simulator, simulator_exists  # noqa: E402

SIM = find_simulator()

needs_sim = pytest.mark.skipif(
    not simulator_exists(SIM),
    reason="swpu-sim is not built at %s: build it with scripts/build.sh or set SWPU_SIM" % SIM)

__all__ = ["REPO", "SCRIPTS", "SIM", "needs_sim"]
