"""Tests of scripts/reconstruction_space.py and scripts/swpu/space.py.

    /usr/bin/python3 -m pytest scripts/tests/test_space.py

The planning tests need no simulator. The quick run (`--quick` on three parameters, about 20
simulator runs of width 0.25) checks the direction of each effect across the swept points, so a
model change that reverses one fails here; it is skipped when the simulator is not built.
"""

import json
import math
import os
import subprocess
import sys

import pytest

from simulator import SCRIPTS, SIM, needs_sim  # noqa: E402,F401
SPACE = os.path.join(SCRIPTS, "reconstruction_space.py")
sys.path.insert(0, SCRIPTS)
from swpu import baselines as bl, space  # noqa: E402

QUICK_PARAMS = ["workload.weight_sparsity", "dram.bandwidth_gbps", "compaction.segments"]


# ----------------------------------------------------------------------------- no simulator

def test_every_machine_of_claims_3_to_5_is_swept():
    ms = space.machines()
    assert ms[0] == "swpu"
    for cid in ("3", "4", "5"):
        assert set(bl.baselines_of(cid)) <= set(ms)


def test_swpu_only_parameters_reuse_the_baselines_base_point():
    p = space.Param("compaction.window", [32, 64], "swpu")
    runs, where, _ = space.plan([p], False)
    assert set(runs["swpu"]) == {"", "compaction.window=32"}  # 64 is swpu.json's own value
    assert where[("swpu", "compaction.window", 64)] == ""
    for m in space.machines()[1:]:
        assert list(runs[m]) == [""]
        assert where[(m, "compaction.window", 32)] == ""


def test_shared_parameters_run_on_every_machine_and_keep_overlay_fields_apart():
    # a shared parameter equal to a baseline's own field needs no --set on it
    p = space.Param("pe_array.mult_format", ["fp8", "fp16"], "all")
    runs, where, _ = space.plan([p], False)
    assert "pe_array.mult_format=fp8" in runs["swpu"]
    assert where[("lnpu_like", "pe_array.mult_format", "fp8")] == ""  # its own value
    assert where[("lnpu_like", "pe_array.mult_format", "fp16")] == "pe_array.mult_format=fp16"


def test_a_new_parameter_is_one_line():
    p = space.Param("buffers.banks", [4], "all", paths=space._BANKS)
    runs, _, _ = space.plan([p], True)
    for m in space.machines():
        assert runs[m]["buffers.weight.banks=4,buffers.activation.banks=4,buffers.output.banks=4"] \
            == [(k, 4) for k in space._BANKS]


def test_chosen_combines_the_values_nearest_the_paper():
    params = [space.Param("a", [1, 2], "all"), space.Param("b", [1, 2], "all"),
              space.Param("c", [1, 2], "all")]
    claim = {"paper": 2.0, "default": {"x": {"ratio": 1.0}},
             "params": [{"values": [1, 2], "ratios": {"x": [1.5, 0.8]}},
                        {"values": [1, 2], "ratios": {"x": [0.9, 0.7]}},
                        {"values": [1, 2], "ratios": {"x": [1.2, 1.9]}}]}
    picks = space.chosen_sets(params, claim, "x")
    # nearest first; b never moves towards 2.0
    assert [(p.name, v) for p, v in picks] == [("c", 2), ("a", 1)]


def test_bad_parameter_is_refused_before_anything_runs(tmp_path):
    p = subprocess.run([sys.executable, SPACE, "--param", "chip.colour", "--out", str(tmp_path / "o"),
                        "--sim", "/nonexistent"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=60)
    assert p.returncode == 2
    assert "--param chip.colour: not a swept parameter" in p.stderr
    assert not os.path.exists(str(tmp_path / "o"))


# ----------------------------------------------------------------------------- the quick run

@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("space"))
    cmd = [sys.executable, SPACE, "--quick", "--out", out, "-q", "--sim", SIM, "--jobs", "2"]
    for p in QUICK_PARAMS:
        cmd += ["--param", p]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=900)
    assert p.returncode == 0, "reconstruction_space.py --quick failed:\n" + p.stderr
    with open(os.path.join(out, "reconstruction-space.json")) as f:
        data = json.load(f)
    data["_out"] = out
    return data


def claim(data, cid):
    return next(c for c in data["claims"] if c["id"] == cid)


def ratios(data, cid):
    c = claim(data, cid)
    return [r for row in c["params"] for b in c["baselines"] for r in row["ratios"][b]] + \
        [d["ratio"] for d in c["default"].values()]


@needs_sim
def test_swpu_beats_unstructured_at_every_point(quick):
    # less chip energy than unstructured pruning at the same weight sparsity, wherever swept
    rs = ratios(quick, "3")
    assert rs and all(r is not None and r > 1.0 for r in rs), rs


@needs_sim
def test_dense_weight_processors_cost_more_energy_and_time_at_every_point(quick):
    # The machines that prune no weight (ganpu_like, lnpu_like) do about three times SWPU's MACs;
    # the pruning machines can land on either side of SWPU (docs/reproduction.md).
    for cid in ("4", "5"):
        c = claim(quick, cid)
        for b in ("ganpu_like", "lnpu_like"):
            rs = [r for row in c["params"] for r in row["ratios"][b]] + [c["default"][b]["ratio"]]
            assert rs and all(r is not None and r > 1.0 for r in rs), (cid, b, rs)


@needs_sim
def test_more_weight_sparsity_saves_swpu_energy_and_more_bandwidth_never_costs_cycles(quick):
    pts = quick["settings"]["points"]
    sp = pts["workload.weight_sparsity"]["swpu"]
    assert [p["value"] for p in sp] == [0.7, 0.9]
    assert sp[1]["chip_uj"] < sp[0]["chip_uj"] and sp[1]["cycles"] < sp[0]["cycles"]
    for m, rows in pts["dram.bandwidth_gbps"].items():
        assert rows[1]["value"] > rows[0]["value"]
        assert rows[1]["cycles"] <= rows[0]["cycles"], m


@needs_sim
def test_document_shows_each_claim_with_plot_and_chosen_configs(quick):
    out = quick["_out"]
    md = open(os.path.join(out, "reconstruction-space.md")).read()
    for cid in ("3", "4", "5"):
        assert "### Claim %s:" % cid in md
        path = os.path.join(out, "images", "space", "claim%s.png" % cid)
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", path
        for ch in claim(quick, cid).get("chosen", []):
            assert ch["status"] in ("met", "missed") and ch["values"]
            # the chosen one is the tried combination nearest the paper's value
            paper = claim(quick, cid)["paper"]
            d = [abs(math.log(t["ratio"] / paper)) for t in ch["tried"] if t["ratio"]]
            assert abs(math.log(ch["ratio"] / paper)) == pytest.approx(min(d))
    assert "**Chosen**" in md or not any(claim(quick, c).get("chosen") for c in ("3", "4", "5"))
