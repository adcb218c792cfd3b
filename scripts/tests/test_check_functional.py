"""Functional mode against PyTorch: swpu-sim --dump-tensors, then scripts/check_functional.py.

- the bundled trace with real tensors (tests/data/resnet18-cifar-digits-tensors, made by
  gen_trace.py on the digits data) on both engines: every dumped FF, BP and WG result of its
  recorded layers (3x3 and 1x1 conv, stride 1 and 2, padding, FC) within the bound;
- random values on synthetic traces of every pruning mode, the same layer kinds;
- a corrupted result (one flipped value) makes the check fail, and a dump it cannot read is
  refused with exit status 2;
- bad filter values: exit status 2, a message naming the option, nothing written."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from simulator import REPO, SIM, needs_sim

CHECK = os.path.join(REPO, "scripts", "check_functional.py")
CONFIG = os.path.join(REPO, "configs", "swpu.json")
TRACE = os.path.join(REPO, "tests", "data", "resnet18-cifar-digits-tensors")
LAYERS = "conv1,layer1.0.conv1,layer2.0.conv1,layer2.0.downsample,layer3.1.conv2,fc"
# Synthetic: 3x3 stride 1 pad 1, 3x3 stride 2 pad 1, 1x1 stride 2 pad 0, FC.
SYN_LAYERS = "conv1,layer1.1.conv2,layer2.0.conv1,layer2.0.downsample,fc"
MODES = ("dense", "structured", "unstructured", "shape-only", "line-only", "sub-structured")


def simulate(tmp_path, dump, *args):
    cmd = [SIM, "--config", CONFIG, "--quiet", "--out", str(tmp_path / "out"),
           "--set", "simulation.mode=functional"] + (["--dump-tensors", str(dump)] if dump else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def check(dump):
    return subprocess.run([sys.executable, CHECK, str(dump), "--quiet"], capture_output=True, text=True,
                          timeout=900)


def passes_of(dump):
    with open(os.path.join(dump, "manifest.json")) as f:
        m = json.load(f)
    return m, {(e["layer"], e["pass"]) for e in m["entries"]}


@needs_sim
@pytest.mark.parametrize("engine", ["cycle", "fast"])
def test_bundled_real_tensors_match_pytorch(tmp_path, engine):
    dump = tmp_path / "dump"
    r = simulate(tmp_path, dump, "--engine", engine, "--trace", TRACE, "--dump-layers", LAYERS)
    assert r.returncode == 0, r.stderr
    m, got = passes_of(dump)
    want = {(l, p) for l in LAYERS.split(",") for p in ("FF", "BP", "WG")} - {("conv1", "BP")}
    assert got == want
    assert m["run"]["engine"] == engine
    # The dumped operands are the trace's recorded values, not random ones.
    with open(os.path.join(TRACE, "manifest.json")) as f:
        tm = json.load(f)
    rec = tm["iterations"][0]["layers"]["layer2.0.conv1"]["input"]["file"]
    e = next(e for e in m["entries"] if e["layer"] == "layer2.0.conv1" and e["pass"] == "FF")
    assert np.array_equal(np.load(os.path.join(TRACE, rec)),
                          np.load(os.path.join(dump, e["files"]["input"]["file"])))
    c = check(dump)
    assert c.returncode == 0, c.stdout + c.stderr
    assert "all results of 17 layer-passes within" in c.stdout


@needs_sim
@pytest.mark.parametrize("mode", MODES)
def test_random_layers_of_every_pruning_mode_match_pytorch(tmp_path, mode):
    dump = tmp_path / "dump"
    r = simulate(tmp_path, dump, "--set", "workload.width=0.125", "--set", "workload.batch=2",
                 "--set", "workload.pruning=" + mode, "--set", "workload.prune_first_layer=true",
                 "--dump-layers", SYN_LAYERS)
    assert r.returncode == 0, r.stderr
    _, got = passes_of(dump)
    assert len(got) == 3 * len(SYN_LAYERS.split(",")) - 1
    c = check(dump)
    assert c.returncode == 0, c.stdout + c.stderr


@needs_sim
def test_a_flipped_result_fails_the_check(tmp_path):
    dump = tmp_path / "dump"
    r = simulate(tmp_path, dump, "--trace", TRACE, "--dump-layers", "layer2.0.conv1",
                 "--dump-passes", "FF,WG")
    assert r.returncode == 0, r.stderr
    assert check(dump).returncode == 0
    for name in ("output", "grad_weight"):
        bad = tmp_path / ("bad_" + name)
        shutil.copytree(dump, bad)
        m, _ = passes_of(bad)
        e = next(e for e in m["entries"] if name in e["files"])
        path = os.path.join(bad, e["files"][name]["file"])
        a = np.load(path)
        flat = a.reshape(-1)
        i = int(np.argmax(np.abs(flat)))
        flat[i] = -flat[i]  # one value, sign flipped
        np.save(path, a)
        c = check(bad)
        assert c.returncode == 1, c.stdout
        assert "MISMATCH" in c.stdout and name in c.stdout


@needs_sim
def test_an_unreadable_dump_is_refused(tmp_path):
    dump = tmp_path / "dump"
    assert simulate(tmp_path, dump, "--trace", TRACE, "--dump-layers", "fc", "--dump-passes", "FF").returncode == 0
    m, _ = passes_of(dump)
    os.remove(os.path.join(dump, m["entries"][0]["files"]["weight"]["file"]))
    c = check(dump)
    assert c.returncode == 2
    assert "weight.npy" in c.stderr


@needs_sim
@pytest.mark.parametrize("args,names", [
    (["--dump-layers", "conv1,nosuch"], ["--dump-layers", "nosuch"]),
    (["--dump-passes", "FF,XX"], ["--dump-passes", "XX"]),
    (["--dump-iterations", "3"], ["--dump-iterations", "3"]),
    (["--dump-iterations", "-1"], ["--dump-iterations", "-1"]),
    (["--dump-iterations", "a"], ["--dump-iterations"]),
])
def test_bad_filters_are_refused_and_nothing_is_written(tmp_path, args, names):
    dump = tmp_path / "dump"
    r = simulate(tmp_path, dump, "--trace", TRACE, *args)
    assert r.returncode == 2
    for n in names:
        assert n in r.stderr
    assert not dump.exists()
    assert not (tmp_path / "out").exists()
    assert [p for p in os.listdir(tmp_path) if "tmp" in p] == []


@needs_sim
def test_dump_needs_functional_mode_and_a_new_directory(tmp_path):
    r = subprocess.run([SIM, "--config", CONFIG, "--quiet", "--out", str(tmp_path / "out"), "--trace", TRACE,
                        "--dump-tensors", str(tmp_path / "d")], capture_output=True, text=True)
    assert r.returncode == 2 and "simulation.mode=functional" in r.stderr
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("keep")
    r = simulate(tmp_path, full, "--trace", TRACE)
    assert r.returncode == 2 and "not empty" in r.stderr
    assert (full / "x").read_text() == "keep"
    r = simulate(tmp_path, None, "--trace", TRACE, "--dump-layers", "fc")
    assert r.returncode == 2 and "--dump-tensors" in r.stderr


@needs_sim
def test_both_engines_compute_the_same_values(tmp_path):
    dumps = {}
    for engine in ("cycle", "fast"):
        dumps[engine] = tmp_path / engine
        r = simulate(tmp_path, dumps[engine], "--engine", engine, "--trace", TRACE, "--dump-layers",
                     "layer2.0.conv1,fc")
        assert r.returncode == 0, r.stderr
    m, _ = passes_of(dumps["cycle"])
    compared = 0
    for e in m["entries"]:
        for f in e["files"].values():
            a = np.load(os.path.join(dumps["cycle"], f["file"]))
            b = np.load(os.path.join(dumps["fast"], f["file"]))
            assert np.array_equal(a, b), f["file"]
            compared += 1
    assert compared == 2 * (5 + 5 + 4)


@needs_sim
@pytest.mark.parametrize("extra", [
    ["--engine", "fast", "--set", "compaction.routing=crossbar", "--set", "workload.pruning=unstructured"],
    ["--set", "dbl.enabled=false", "--set", "reorder_unit.enabled=false"],
])
def test_baseline_datapaths_match_pytorch(tmp_path, extra):
    dump = tmp_path / "dump"
    r = simulate(tmp_path, dump, "--set", "workload.width=0.125", "--dump-layers", SYN_LAYERS, *extra)
    assert r.returncode == 0, r.stderr
    c = check(dump)
    assert c.returncode == 0, c.stdout + c.stderr


@needs_sim
def test_single_layer_pass_dump(tmp_path):
    dump = tmp_path / "dump"
    r = simulate(tmp_path, dump, "--trace", TRACE, "--layer", "layer2.0.downsample", "--pass", "BP")
    assert r.returncode == 0, r.stderr
    m, got = passes_of(dump)
    assert got == {("layer2.0.downsample", "BP")}
    with open(os.path.join(TRACE, "manifest.json")) as f:
        step = json.load(f)["iterations"][0]["index"]
    assert m["entries"][0]["step"] == step and m["entries"][0]["iteration"] == 0
    assert check(dump).returncode == 0


GEN = os.path.join(REPO, "scripts", "gen_trace.py")


@needs_sim
def test_gen_trace_records_tensors_that_the_simulator_checks_against_pytorch(tmp_path):
    trace = tmp_path / "trace"
    g = subprocess.run([sys.executable, GEN, "--width", "0.0625", "--iterations", "3", "--batch-size", "8",
                        "--train-images", "64", "--test-images", "16", "--trace-batch", "2",
                        "--record-iterations", "1,2", "--record-tensors", "conv1,layer2.0.downsample,fc",
                        "--record-tensor-iterations", "2", "--threads", "1", "--out", str(trace)],
                       capture_output=True, text=True, timeout=900)
    assert g.returncode == 0, g.stderr
    with open(trace / "manifest.json") as f:
        tm = json.load(f)
    assert tm["version"] == 2
    first, second = tm["iterations"]
    assert not any(k in e for e in first["layers"].values() for k in ("weight", "input", "output_grad"))
    recorded = {n for n, e in second["layers"].items() if "weight" in e}
    assert recorded == {"conv1", "layer2.0.downsample", "fc"}
    w = np.load(trace / second["layers"]["fc"]["weight"]["file"])
    assert w.dtype == np.float16 and list(w.shape) == second["layers"]["fc"]["weight"]["shape"]
    dump = tmp_path / "dump"
    r = simulate(tmp_path, dump, "--trace", str(trace), "--dump-iterations", "1",
                 "--dump-layers", "conv1,layer2.0.downsample,fc")
    assert r.returncode == 0, r.stderr
    c = check(dump)
    assert c.returncode == 0, c.stdout + c.stderr
    bad = subprocess.run([sys.executable, GEN, "--iterations", "2", "--record-tensors", "conv1,nosuch",
                          "--out", str(tmp_path / "t2")], capture_output=True, text=True, timeout=900)
    assert bad.returncode == 2 and "nosuch" in bad.stderr
    assert not (tmp_path / "t2").exists()
