"""Claim 6 reads the curve method's result file of scripts/pruning_ratio.py (no training here)."""

import json
import os
import sys

SCRIPTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, SCRIPTS)
from swpu import claims  # noqa: E402


def curve_result():
    return {
        "command": "/usr/bin/python3 scripts/pruning_ratio.py --runs R --out X.json",
        "tolerance_pp": 0.5, "dense_accuracy_mean": 0.9, "accuracy_floor": 0.895,
        "settings": {"dataset": "fashion-mnist", "width": 0.5},
        "modes": {
            "structured": {"ratio_mean": 0.4, "ratio_sd": 0.05, "ratio_ci95_halfwidth": 0.12,
                           "seeds": 2, "per_seed": {
                               "1": {"ratio_interpolated": 0.35, "curve_reached_floor": True},
                               "2": {"ratio_interpolated": 0.45, "curve_reached_floor": True}}},
            "sub-structured": {"ratio_mean": 0.6, "ratio_sd": 0.0, "ratio_ci95_halfwidth": 0.0,
                               "seeds": 2, "per_seed": {
                                   "1": {"ratio_interpolated": 0.6, "curve_reached_floor": True},
                                   "3": {"ratio_interpolated": 0.6,
                                         "curve_reached_floor": False}}}},
        "claim6_gain_sub_vs_structured": {"value": 0.5, "ci95": [0.1, 0.9], "paper": 0.501},
    }


def test_curve_result_maps_onto_claim_6_fields(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(curve_result()))
    res, note = claims.read_pruning_result(str(path))
    assert res["relative_gain_sub_vs_structured"] == 0.5
    assert res["summary"]["structured"]["max_pruning_ratio"] == 0.4
    assert res["summary"]["structured"]["per_seed"] == {"1": 0.35, "2": 0.45}
    assert res["summary"]["sub-structured"]["gain_ci95"] == [0.1, 0.9]
    # seed 3's curve never fell below the floor: the ratio is a lower bound
    assert res["summary"]["sub-structured"]["top_of_sweep_passed"] is True
    assert res["summary"]["structured"]["top_of_sweep_passed"] is False
    assert res["seeds"] == [1, 2, 3] and res["dataset"] == "fashion-mnist"
    assert res["dense_accuracy"] == 0.9


def test_bad_result_files_are_named(tmp_path):
    assert claims.read_pruning_result(str(tmp_path / "none.json"))[0] is None
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    res, note = claims.read_pruning_result(str(bad))
    assert res is None and "bad.json" in note and "object" in note
    bad.write_text("{")
    res, note = claims.read_pruning_result(str(bad))
    assert res is None and "not readable JSON" in note


def test_structured_passing_nowhere_is_inconclusive_not_missed(tmp_path):
    # Structured pruning kept accuracy at no step while sub-structured did: the gain is unbounded,
    # so the claim is not missed; the paired step-matched reading is quoted in the note.
    r = curve_result()
    r["modes"]["structured"]["ratio_mean"] = 0.0
    for s in r["modes"]["structured"]["per_seed"].values():
        s["ratio_interpolated"] = 0.0
    r["claim6_gain_sub_vs_structured"] = {
        "value": None, "paper": 0.501,
        "paired_step_matched_same_seed": {"value": 1.2, "ci95": [0.3, 2.1]}}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(r))
    c6, res = claims.read_claim6(str(path))
    assert res["relative_gain_sub_vs_structured"] is None
    assert c6["status"] == "inconclusive"
    assert "+120.0%" in c6["note"] and "[+30.0%, +210.0%]" in c6["note"]
    # and a result where neither mode passes anywhere is missed
    r["modes"]["sub-structured"]["ratio_mean"] = 0.0
    for s in r["modes"]["sub-structured"]["per_seed"].values():
        s["ratio_interpolated"] = 0.0
    path.write_text(json.dumps(r))
    assert claims.read_claim6(str(path))[0]["status"] == "missed"
