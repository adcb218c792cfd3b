"""Re-pricing saved action counts (scripts/swpu/reprice.py, scripts/reprice.py): the re-priced
energy equals a fresh simulation's within float rounding for a voltage change at a fixed clock and
for an energy-table change; a change that moves the clock, or any non-energy field, re-simulates
and says so. Simulations use workload.width=0.25."""

import csv
import os
import subprocess
import sys

import pytest

from simulator import REPO, SCRIPTS, SIM, needs_sim  # noqa: E402,F401

sys.path.insert(0, SCRIPTS)
from swpu import reprice, sweep  # noqa: E402

CONFIG = os.path.join(REPO, "configs", "swpu.json")
REPRICE = os.path.join(SCRIPTS, "reprice.py")
SWEEP = os.path.join(SCRIPTS, "sweep.py")
BASE = [("workload.width", "0.25"), ("chip.frequency_mhz", "200")]
ENERGY_FIELDS = ["chip_uj", "dram_uj", "total_uj", "power_mw", "system_power_mw",
                 "effective_tflops_per_w", "real_tflops_per_w", "system_effective_tflops_per_w"]


def fresh(tmp_path, name, sets):
    s = sweep.Sweep(SIM, CONFIG, None, BASE, str(tmp_path / name))
    rec = sweep.run_task(s.task(name, sets))
    assert rec["status"] == "ok", rec["error"]
    return rec


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return fresh(tmp_path_factory.mktemp("saved"), "saved", [("chip.voltage", "1.0")])


def assert_same_energy(got, want):
    for k in ENERGY_FIELDS:
        assert got[k] == pytest.approx(want[k], rel=1e-12, abs=0), k
    comps = [k for k in want if k.startswith("energy_")]
    assert comps and sorted(comps) == sorted(k for k in got if k.startswith("energy_"))
    for k in comps:
        assert got[k] == pytest.approx(want[k], rel=1e-12, abs=1e-15), k


@needs_sim
@pytest.mark.parametrize("new", [
    [("chip.voltage", "0.7")],                      # the clock is fixed at 200 MHz
    [("energy.fp16_mult_pj", "1.1"), ("energy.cal_sram", "0.9"),
     ("energy.dram_pj_per_bit", "4"), ("energy.leakage_sram_mw", "12")],
    [("chip.voltage", "0.6"), ("energy.clock_pj_per_cycle", "20")],
])
def test_repriced_energy_equals_a_fresh_simulation(saved, tmp_path, new):
    got, why = reprice.reprice_record(SIM, saved["cmd"], saved, new)
    assert why is None
    want = fresh(tmp_path, "fresh", [("chip.voltage", "1.0")] + new)["metrics"]
    assert_same_energy(got, want)
    assert got["cycles"] == want["cycles"]
    # and the change was real
    assert got["chip_uj"] != saved["metrics"]["chip_uj"]


@needs_sim
def test_a_clock_change_is_detected(saved):
    got, why = reprice.reprice_record(SIM, saved["cmd"], saved, [("chip.frequency_mhz", "300")])
    assert got is None and "clock changes from 200 to 300 MHz" in why and "ns" in why


@needs_sim
def test_other_fields_are_detected(saved):
    got, why = reprice.reprice_record(SIM, saved["cmd"], saved, [("workload.batch", "2")])
    assert got is None and "workload.batch" in why


def test_decide_without_the_simulator():
    cfg = {"chip": {"voltage": 1.0}, "energy": {"a_pj": 1.0}, "dram": {"latency_ns": 100.0}}
    p = {"clock_mhz": 675.0, "cycles": 10, "actions": []}
    assert reprice.decide(cfg, {"chip": {"voltage": 0.9}, "energy": {"a_pj": 2.0},
                                "dram": {"latency_ns": 100.0}}, p, dict(p)) == (True, "")
    ok, why = reprice.decide(cfg, {"chip": {"voltage": 1.0}, "energy": {"a_pj": 1.0},
                                   "dram": {"latency_ns": 50.0}}, p, dict(p))
    assert not ok and "dram.latency_ns" in why
    ok, why = reprice.decide(cfg, cfg, p, dict(p, clock_mhz=500.0))
    assert not ok and "clock" in why
    ok, why = reprice.decide(cfg, cfg, None, p)
    assert not ok and "no priced action counts" in why


@needs_sim
def test_reprice_command(tmp_path):
    out = str(tmp_path / "sw")
    p = subprocess.run([sys.executable, SWEEP, "--config", CONFIG, "--sim", SIM, "--cluster",
                        "local:2", "--out", out, "--param", "chip.voltage=0.8,1.0",
                        "--set", "workload.width=0.25"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       timeout=240)
    assert p.returncode == 0, p.stderr
    # an energy-table change: every point re-priced
    new = str(tmp_path / "dram4")
    p = subprocess.run([sys.executable, REPRICE, "--sim", SIM, "--sweep", out, "--set",
                        "energy.dram_pj_per_bit=4", "--out", new], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=240)
    assert p.returncode == 0, p.stderr
    assert "2 points re-priced from their action counts, 0 re-simulated" in p.stderr
    with open(os.path.join(new, "repriced.csv")) as f:
        rows = list(csv.DictReader(f))
    with open(os.path.join(out, "sweep.csv")) as f:
        old = {r["key"]: r for r in csv.DictReader(f)}
    for r in rows:
        assert r["method"] == "repriced"
        assert float(r["dram_uj"]) == pytest.approx(float(old[r["key"]]["dram_uj"]) / 2, rel=1e-12)
        assert r["chip_uj"] == old[r["key"]]["chip_uj"]
    # the points run at f_max(V): another voltage moves the clock, so they are re-simulated
    new = str(tmp_path / "v07")
    p = subprocess.run([sys.executable, REPRICE, "--sim", SIM, "--sweep", out, "--set",
                        "chip.voltage=0.7", "--out", new, "--cluster", "local:2"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       timeout=240)
    assert p.returncode == 0, p.stderr
    assert "0 points re-priced from their action counts, 2 re-simulated" in p.stderr
    assert "re-simulating 1 point: the clock changes from" in p.stderr
    with open(os.path.join(new, "repriced.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [r["method"] for r in rows] == ["simulated", "simulated"]
    assert all(r["status"] == "ok" and "DRAM timing is in ns" in r["reason"] for r in rows)
    assert float(rows[0]["clock_mhz"]) == pytest.approx(391.6, abs=0.1)
    # bad input: exit 2, nothing written
    for args, msg in ((["--set", "chip.voltage=5"], "refused"), ([], "at least one --set"),
                      (["--set", "energy.nope=1"], "refused")):
        bad = str(tmp_path / "bad")
        p = subprocess.run([sys.executable, REPRICE, "--sim", SIM, "--sweep", out, "--out", bad]
                           + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=60)
        assert p.returncode == 2 and msg in p.stderr, p.stderr
        assert not os.path.exists(bad)
