"""Tests of the real-trace generator (scripts/gen_trace.py) and the trace helpers.

Run with the system interpreter, which has Debian's PyTorch:

    /usr/bin/python3 -m pytest scripts/tests

If SWPU_SIM names a simulator binary, a generated trace is also run through it
(`$SWPU_SIM --trace DIR --out DIR`, plus $SWPU_SIM_ARGS, by default
`--config configs/swpu.json` when that file exists).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch is not importable by this interpreter; run the tests with "
                    "/usr/bin/python3 -m pytest scripts/tests (Debian's python3-torch)")
torch.set_num_threads(1)

SCRIPTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(SCRIPTS)
GEN = os.path.join(SCRIPTS, "gen_trace.py")
sys.path.insert(0, SCRIPTS)
import gen_trace  # noqa: E402
from swpu import trace_data, trace_format, trace_pruning, trace_training  # noqa: E402

LAYER_NAMES = [
    "conv1", "layer1.0.conv1", "layer1.0.conv2", "layer1.1.conv1", "layer1.1.conv2",
    "layer2.0.conv1", "layer2.0.conv2", "layer2.0.downsample", "layer2.1.conv1",
    "layer2.1.conv2", "layer3.0.conv1", "layer3.0.conv2", "layer3.0.downsample",
    "layer3.1.conv1", "layer3.1.conv2", "layer4.0.conv1", "layer4.0.conv2",
    "layer4.0.downsample", "layer4.1.conv1", "layer4.1.conv2", "fc"]

# A tiny run: width 0.125, 6 iterations of batch 8, trace batch 2, masks updated every
# iteration from the start, recorded at a mask update (2) and at the end (5).
TINY = ["--width", "0.125", "--iterations", "6", "--batch-size", "8", "--trace-batch", "2",
        "--update-interval", "1", "--prune-start", "0", "--prune-end", "0.5",
        "--sparsity", "0.6", "--record-iterations", "2,-1", "--threads", "1",
        "--test-images", "40", "--seed", "3"]


def run_cli(args, timeout=120):
    return subprocess.run([sys.executable, GEN] + args, capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def run_inprocess(out, mode, extra=()):
    args = TINY + ["--mode", mode, "--out", str(out)] + list(extra)
    assert gen_trace.main(args) == 0
    return str(out)


@pytest.fixture(scope="module")
def substructured(tmp_path_factory):
    """Two CLI runs of the tiny sub-structured setting with the same seed."""
    dirs = []
    for name in ("a", "b"):
        out = tmp_path_factory.mktemp("sub") / name
        r = run_cli(TINY + ["--mode", "sub-structured", "--out", str(out)])
        assert r.returncode == 0, r.stderr
        dirs.append(str(out))
    return dirs


@pytest.fixture(scope="module")
def mode_traces(tmp_path_factory):
    base = tmp_path_factory.mktemp("modes")
    return {m: run_inprocess(base / m, m)
            for m in ("dense", "structured", "unstructured", "shape-only", "line-only")}


def manifest(d):
    with open(os.path.join(d, "manifest.json")) as f:
        return json.load(f)


def bitmaps(d, it):
    """{layer: {key: bool array}} of one iteration entry."""
    return {name: {k: trace_format.read_bitmap(d, e) for k, e in entry.items()}
            for name, entry in it["layers"].items()}


# ---------------------------------------------------------------------------------------------

def test_manifest_parses(substructured):
    d = substructured[0]
    m = manifest(d)
    assert m["format"] == "swpu-trace" and m["version"] == 1
    assert m["network"] == {"name": "resnet18-cifar", "width": 0.125, "num_classes": 10,
                            "input": [3, 32, 32]}
    assert m["batch"] == 2
    assert m["pruning"] == {"mode": "sub-structured", "fc_block": 16}
    assert [layer["name"] for layer in m["layers"]] == LAYER_NAMES
    assert m["layers"] == trace_format.resnet18_cifar_layers(0.125, 10, (3, 32, 32))
    assert [it["index"] for it in m["iterations"]] == [2, 5]
    assert m["iterations"][0]["mask_update"] is True
    assert m["iterations"][1]["mask_update"] is False
    src = m["source"]
    assert src["generator"] == "scripts/gen_trace.py"
    assert "gen_trace.py" in src["command"] and "--mode sub-structured" in src["command"]
    assert src["dataset"] == "digits" and src["seed"] == 3 and src["iterations"] == 6
    assert 0.0 <= src["final_test_accuracy"] <= 1.0
    assert set(src["weight_sparsity"]) == set(LAYER_NAMES)
    for it in m["iterations"]:
        assert set(it["layers"]) == set(LAYER_NAMES)
        assert isinstance(it["loss"], float) and 0.0 <= it["accuracy"] <= 1.0
        for entry in it["layers"].values():
            for e in entry.values():
                assert not os.path.isabs(e["file"]) and ".." not in e["file"].split("/")


def test_layer_table_full_width():
    layers = {lay["name"]: lay for lay in trace_format.resnet18_cifar_layers(1.0)}
    assert list(layers) == LAYER_NAMES
    assert layers["conv1"]["out_channels"] == 64 and layers["conv1"]["out_hw"] == [32, 32]
    ds = layers["layer3.0.downsample"]
    assert (ds["in_channels"], ds["out_channels"], ds["kernel"], ds["stride"], ds["pad"],
            ds["in_hw"], ds["out_hw"]) == (128, 256, 1, 2, 0, [16, 16], [8, 8])
    assert layers["layer4.1.conv2"]["out_hw"] == [4, 4]
    assert layers["fc"] == {"name": "fc", "type": "fc", "in_features": 512, "out_features": 10}
    assert trace_format.channels(64, 0.125) == 8 and trace_format.channels(64, 0.001) == 1
    # the generator's model has exactly these weights
    model = trace_training.ResNet18Cifar(0.5)
    names = [n for n, _, _ in model.weighted_layers()]
    assert names == LAYER_NAMES
    table = trace_format.resnet18_cifar_layers(0.5)
    for (_, mod, _), lay in zip(model.weighted_layers(), table):
        if lay["type"] == "conv":
            assert tuple(mod.weight.shape) == (lay["out_channels"], lay["in_channels"],
                                               lay["kernel"], lay["kernel"])
            assert mod.stride == (lay["stride"],) * 2 and mod.padding == (lay["pad"],) * 2
        else:
            assert tuple(mod.weight.shape) == (lay["out_features"], lay["in_features"])


def test_packed_lengths_and_shapes(substructured):
    d = substructured[0]
    m = manifest(d)
    batch, fc_block = m["batch"], m["pruning"]["fc_block"]
    layers = {lay["name"]: lay for lay in m["layers"]}
    n_files = 0
    for it in m["iterations"]:
        for name, entry in it["layers"].items():
            lay = layers[name]
            line, shape, _ = trace_format.mask_shapes(lay, fc_block)
            act, grad = trace_format.activation_shapes(lay, batch)
            expect = {"line_mask": line, "shape_mask": shape, "input_nonzero": act,
                      "output_grad_nonzero": grad}
            assert set(entry) == set(expect)
            for key, e in entry.items():
                assert e["shape"] == expect[key], (name, key)
                arr = np.load(os.path.join(d, e["file"]), allow_pickle=False)
                assert arr.dtype == np.uint8 and arr.ndim == 1
                assert arr.size == -(-int(np.prod(e["shape"])) // 8), (name, key)
                n_files += 1
    assert n_files == 2 * 21 * 4
    assert trace_format.check_trace(d) == []


def test_substructured_masks(substructured):
    d = substructured[0]
    m = manifest(d)
    layers = {lay["name"]: lay for lay in m["layers"]}
    last = bitmaps(d, m["iterations"][-1])
    sp = m["source"]["weight_sparsity"]
    for name, b in last.items():
        line, shape = b["line_mask"], b["shape_mask"]
        eff = trace_format.effective_mask(layers[name], b, 16)
        if name == "conv1":  # the stem conv is not pruned by default
            assert line.all() and shape.all()
            continue
        # both kinds of group are used, and the effective sparsity is the target's
        assert not line.all() and not shape.all(), name
        assert abs((1 - eff.mean()) - 0.6) < 0.05, name
        assert abs(sp[name] - (1 - eff.mean())) < 1e-6, name
        if layers[name]["type"] == "conv":
            # a line whose shape positions are all pruned is itself pruned
            dead = ~shape.any(axis=2)
            assert not line[:, dead].any(), name
    # masks only grow sparser between the two recorded iterations
    first = bitmaps(d, m["iterations"][0])
    for name in last:
        for key in ("line_mask", "shape_mask"):
            assert not (last[name][key] & ~first[name][key]).any(), (name, key)


def test_substructured_layer_update():
    """The effective mask is line & shape and the weights are zero exactly outside it."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6, 10, 3, bias=False)
    bn = torch.nn.BatchNorm2d(10)
    opt = torch.optim.SGD(conv.parameters(), lr=0.1, momentum=0.9)
    pl = trace_pruning.PrunedLayer("x", conv, bn, 16, True)
    for target in (0.3, 0.6, 0.8):
        before = pl.mask.clone()
        pl.update("sub-structured", target, 0.5)
        pl.apply(opt)
        assert torch.equal(pl.mask, pl.line[:, :, :, None] & pl.shape[None])
        assert torch.equal(conv.weight != 0, pl.mask)
        assert abs(pl.sparsity() - target) < 0.02
        assert not (pl.mask & ~before).any()
    # shape pruning took about 1 - sqrt(0.2) of the shape groups
    assert abs((1 - pl.shape.float().mean()) - (1 - 0.2 ** 0.5)) < 0.03
    fc = torch.nn.Linear(40, 7)
    pf = trace_pruning.PrunedLayer("fc", fc, None, 16, True)
    pf.update("sub-structured", 0.7, 0.5)
    assert pf.line.shape == (7, 3) and pf.shape.shape == (40,)
    expect = pf.line.repeat_interleave(16, 1)[:, :40] & pf.shape[None]
    assert torch.equal(pf.mask, expect)
    assert abs(pf.sparsity() - 0.7) < 0.03


def test_structured_layer_update():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 10, 3, bias=False)
    bn = torch.nn.BatchNorm2d(10)
    bn.bias.data.fill_(0.5)
    opt = torch.optim.SGD(list(conv.parameters()) + list(bn.parameters()), lr=0.1, momentum=0.9)
    pl = trace_pruning.PrunedLayer("x", conv, bn, 16, True)
    pl.update("structured", 0.4, 0.5)
    pl.apply(opt)
    assert int((~pl.filter).sum()) == 4 and pl.shape.all()
    per_filter = pl.mask.flatten(1)
    assert (per_filter.all(1) | ~per_filter.any(1)).all()
    assert (bn.weight[~pl.filter] == 0).all() and (bn.bias[~pl.filter] == 0).all()
    assert (bn.bias[pl.filter] == 0.5).all()
    # the pruned filters stay zero through training steps
    for _ in range(3):
        opt.zero_grad()
        bn(conv(torch.randn(2, 4, 8, 8))).square().mean().backward()
        pl.mask_grads()
        opt.step()
        pl.apply(opt)
        assert (conv.weight[~pl.filter] == 0).all()


def test_mode_structures(mode_traces):
    for mode, d in mode_traces.items():
        assert trace_format.check_trace(d) == [], mode  # includes the per-mode structure checks
        m = manifest(d)
        assert m["pruning"]["mode"] == mode
        b = bitmaps(d, m["iterations"][-1])
        layers = {lay["name"]: lay for lay in m["layers"]}
        for name, e in b.items():
            if mode == "unstructured":
                assert set(e) == {"element_mask", "input_nonzero", "output_grad_nonzero"}
            else:
                assert set(e) == {"line_mask", "shape_mask", "input_nonzero",
                                  "output_grad_nonzero"}
            eff = trace_format.effective_mask(layers[name], e, 16)
            s = 1 - eff.mean()
            if mode == "dense" or name == "conv1":
                assert s == 0, (mode, name)
            else:
                assert s > 0.3, (mode, name, s)
            if mode == "shape-only":
                assert e["line_mask"].all()
            if mode == "line-only":
                assert e["shape_mask"].all()


def test_structured_pruned_filters_give_zero_channels(mode_traces):
    """A pruned filter's channel is zero after its BN, so the next conv sees a zero channel."""
    d = mode_traces["structured"]
    m = manifest(d)
    b = bitmaps(d, m["iterations"][-1])
    seen = 0
    for name in LAYER_NAMES:
        if name.endswith(".conv1") and name != "conv1":
            pruned = ~b[name]["line_mask"].reshape(b[name]["line_mask"].shape[0], -1).all(1)
            nxt = b[name.replace("conv1", "conv2")]["input_nonzero"]
            assert not nxt[:, pruned].any(), name
            seen += int(pruned.sum())
    assert seen > 0


def test_activation_bitmaps_are_real(substructured):
    d = substructured[0]
    m = manifest(d)
    b = bitmaps(d, m["iterations"][-1])
    # the downsample conv reads the same tensor as its block's conv1
    for blk in ("layer2.0", "layer3.0", "layer4.0"):
        assert np.array_equal(b[blk + ".conv1"]["input_nonzero"],
                              b[blk + ".downsample"]["input_nonzero"])
    # post-ReLU inputs have zeros; the normalized image does not
    assert b["layer1.0.conv2"]["input_nonzero"].mean() < 0.9
    assert b["conv1"]["input_nonzero"].mean() > 0.99
    assert b["fc"]["output_grad_nonzero"].any()


def test_same_seed_identical_files(substructured):
    a, b = substructured
    ma, mb = manifest(a), manifest(b)
    ma["source"].pop("command")
    mb["source"].pop("command")
    assert ma == mb
    for it in ma["iterations"]:
        for entry in it["layers"].values():
            for e in entry.values():
                with open(os.path.join(a, e["file"]), "rb") as fa, \
                        open(os.path.join(b, e["file"]), "rb") as fb:
                    assert fa.read() == fb.read(), e["file"]


def test_other_seed_differs(tmp_path, substructured):
    args = [a if a != "3" else "4" for a in TINY]  # --seed 3 -> 4
    assert "4" in args
    out = tmp_path / "s4"
    assert gen_trace.main(args + ["--mode", "sub-structured", "--out", str(out)]) == 0
    ma, mb = manifest(substructured[0]), manifest(str(out))
    f = ma["iterations"][-1]["layers"]["layer1.0.conv1"]["line_mask"]["file"]
    with open(os.path.join(substructured[0], f), "rb") as x, open(out / f, "rb") as y:
        assert x.read() != y.read()
    assert mb["source"]["seed"] == 4


@pytest.mark.parametrize("args", [
    ["--mode", "bogus"],
    ["--width", "-1"],
    ["--width", "abc"],
    ["--sparsity", "1.5"],
    ["--sparsity", "1"],
    ["--trace-batch", "16"],
    ["--record-iterations", "99"],
    ["--record-iterations", "x,y"],
    ["--prune-start", "0.8", "--prune-end", "0.2"],
    ["--initial-sparsity", "0.9"],
    ["--dataset-dir", "/nonexistent/cifar"],
    ["--iterations", "0"],
])
def test_bad_arguments_exit_2(tmp_path, args, capsys):
    with pytest.raises(SystemExit) as exc:
        gen_trace.main(TINY + ["--out", str(tmp_path / "t")] + args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "gen_trace.py: error:" in err


def test_bad_arguments_cli(tmp_path):
    r = run_cli(["--mode", "sub-structured"])  # no --out
    assert r.returncode == 2 and "--out" in r.stderr
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "something").write_text("x")
    r = run_cli(TINY + ["--out", str(tmp_path / "full")])
    assert r.returncode == 2 and "not empty" in r.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_cli(TINY + ["--iterations", "2", "--out", str(tmp_path / "x"),
                        "--dataset-dir", str(empty)])
    assert r.returncode == 2 and "CIFAR-10" in r.stderr


def test_cifar_loader(tmp_path, monkeypatch):
    """--dataset-dir reads CIFAR-10's python batches (a small fake copy here)."""
    import pickle
    import torchvision.datasets.cifar as cifar
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    rng = np.random.default_rng(0)
    names = ["data_batch_%d" % i for i in range(1, 6)] + ["test_batch"]
    for name in names:
        with open(root / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (6, 3072), dtype=np.uint8),
                         "labels": list(rng.integers(0, 10, 6))}, f)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["c%d" % i for i in range(10)]}, f)
    monkeypatch.setattr(cifar, "check_integrity", lambda *a, **k: True)
    name, xtr, ytr, xte, yte, mean, std = trace_data.load_data(str(tmp_path), 0, 0.2, None, 4)
    assert name == "cifar10"
    assert tuple(xtr.shape) == (30, 3, 32, 32) and tuple(xte.shape) == (4, 3, 32, 32)
    assert 0.0 <= float(xtr.min()) and float(xtr.max()) <= 1.0
    assert len(ytr) == 30 and len(yte) == 4


def test_schedule():
    assert trace_pruning.cubic_target(10, 10, 110, 0.0, 0.8) == 0.0
    assert trace_pruning.cubic_target(110, 10, 110, 0.0, 0.8) == 0.8
    assert abs(trace_pruning.cubic_target(60, 10, 110, 0.0, 0.8) - 0.8 * (1 - 0.5 ** 3)) < 1e-12
    assert trace_pruning.update_steps(100, 10, 35, 10) == {10, 20, 30, 35}


def simulator_extra_args():
    """Options added after `$SWPU_SIM --trace DIR --out DIR`: $SWPU_SIM_ARGS if set, else
    `--config configs/swpu.json` when the repository has that chip config."""
    import shlex
    if "SWPU_SIM_ARGS" in os.environ:
        return shlex.split(os.environ["SWPU_SIM_ARGS"])
    cfg = os.path.join(REPO, "configs", "swpu.json")
    return ["--config", cfg] if os.path.isfile(cfg) else []


def test_simulator_accepts_trace(substructured, tmp_path):
    sim = os.environ.get("SWPU_SIM")
    if not sim:
        pytest.skip("SWPU_SIM is not set: set it to the swpu-sim binary to run a generated "
                    "trace through the simulator")
    out = tmp_path / "sim-out"
    cmd = [sim, "--trace", substructured[0], "--out", str(out)] + simulator_extra_args()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert r.returncode == 0, " ".join(cmd) + "\n" + r.stdout + r.stderr
    assert (out / "report.json").is_file()
