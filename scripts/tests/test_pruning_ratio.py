"""Tests of scripts/pruning_ratio.py (a real measurement takes an hour; these take seconds on
the tiny digits data set) and of the curve reading in swpu.pruning_curve."""

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
from swpu import pruning_curve  # noqa: E402

TINY = ["--dataset", "digits", "--width", "0.125", "--threads", "1",
        "--pretrain-iterations", "4", "--finetune-iterations", "3", "--ramp-updates", "2",
        "--update-interval", "1", "--levels", "0.5,0.9", "--test-images", "60",
        "--seeds", "1,2", "--modes", "structured,sub-structured,unstructured"]


def test_crossing_reads_the_first_failure_and_interpolates():
    pts = [(0.3, 0.90), (0.5, 0.89), (0.7, 0.86), (0.8, 0.88)]
    # 0.5 passes (0.89 >= 0.88), 0.7 fails: the floor is crossed a third of the way to 0.7
    step, interp = pruning_curve.crossing(pts, 0.88)
    assert step == 0.5
    assert abs(interp - (0.5 + 0.2 * (0.89 - 0.88) / (0.89 - 0.86))) < 1e-12
    assert pruning_curve.crossing(pts, 0.80) == (0.8, 0.8)  # nothing fails
    assert pruning_curve.crossing(pts, 0.95) == (0.0, 0.0)  # the first step already fails


def test_tiny_measurement_writes_a_self_describing_summary(tmp_path, capsys):
    runs, out, png = tmp_path / "runs", tmp_path / "ratio.json", tmp_path / "curves.png"
    assert pruning_ratio.main(TINY + ["--runs", str(runs), "--out", str(out),
                                      "--plot", str(png)]) == 0
    log = capsys.readouterr().out.splitlines()
    # every seed is pre-trained before the first curve starts
    pre = [i for i, line in enumerate(log) if line.startswith("pretrained seed")]
    first_step = min(i for i, line in enumerate(log) if " step 0:" in line)
    assert len(pre) == 2 and max(pre) < first_step
    r = json.loads(out.read_text())
    assert r["command"].startswith("/usr/bin/python3 scripts/pruning_ratio.py ")
    assert set(r["dense_accuracy_per_seed"]) == {"1", "2"}
    assert set(r["modes"]) == {"structured", "sub-structured", "unstructured"}
    for s in ("1", "2"):  # a dense run is tested at every step; its last one is the reference
        dense = r["curves"]["dense-seed" + s]
        assert [p["target"] for p in dense] == [0.5, 0.9]
        assert r["dense_accuracy_per_seed"][s] == dense[-1]["test_accuracy"]
    assert r["modes"]["structured"]["seeds"] == 2 and r["modes"]["unstructured"]["seeds"] == 1
    floor = r["dense_accuracy_mean"] - r["tolerance_pp"] / 100
    assert abs(r["accuracy_floor"] - floor) < 1e-6
    for mode, d in r["modes"].items():
        vals = [v["ratio_interpolated"] for v in d["per_seed"].values()]
        assert abs(d["ratio_mean"] - sum(vals) / len(vals)) < 1e-4
        for seed, v in d["per_seed"].items():
            curve = r["curves"]["%s-seed%s" % (mode, seed)]
            step, interp = pruning_curve.crossing(
                [(p["pruning_ratio"], p["test_accuracy"]) for p in curve], r["accuracy_floor"])
            assert v["ratio_interpolated"] == round(interp, 4)
            assert [p["target"] for p in curve] == [0.5, 0.9][:len(curve)]
    g = r["claim6_gain_sub_vs_structured"]
    st, sub = r["modes"]["structured"]["ratio_mean"], r["modes"]["sub-structured"]["ratio_mean"]
    if st > 0:
        assert abs(g["value"] - (sub / st - 1)) < 1e-3
    pg = g.get("paired")
    if pg:  # the paired estimate has the same point value over the common seeds
        assert pg["seeds"] == [1, 2] and abs(pg["value"] - g["value"]) < 1e-3
        assert pg["ci95"][0] <= pg["value"] <= pg["ci95"][1]
    assert png.stat().st_size > 1000
    # resuming: every run is on disk, so a second call trains nothing and changes no run file
    before = {p.name: p.read_text() for p in runs.glob("*.json")}
    assert len(before) == 2 + 2 * 2 + 1
    capsys.readouterr()
    assert pruning_ratio.main(TINY + ["--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "pretrained" not in out and "step 0:" not in out
    assert {p.name: p.read_text() for p in runs.glob("*.json")} == before


def test_summarize_only_names_a_broken_run_file(tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "dense-seed1.json").write_text("{not json")
    with pytest.raises(SystemExit) as exc:
        pruning_ratio.main(["--runs", str(runs), "--summarize-only"])
    assert exc.value.code == 2
    assert "dense-seed1.json" in capsys.readouterr().err


@pytest.mark.parametrize("args", [
    ["--modes", "dense"],
    ["--modes", "bogus"],
    ["--levels", "1.2"],
    ["--levels", "0.9,0.5"],
    ["--seeds", "a"],
    ["--tolerance", "-1"],
    ["--width", "0"],
    ["--dataset", "imagenet"],
    ["--out", "/nonexistent-dir/x.json"],
])
def test_bad_arguments_exit_2(args, tmp_path):
    with pytest.raises(SystemExit) as exc:
        pruning_ratio.main(TINY + ["--runs", str(tmp_path / "r")] + args)
    assert exc.value.code == 2


def test_claim6_paired_interval_uses_the_seeds_covariance():
    # dense 0.90 in every seed, floor 0.895; each curve crosses the floor halfway between its
    # last two points, so the ratios are known: structured 0.35/0.45/0.55, sub 0.55/0.65/0.75
    def curve(r0):
        return [{"target": r0, "pruning_ratio": r0, "test_accuracy": 0.90},
                {"target": r0 + 0.1, "pruning_ratio": r0 + 0.1, "test_accuracy": 0.89}]
    runs = {("dense", s): {"points": [{"target": 0.9, "pruning_ratio": 0.0,
                                       "test_accuracy": 0.90}], "settings": {}}
            for s in (1, 2, 3)}
    for s, r0 in zip((1, 2, 3), (0.3, 0.4, 0.5)):
        runs[("structured", s)] = {"points": curve(r0)}
        runs[("sub-structured", s)] = {"points": curve(r0 + 0.2)}
    r = pruning_ratio.summarize(runs, 0.5, "cmd")
    g = r["claim6_gain_sub_vs_structured"]
    # no step holds both modes in the same seed here: nothing to pair
    assert r["accuracy_per_step"]["sub_minus_structured_paired"] == {}
    assert abs(g["value"] - (0.65 / 0.45 - 1)) < 1e-4
    pg = g["paired"]
    assert pg["seeds"] == [1, 2, 3] and pg["value"] == g["value"]
    assert pg["per_seed_gain"] == {"1": round(0.55 / 0.35 - 1, 4), "2": round(0.65 / 0.45 - 1, 4),
                                   "3": round(0.75 / 0.55 - 1, 4)}
    # perfectly co-varying seeds: the paired interval is much narrower than the independent one
    width = lambda ci: ci[1] - ci[0]  # noqa: E731
    assert pg["ci95"][0] <= pg["value"] <= pg["ci95"][1]
    assert width(pg["ci95"]) < 0.5 * width(g["ci95"])
    # every seed's dense run is at the mean here: its own floor gives the same ratios
    assert g["paired_same_seed_dense"]["ci95"] == pg["ci95"]


def test_step_matched_floor_follows_the_dense_runs_step_by_step():
    # the dense runs still learn along the staircase (0.88 -> 0.90): against the final dense
    # mean (floor 0.895) the first pruned step fails; against the dense mean at the same step
    # (floors 0.875, 0.895) it passes and the crossing lies 3/5 of the way to the second step
    runs = {("dense", s): {"points": [{"target": 0.1, "pruning_ratio": 0.0, "test_accuracy": 0.88},
                                      {"target": 0.2, "pruning_ratio": 0.0, "test_accuracy": 0.90}],
                           "settings": {}} for s in (1, 2)}
    for s in (1, 2):
        runs[("structured", s)] = {"points": [
            {"target": 0.1, "pruning_ratio": 0.1, "test_accuracy": 0.878},
            {"target": 0.2, "pruning_ratio": 0.2, "test_accuracy": 0.893}]}
        runs[("sub-structured", s)] = {"points": [
            {"target": 0.1, "pruning_ratio": 0.1, "test_accuracy": 0.878 + 0.001 * s}]}
    r = pruning_ratio.summarize(runs, 0.5, "cmd")
    assert r["dense_accuracy_mean_per_step"] == {"0.1": 0.88, "0.2": 0.9}
    v = r["modes"]["structured"]["per_seed"]["1"]
    assert v["ratio_interpolated"] == 0.0
    assert abs(v["ratio_step_matched"] - 0.16) < 1e-4
    assert abs(r["modes"]["structured"]["step_matched_ratio_mean"] - 0.16) < 1e-4
    # both seeds' dense runs are the mean here: the seed's own step-matched floor agrees
    assert abs(v["ratio_step_matched_same_seed"] - 0.16) < 1e-4
    ps = r["accuracy_per_step"]["structured"]
    assert ps["0.1"]["seeds"] == [1, 2] and abs(ps["0.1"]["vs_dense_same_step_pp"] + 0.2) < 1e-6
    assert abs(ps["0.2"]["vs_dense_end_pp"] + 0.7) < 1e-6
    # sub-structured minus structured, paired by seed: +0.1 and +0.2 points at the first step
    d = r["accuracy_per_step"]["sub_minus_structured_paired"]
    assert list(d) == ["0.1"] and d["0.1"]["seeds"] == [1, 2]
    assert abs(d["0.1"]["mean_pp"] - 0.15) < 1e-6 and abs(d["0.1"]["sd_pp"] - 0.0707) < 1e-3
