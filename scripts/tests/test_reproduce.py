"""Tests of scripts/reproduce_paper and its modules (scripts/swpu/baselines.py, claims.py, render.py).

    /usr/bin/python3 -m pytest scripts/tests/test_reproduce.py

The baseline-overlay tests need no simulator. The others run `scripts/reproduce_paper --quick`
once (about 10-20 s on 2 cores) and check the direction and rough size of each effect the paper
claims, so that a change of the model that breaks one fails here. They are skipped when the
simulator ($SWPU_SIM, else <repo>/build/swpu-sim) is not built.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from simulator import REPO, SCRIPTS, SIM, needs_sim  # noqa: E402,F401
REPRODUCE = os.path.join(SCRIPTS, "reproduce_paper")
sys.path.insert(0, SCRIPTS)
from swpu import baselines as bl, claims  # noqa: E402

PLOTS = ["ablation.png", "layers_energy.png", "layers_cycles.png", "efficiency_vs_voltage.png",
         "conv_efficiency_vs_voltage.png", "throughput_vs_voltage.png", "power_vs_voltage.png",
         "energy_breakdown_vs_voltage.png"]


# ----------------------------------------------------------------------------- baselines

def test_committed_baselines_are_documented_overlays():
    bl.check_baselines()  # raises DriftError listing every difference


def test_committed_baselines_are_exactly_the_generated_ones(tmp_path):
    bl.write_baselines(baseline_dir=str(tmp_path))
    for name in bl.BASELINES:
        with open(bl.baseline_path(name)) as f, open(bl.baseline_path(name, str(tmp_path))) as g:
            assert f.read() == g.read(), "%s differs from --write-baselines output" % name


def test_baseline_values_are_the_documented_ones():
    def load(name):
        return bl.flatten(bl.resolved(bl.baseline_path(name)))
    swpu = bl.flatten(bl.load_json(bl.SWPU_CONFIG))
    assert load("dense")["workload.pruning"] == "dense"
    st = load("structured")
    assert st["workload.pruning"] == "structured"
    # no paper value in the file: without a measurement the structured run has SWPU's sparsity
    assert st["workload.weight_sparsity"] == swpu["workload.weight_sparsity"]
    for name in ("unstructured", "trainer_like", "coarse_fine_like"):
        b = load(name)
        assert b["workload.pruning"] == "unstructured"
        assert b["workload.weight_sparsity"] == swpu["workload.weight_sparsity"]
        assert (b["compaction.routing"], b["pe_array.group_sync"], b["reorder_unit.enabled"]) == \
            ("crossbar", "decoupled", False)
    assert load("trainer_like")["vector_unit.fuse_bn_relu"] is True
    for name in ("ganpu_like", "lnpu_like"):
        assert load(name)["workload.pruning"] == "dense"
    assert load("lnpu_like")["pe_array.mult_format"] == "fp8"
    assert load("coarse_fine_like")["pe_array.mult_format"] == "fp8"
    assert load("swpu_no_reorder")["reorder_unit.enabled"] is False
    assert load("swpu_no_dbl")["dbl.enabled"] is False
    assert load("swpu_no_log_routing")["compaction.routing"] == "crossbar"
    # everything else is SWPU's
    for name, b in bl.BASELINES.items():
        got = load(name)
        assert set(got) == set(swpu), name
        assert {k for k in swpu if got[k] != swpu[k]} <= set(b.fields), name


def test_baselines_of_each_claim():
    assert bl.baselines_of("3") == ["unstructured"]
    assert bl.baselines_of("4") == ["ganpu_like", "lnpu_like", "coarse_fine_like", "trainer_like"]
    assert bl.baselines_of("4") == bl.baselines_of("5")
    assert bl.ABLATIONS == ["swpu_no_reorder", "swpu_no_dbl", "swpu_no_log_routing"]


def test_structured_sparsity_is_measured_or_equal_never_the_paper():
    v, note = bl.structured_sparsity(0.7, None)
    assert v == 0.7 and "equal to SWPU" in note
    v, note = bl.structured_sparsity(0.7, {"relative_gain_sub_vs_structured": 0.25})
    assert v == pytest.approx(0.56) and "measured" in note
    runs = claims.experiments(True, 1, None, {"relative_gain_sub_vs_structured": 0.4})
    st = next(r for r in runs if r["id"] == "net_structured")
    assert ("workload.weight_sparsity", repr(0.5)) in st["sets"]
    runs = claims.experiments(True, 1, None, None)
    st = next(r for r in runs if r["id"] == "net_structured")
    assert not any(k == "workload.weight_sparsity" for k, _ in st["sets"])
    assert "equal to SWPU" in st["note"]


def _copy_baselines(tmp_path):
    d = tmp_path / "baselines"
    shutil.copytree(bl.BASELINE_DIR, str(d))
    return d


def _edit(path, fn):
    cfg = bl.load_json(str(path))
    fn(cfg)
    with open(str(path), "w") as f:
        json.dump(cfg, f, indent=2)


def test_undocumented_fields_are_detected_and_every_problem_named(tmp_path):
    d = _copy_baselines(tmp_path)
    _edit(d / "dense.json", lambda c: c.setdefault("dram", {}).__setitem__("bandwidth_gbps", 25.6))
    _edit(d / "structured.json", lambda c: c["workload"].__setitem__("weight_sparsity", 0.5))
    _edit(d / "swpu_no_dbl.json", lambda c: c.pop("dbl"))
    _edit(d / "swpu_no_reorder.json", lambda c: c["reorder_unit"].__setitem__("enabled", 1))
    _edit(d / "unstructured.json", lambda c: c.__setitem__("extends", "../peak.json"))
    shutil.copy(str(d / "dense.json"), str(d / "undocumented.json"))
    with pytest.raises(bl.DriftError) as e:
        bl.check_baselines(baseline_dir=str(d))
    msg = str(e.value)
    assert "dense.json: dram.bandwidth_gbps = 25.6 is not a documented field" in msg
    assert "structured.json: workload.weight_sparsity = 0.5 is not a documented field" in msg
    assert "swpu_no_dbl.json: documented field dbl.enabled is missing" in msg
    assert "swpu_no_reorder.json: documented field reorder_unit.enabled is 1, expected false" in msg
    assert 'unstructured.json: "extends" is "../peak.json", expected "../swpu.json"' in msg
    assert "undocumented.json is not a documented baseline" in msg


def test_a_changed_swpu_config_reaches_every_baseline(tmp_path):
    shutil.copytree(os.path.join(REPO, "configs"), str(tmp_path / "configs"),
                    ignore=shutil.ignore_patterns("traces"))
    swpu = bl.load_json(str(tmp_path / "configs" / "swpu.json"))
    swpu["buffers"]["weight"]["kib"] = 64
    with open(str(tmp_path / "configs" / "swpu.json"), "w") as f:
        json.dump(swpu, f)
    for name in bl.BASELINES:
        cfg = bl.resolved(str(tmp_path / "configs" / "baselines" / (name + ".json")))
        assert cfg["buffers"]["weight"]["kib"] == 64, name
    assert bl.resolved(str(tmp_path / "configs" / "peak.json"))["buffers"]["weight"]["kib"] == 64


def test_script_refuses_undocumented_baselines_without_running(tmp_path):
    # the check runs before the simulator is even looked for
    d = _copy_baselines(tmp_path)
    _edit(d / "dense.json", lambda c: c.setdefault("pe_array", {}).__setitem__("groups", 8))
    env = dict(os.environ, PYTHONPATH="")
    code = ("import sys; sys.path.insert(0, %r); from swpu import baselines; baselines.BASELINE_DIR = %r; "
            "import runpy; sys.argv = ['reproduce_paper', '--out', %r, '--sim', '/nonexistent']; "
            "runpy.run_path(%r, run_name='__main__')"
            % (SCRIPTS, str(d), str(tmp_path / "out"), REPRODUCE))
    p = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, env=env, timeout=60)
    assert p.returncode == 2, p.stderr
    assert "dense.json: pe_array.groups = 8 is not a documented field" in p.stderr
    assert not os.path.exists(str(tmp_path / "out"))


def test_amortize_over_the_update_interval():
    it0 = {"cycles": 300.0, "energy_chip_uj": 30.0}
    it1 = {"cycles": 100.0, "energy_chip_uj": 10.0}
    am = claims.amortize([it0, it1], 100)
    assert am["cycles"] == pytest.approx(102.0)
    assert am["energy_chip_uj"] == pytest.approx(10.2)
    assert claims.amortize([it0, it1], 1)["cycles"] == pytest.approx(200.0)


# ----------------------------------------------------------------------------- the quick run

@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("repro"))
    p = subprocess.run([sys.executable, REPRODUCE, "--quick", "--out", out, "-q",
                        "--sim", SIM], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=600)
    assert p.returncode == 0, "reproduce_paper --quick failed:\n" + p.stderr
    with open(os.path.join(out, "reproduction.json")) as f:
        data = json.load(f)
    data["_out"] = out
    data["_stderr"] = p.stderr
    return data


def claim(data, cid):
    return next(c for c in data["claims"] if c["id"] == cid)


def ratio(data, name, key):
    row = next(r for r in data["baselines"] if r["config"] == name)
    return row[key + "_ratio"]


def rows_of(data, cid):
    """The claim's per-baseline rows (not the range row, not the secondary lines)."""
    return [c for c in data["claims"] if c["id"] == cid and not c.get("range")]


@needs_sim
def test_peak_is_shown_calibrated_never_met(quick):
    c = claim(quick, "1")
    assert c["simulated"] == pytest.approx(126.04, rel=0.03)  # the calibration still holds
    assert c["status"] == "calibrated"
    assert "calibration factor" in c["note"]


@needs_sim
def test_675_mhz_is_shown_as_an_input(quick):
    c = claim(quick, "2")
    assert c["simulated"] == 675.0
    assert c["status"] == "input"
    assert not any(c["status"] == "met" for c in quick["claims"] if c["id"] in ("1", "2"))


@needs_sim
def test_claims_3_to_5_have_a_row_per_baseline_and_a_range(quick):
    for cid in ("3", "4", "5"):
        names = bl.baselines_of(cid)
        assert [c["against"] for c in rows_of(quick, cid)] == names
        rng = [c for c in quick["claims"] if c["id"] == cid and c.get("range")]
        assert len(rng) == (1 if len(names) > 1 else 0)
        if rng:
            vals = [c["simulated"] for c in rows_of(quick, cid)]
            assert (rng[0]["simulated"], rng[0]["simulated_max"]) == (min(vals), max(vals))


@needs_sim
def test_substructured_more_efficient_than_unstructured(quick):
    # SWPU uses less chip energy than the fine-grained machine at the same weight sparsity
    for c in rows_of(quick, "3"):
        assert c["simulated"] > 1.0, c


@needs_sim
def test_less_energy_and_faster_than_the_dense_weight_processors(quick):
    # Machines that prune no weights do about 3x SWPU's MACs: SWPU wins clearly on both counts.
    for cid, bound in (("4", 1.5), ("5", 1.2)):
        for c in rows_of(quick, cid):
            if c["against"] in ("ganpu_like", "lnpu_like"):
                assert c["simulated"] > bound, c


@needs_sim
def test_every_baseline_gives_its_own_counts(quick):
    # No two machines are the same machine: their cycles or chip energy differ.
    seen = {}
    for name in ["swpu"] + list(bl.BASELINES):
        key = (round(ratio(quick, name, "cycles"), 9), round(ratio(quick, name, "chip_uj"), 9)) \
            if name != "swpu" else (1.0, 1.0)
        assert key not in seen, (name, seen.get(key))
        seen[key] = name


@needs_sim
def test_fused_bn_relu_saves_the_trainer_like_machine_time(quick):
    # trainer_like is the fine-grained machine plus fused BN/ReLU: fusion removes DRAM round trips.
    assert ratio(quick, "trainer_like", "cycles") < ratio(quick, "unstructured", "cycles")


@needs_sim
def test_each_ablation_costs_cycles_or_energy(quick):
    rows = {r["config"]: r for r in quick["ablation"]}
    for name in bl.ABLATIONS:
        r = rows[name]
        assert max(r["cycles_ratio"], r["chip_uj_ratio"]) >= 1.0, (name, r)


@needs_sim
def test_dense_slower_than_swpu(quick):
    assert ratio(quick, "dense", "cycles") > 1.0
    assert ratio(quick, "dense", "chip_uj") > 1.0


@needs_sim
def test_pruning_claim_never_invented(quick):
    c = claim(quick, "6")
    if quick["pruning_result"] is None:
        assert c["status"] == "not run" and c["simulated"] is None
    else:
        assert c["simulated"] == quick["pruning_result"]["relative_gain_sub_vs_structured"]


@needs_sim
def test_markdown_and_plots_exist(quick):
    out = quick["_out"]
    with open(os.path.join(out, "reproduction.md")) as f:
        md = f.read()
    assert "Generated by `scripts/reproduce_paper`; do not edit by hand." in md
    assert "scripts/reproduce_paper --quick --out %s" % out in md
    for cid in ("1", "2", "3", "4", "5", "6"):
        assert "\n| %s | " % cid in md
    assert "| **calibrated** |" in md and "| **input** |" in md
    assert "## Ablation" in md and "## Voltage curve" in md
    for name in PLOTS:
        path = os.path.join(out, "images", "reproduction", name)
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", path
        assert "images/reproduction/%s" % name in md
    if claims.bundled_traces():
        assert quick["trace"]["swpu"] is not None and quick["trace"]["unstructured"] is not None


# ----------------------------------------------------------------------------- no simulator needed

def test_pruning_result_is_found_where_the_generator_doc_names_it(tmp_path):
    doc = tmp_path / "trace-generator.md"
    doc.write_text("Run\n\n```\n/usr/bin/python3 scripts/pruning_ratio.py --width 0.25 \\\n"
                   "    --epochs 10 --out docs/pruning-ratio.json\n```\n")
    assert claims.documented_pruning_result(str(doc)) == os.path.join(REPO, "docs", "pruning-ratio.json")
    doc.write_text("no command here\n")
    assert claims.documented_pruning_result(str(doc)) is None


def test_failed_runs_are_reported_and_exit_nonzero(tmp_path):
    # a "simulator" that always fails: every run fails, nothing is invented, exit status 1
    fake = tmp_path / "fake-sim"
    fake.write_text("#!/bin/sh\necho 'swpu-sim: config error: simulated failure' >&2\nexit 2\n")
    fake.chmod(0o755)
    ratio_json = tmp_path / "ratio.json"
    ratio_json.write_text(json.dumps({
        "command": "/usr/bin/python3 scripts/pruning_ratio.py --out ratio.json",
        "relative_gain_sub_vs_structured": 0.45,
        "summary": {"structured": {"max_pruning_ratio": 0.6},
                    "sub-structured": {"max_pruning_ratio": 0.87}}}))
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, REPRODUCE, "--quick", "--no-trace", "--out", str(out),
                        "--sim", str(fake), "--pruning-result", str(ratio_json), "--jobs", "2",
                        "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=120)
    assert p.returncode == 1, p.stderr
    assert "FAILED run net_swpu: swpu-sim: config error: simulated failure" in p.stderr
    with open(str(out / "reproduction.json")) as f:
        data = json.load(f)
    for cid in ("1", "2", "3", "4", "5"):
        assert claim(data, cid)["status"] == "run failed"
        assert claim(data, cid)["simulated"] is None
    c6 = claim(data, "6")
    assert c6["simulated"] == 0.45 and c6["status"] == "met"  # |0.45/0.501 - 1| = 10% <= 20%
    md = (out / "reproduction.md").read_text()
    assert "**FAILED RUNS**" in md and "simulated failure" in md
