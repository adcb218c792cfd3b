"""swpu_trace.py check follows swpu-sim's key rules (docs/workload.md section 5): unknown keys and
duplicated keys are problems at every level, and the optional keys may be omitted."""

import copy
import json
import os
import shutil
import sys

import pytest

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, SCRIPTS)
import swpu_trace  # noqa: E402

SHIPPED = os.path.join(SCRIPTS, "..", "configs", "traces", "resnet18-cifar-digits-substructured")


@pytest.fixture
def trace(tmp_path):
    d = str(tmp_path / "trace")
    shutil.copytree(SHIPPED, d)
    return d


def rewrite(d, m):
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(m, f)


def test_the_shipped_trace_is_valid(trace):
    assert swpu_trace.check_trace(trace, load_bitmaps=False) == []


@pytest.mark.parametrize("where", ["", "network", "pruning", "layers.0", "iterations.0",
                                   "iterations.0.layers.conv1", "iterations.0.layers.conv1.line_mask"])
def test_unknown_key_at_every_level(trace, where):
    m = swpu_trace.load_manifest(trace)
    obj = m
    for part in filter(None, where.split(".")):
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    obj["fc_blok"] = 16
    rewrite(trace, m)
    problems = swpu_trace.check_trace(trace, load_bitmaps=False)
    assert any("unknown field 'fc_blok'" in p for p in problems), problems


def test_duplicated_key(trace):
    with open(os.path.join(trace, "manifest.json")) as f:
        text = f.read()
    assert '"batch": 4' in text
    with open(os.path.join(trace, "manifest.json"), "w") as f:
        f.write(text.replace('"batch": 4', '"batch": 4, "batch": 8', 1))
    problems = swpu_trace.check_trace(trace, load_bitmaps=False)
    assert problems and "duplicate key 'batch'" in problems[0], problems


def test_optional_keys_may_be_omitted(trace):
    base = swpu_trace.load_manifest(trace)
    m = copy.deepcopy(base)
    for key in ("width", "num_classes", "input"):
        del m["network"][key]
    del m["pruning"]["fc_block"]
    for it in m["iterations"]:
        for key in ("mask_update", "loss", "accuracy"):
            it.pop(key, None)
    del m["source"]
    rewrite(trace, m)
    assert swpu_trace.check_trace(trace, load_bitmaps=False) == []


# Format v2: recorded FP16 tensors (docs/trace-format.md, "Version 2"), checked by the loader's rules.
TENSORS = os.path.join(SCRIPTS, "..", "tests", "data", "resnet18-cifar-digits-tensors")


@pytest.fixture
def v2(tmp_path):
    d = str(tmp_path / "v2")
    shutil.copytree(TENSORS, d)
    return d


def _tensor_entry(d, key="input"):
    m = swpu_trace.load_manifest(d)
    for name, e in m["iterations"][0]["layers"].items():
        if key in e:
            return m, name, e
    raise AssertionError("the bundled v2 trace records no %s" % key)


def test_the_bundled_v2_trace_is_valid(v2):
    assert swpu_trace.check_trace(v2) == []
    assert swpu_trace.main(["check", v2]) == 0


def test_tensor_keys_are_unknown_in_a_v1_manifest(v2):
    m = swpu_trace.load_manifest(v2)
    m["version"] = 1
    rewrite(v2, m)
    problems = swpu_trace.check_trace(v2)
    assert any("unknown field 'input'" in p for p in problems), problems


def test_a_non_zero_value_where_the_bitmap_is_zero(v2):
    import numpy as np
    from swpu.trace_format import read_bitmap
    m = swpu_trace.load_manifest(v2)
    for name, e in m["iterations"][0]["layers"].items():
        if "input" in e and not read_bitmap(v2, e["input_nonzero"]).all():
            break
    else:
        raise AssertionError("no recorded input with a zero to corrupt")
    bits = read_bitmap(v2, e["input_nonzero"])
    path = os.path.join(v2, e["input"]["file"])
    a = np.load(path)
    a[tuple(np.argwhere(~bits)[0])] = np.float16(1.5)
    np.save(path, a)
    assert swpu_trace.check_trace(v2) == \
        ["iteration %s/%s: input: a non-zero value where input_nonzero is 0" % (m["iterations"][0]["index"], name)]


@pytest.mark.parametrize("damage", ["float32", "transposed", "nan"])
def test_a_broken_tensor_file(v2, damage):
    import numpy as np
    m, name, e = _tensor_entry(v2, "weight")
    path = os.path.join(v2, e["weight"]["file"])
    a = np.load(path)
    if damage == "float32":
        a = a.astype(np.float32)
    elif damage == "transposed":
        a = np.ascontiguousarray(a.reshape(a.shape[0], -1).T)
    else:
        a.flat[0] = np.float16("nan")
    np.save(path, a)
    problems = swpu_trace.check_trace(v2)
    want = {"float32": "dtype float32", "transposed": "array shape", "nan": "not finite"}[damage]
    assert any(want in p and name in p and "weight" in p for p in problems), problems
