"""Every trace shipped under configs/traces/ passes the format check and replays in the simulator
(`$SWPU_SIM --trace DIR --engine fast`); ctest sets SWPU_SIM to the binary it built."""

import json
import os
import subprocess
import sys

import pytest

SCRIPTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(SCRIPTS)
sys.path.insert(0, SCRIPTS)
from swpu import trace_format  # noqa: E402

TRACES = sorted(os.path.join(REPO, "configs", "traces", d)
                for d in os.listdir(os.path.join(REPO, "configs", "traces"))
                if os.path.isfile(os.path.join(REPO, "configs", "traces", d, "manifest.json")))


def test_the_fashion_mnist_trace_is_shipped():
    names = [os.path.basename(t) for t in TRACES]
    assert "resnet18-fmnist-substructured" in names
    m = trace_format.load_manifest(os.path.join(REPO, "configs", "traces",
                                                "resnet18-fmnist-substructured"))
    assert m["source"]["dataset"] == "fashion-mnist"
    assert m["network"]["input"] == [3, 28, 28]
    # two consecutive mask updates (the synthetic fit reads how masks change) and a later step
    its = m["iterations"]
    assert len(its) >= 3 and its[0]["mask_update"] and its[1]["mask_update"]


@pytest.mark.parametrize("trace", TRACES, ids=os.path.basename)
def test_bundled_trace_is_valid(trace):
    assert trace_format.check_trace(trace) == []


@pytest.mark.parametrize("trace", TRACES, ids=os.path.basename)
def test_bundled_trace_replays(trace, tmp_path):
    sim = os.environ.get("SWPU_SIM")
    if not sim:
        pytest.skip("SWPU_SIM is not set: set it to the swpu-sim binary to replay the traces")
    out = tmp_path / "out"
    cmd = [sim, "--config", os.path.join(REPO, "configs", "swpu.json"), "--trace", trace,
           "--engine", "fast", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=REPO,
                       env=dict(os.environ, SC_COPYRIGHT_MESSAGE="DISABLE"))
    assert r.returncode == 0, " ".join(cmd) + "\n" + r.stdout + r.stderr
    report = json.loads((out / "report.json").read_text())
    n_iter = len(trace_format.load_manifest(trace)["iterations"])
    assert len({int(e["iteration"]) for e in report["layers"]}) == n_iter
