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
