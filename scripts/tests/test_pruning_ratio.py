"""Smoke tests of scripts/pruning_ratio.py (a real sweep takes minutes; these take seconds)."""

import json
import os
import sys

import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch is not importable by this interpreter; run the tests with "
                    "/usr/bin/python3 -m pytest scripts/tests (Debian's python3-torch)")
torch.set_num_threads(1)

SCRIPTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, SCRIPTS)
import pruning_ratio  # noqa: E402

TINY = ["--width", "0.125", "--threads", "1", "--sparsities", "0.5,0.9",
        "--train-args", "--iterations 3 --batch-size 8 --test-images 20"]


def test_tiny_sweep_writes_json(tmp_path, capsys):
    out = tmp_path / "ratio.json"
    assert pruning_ratio.main(TINY + ["--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["paper_relative_gain"] == 0.501
    assert set(r["summary"]) == {"structured", "sub-structured"}
    assert len(r["runs"]) == 1 + 2 * 2
    assert [pt["target"] for pt in r["sweep"]["structured"]] == [0.5, 0.9]
    for mode, s in r["summary"].items():
        ok = [pt for pt in r["sweep"][mode] if pt["within_tolerance"]]
        assert s["max_pruning_ratio"] == (max(pt["pruning_ratio"] for pt in ok) if ok else 0.0)
        for pt in r["sweep"][mode]:
            assert pt["within_tolerance"] == (
                pt["test_accuracy"] >= r["dense_accuracy"] - r["tolerance_pp"] / 100 - 1e-9)
    rs = r["summary"]["structured"]["max_pruning_ratio"]
    rsub = r["summary"]["sub-structured"]["max_pruning_ratio"]
    if rs > 0:
        assert abs(r["relative_gain_sub_vs_structured"] - (rsub / rs - 1)) < 1e-5
    assert "paper: +50.1%" in capsys.readouterr().out or rs == 0


@pytest.mark.parametrize("args", [
    ["--modes", "dense"],
    ["--modes", "bogus"],
    ["--sparsities", "1.2"],
    ["--seeds", "a"],
    ["--tolerance", "-1"],
    ["--width", "0"],
    ["--train-args", "--lr -3"],
])
def test_bad_arguments_exit_2(args):
    with pytest.raises(SystemExit) as exc:
        pruning_ratio.main(TINY + args)
    assert exc.value.code == 2
