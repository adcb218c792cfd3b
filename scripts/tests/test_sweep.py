"""Tests of the sweep scripts (scripts/sweep.py, scripts/sweep_vf.py) on the local runner.

Run with the system interpreter (Debian numpy/pandas/matplotlib/pytest):

    /usr/bin/python3 -m pytest scripts/tests/test_sweep.py

The simulator is $SWPU_SIM if set, else <repo>/build/swpu-sim; the tests that run it are
skipped when it is not built. Every simulation uses workload.width=0.25 (about 0.3 s each).
"""

import csv
import os
import subprocess
import sys

import pytest

from simulator import REPO, SCRIPTS, SIM, needs_sim  # noqa: E402,F401
SWEEP = os.path.join(SCRIPTS, "sweep.py")
SWEEP_VF = os.path.join(SCRIPTS, "sweep_vf.py")
CONFIG = os.path.join(REPO, "configs", "swpu.json")
sys.path.insert(0, SCRIPTS)
from swpu import cli, simulator  # noqa: E402

FAST = ["--set", "workload.width=0.25"]
REQUIRED_METRICS = ["cycles", "time_us", "utilization", "clock_mhz", "chip_uj", "dram_uj",
                    "power_mw", "effective_tflops", "effective_tflops_per_w",
                    "real_tflops_per_w", "system_effective_tflops_per_w"]


def run(script, *args):
    return subprocess.run([sys.executable, script] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=120)


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    with open(path, newline="") as f:
        header = next(csv.reader(f))
    return header, rows


def is_png(path):
    with open(path, "rb") as f:
        head = f.read(8)
    return head == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 2000


# ----------------------------------------------------------------------------- sweep_vf.py

@pytest.fixture(scope="module")
def vf(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("vf"))
    # 1.2 V is outside the supply range: those two points must fail
    p = run(SWEEP_VF, "--config", CONFIG, "--sim", SIM, "--voltages", "0.56,1.0,1.2",
            "--freq-fractions", "1.0,0.5", "--jobs", "2", "--out", out, *FAST)
    header, rows = read_csv(os.path.join(out, "sweep_vf.csv")) if os.path.exists(
        os.path.join(out, "sweep_vf.csv")) else (None, None)
    return {"out": out, "proc": p, "header": header, "rows": rows}


def vf_row(rows, v, frac):
    hits = [r for r in rows if float(r["voltage"]) == v and float(r["freq_fraction"]) == frac]
    assert len(hits) == 1, (v, frac)
    return hits[0]


@needs_sim
def test_vf_exit_status_and_rows(vf):
    p = vf["proc"]
    assert p.returncode == 1, p.stderr  # some points failed
    assert vf["rows"] is not None, p.stderr
    assert len(vf["rows"]) == 6
    got = [(float(r["voltage"]), float(r["freq_fraction"])) for r in vf["rows"]]
    assert got == [(0.56, 1.0), (0.56, 0.5), (1.0, 1.0), (1.0, 0.5), (1.2, 1.0), (1.2, 0.5)]
    assert "2 failed" in p.stderr
    # the Markdown summary on stdout, failed points included
    assert "| 1 | 1 | 675.0 |" in p.stdout
    assert p.stdout.count("failed") == 2


@needs_sim
def test_vf_columns(vf):
    h = vf["header"]
    for c in ["point", "voltage", "frequency_mhz", "freq_fraction", "status", "error"] + REQUIRED_METRICS:
        assert c in h, c
    energy = [c for c in h if c.startswith("energy_") and c.endswith("_uj")]
    assert "energy_leakage_uj" in energy and "energy_pe_array_uj" in energy
    assert len(h) == len(set(h))


@needs_sim
def test_vf_failed_points_reported(vf):
    for frac in (1.0, 0.5):
        r = vf_row(vf["rows"], 1.2, frac)
        assert r["status"] == "failed"
        assert "chip.voltage" in r["error"]
        assert r["cycles"] == "" and r["chip_uj"] == ""
        assert r["point"] in vf["proc"].stderr
    for v in (0.56, 1.0):
        for frac in (1.0, 0.5):
            r = vf_row(vf["rows"], v, frac)
            assert r["status"] == "ok", r["error"]
            assert r["error"] == ""
            assert os.path.isfile(os.path.join(vf["out"], "points", r["point"], "report.json"))


@needs_sim
def test_vf_frequencies(vf):
    rows = vf["rows"]
    assert float(vf_row(rows, 1.0, 1.0)["frequency_mhz"]) == pytest.approx(675.0, rel=1e-9)
    assert float(vf_row(rows, 1.0, 1.0)["clock_mhz"]) == pytest.approx(675.0, rel=1e-9)
    assert float(vf_row(rows, 1.0, 0.5)["clock_mhz"]) == pytest.approx(337.5, rel=1e-9)
    f056 = f_max_by_hand(0.56)
    assert float(vf_row(rows, 0.56, 1.0)["clock_mhz"]) == pytest.approx(f056, rel=1e-9)
    assert float(vf_row(rows, 0.56, 1.0)["f_max_mhz"]) == pytest.approx(f056, rel=1e-9)
    assert float(vf_row(rows, 0.56, 0.5)["clock_mhz"]) == pytest.approx(f056 / 2, rel=1e-9)
    # the failed points still carry the frequency they were asked to run at
    assert float(vf_row(rows, 1.2, 1.0)["frequency_mhz"]) == pytest.approx(f_max_by_hand(1.2))


@needs_sim
def test_vf_values_sensible(vf):
    rows = vf["rows"]
    lo, hi = vf_row(rows, 0.56, 1.0), vf_row(rows, 1.0, 1.0)
    g = lambda r, c: float(r[c])  # noqa: E731
    assert g(lo, "effective_tflops_per_w") > g(hi, "effective_tflops_per_w")
    assert g(lo, "power_mw") < g(hi, "power_mw")
    assert g(lo, "effective_tflops") < g(hi, "effective_tflops")
    assert g(lo, "time_us") > g(hi, "time_us")
    assert g(lo, "valid_macs") == g(hi, "valid_macs") > 0
    for r in rows:
        if r["status"] != "ok":
            continue
        assert g(r, "cycles") > 0 and 0 < g(r, "utilization") <= 1
        assert g(r, "chip_uj") > 0 and g(r, "dram_uj") > 0
        parts = sum(float(r[c]) for c in r if c.startswith("energy_") and r[c] != "")
        assert parts == pytest.approx(g(r, "chip_uj"), rel=1e-6)
        # power = chip energy / time
        assert g(r, "power_mw") == pytest.approx(g(r, "chip_uj") / g(r, "time_us") * 1e3, rel=1e-6)


@needs_sim
def test_vf_plots(vf):
    for name in ("efficiency_vs_voltage.png", "throughput_vs_voltage.png",
                 "power_vs_voltage.png", "energy_breakdown_vs_voltage.png"):
        path = os.path.join(vf["out"], name)
        assert os.path.isfile(path), name
        assert is_png(path), name
    leftovers = [f for f in os.listdir(vf["out"]) if f.startswith(".")]
    assert leftovers == []


# ----------------------------------------------------------------------------- sweep.py

@needs_sim
def test_sweep_cartesian_with_failures(tmp_path):
    out = str(tmp_path / "s")
    # 700 MHz is above f_max at both voltages: those points fail
    p = run(SWEEP, "--config", CONFIG, "--sim", SIM, "--param", "chip.voltage=0.56,1.0",
            "--param", "chip.frequency_mhz=200,700", "--jobs", "2", "--out", out, *FAST)
    assert p.returncode == 1, p.stderr
    header, rows = read_csv(os.path.join(out, "sweep.csv"))
    assert header[:5] == ["point", "chip.voltage", "chip.frequency_mhz", "status", "error"]
    for c in REQUIRED_METRICS + ["energy_leakage_uj"]:
        assert c in header, c
    assert [(r["chip.voltage"], r["chip.frequency_mhz"], r["status"]) for r in rows] == [
        ("0.56", "200", "ok"), ("0.56", "700", "failed"),
        ("1.0", "200", "ok"), ("1.0", "700", "failed")]
    for r in rows:
        if r["status"] == "ok":
            assert float(r["clock_mhz"]) == pytest.approx(200.0)
            assert float(r["cycles"]) > 0
            assert os.path.isdir(os.path.join(out, "points", r["point"]))
        else:
            assert "frequency_mhz" in r["error"] and "f_max" in r["error"]
            assert "FAILED" in p.stderr and r["point"] in p.stderr
    # at the same clock, the lower voltage is more efficient
    assert float(rows[0]["effective_tflops_per_w"]) > float(rows[2]["effective_tflops_per_w"])


@needs_sim
def test_sweep_all_ok_exits_0(tmp_path):
    out = str(tmp_path / "ok")
    p = run(SWEEP, "--config", CONFIG, "--sim", SIM, "--param", "workload.batch=1",
            "--out", out, "-q", *FAST)
    assert p.returncode == 0, p.stderr
    header, rows = read_csv(os.path.join(out, "sweep.csv"))
    assert len(rows) == 1 and rows[0]["status"] == "ok" and rows[0]["workload.batch"] == "1"
    assert sorted(os.listdir(out)) == ["points", "sweep.csv"]  # no temp file left behind


@needs_sim
def test_sweep_checks_the_engines_on_its_own_points(tmp_path):
    # A fast-engine sweep reruns its points on the cycle engine and reports the difference.
    out = str(tmp_path / "eng")
    p = run(SWEEP, "--config", CONFIG, "--sim", SIM, "--param", "dbl.line_buffers=1,4",
            "--engine", "fast", "--check-engines", "2", "--out", out, "-q", *FAST)
    assert p.returncode == 0, p.stderr
    assert "rerun on the cycle engine" in p.stderr, p.stderr
    header, rows = read_csv(os.path.join(out, "engine_check.csv"))
    assert len(rows) == 2
    for r in rows:
        assert r["status"] == "ok" and r["engine"] == "fast" and r["other_engine"] == "cycle"
        assert abs(float(r["difference_pct"])) < 1.0  # the corpus bound is 2.6%; these are plain points
        assert int(r["cycles"]) > 0 and int(r["other_cycles"]) > 0


# ----------------------------------------------------------------------------- bad arguments

BAD_SWEEP = [
    ([], "--param"),
    (["--param", "chip.voltage"], "PATH=VALUE"),
    (["--param", "chip.voltage=0.6,,0.7"], "empty value"),
    (["--param", "chip.no_such_field=1"], "unknown config parameter"),
    (["--param", "chip.voltage=0.6", "--set", "chip.voltage=0.7"], "both"),
    (["--param", "chip.voltage=0.6", "--jobs", "0"], "--jobs"),
    (["--param", "chip.voltage=0.6", "--set", "workload.batch=abc"], "refused"),
    (["--param", "chip.voltage=0.6", "--trace", "/nonexistent/trace"], "trace directory"),
    (["--param", "chip.voltage=0.6", "--bogus-option"], "unrecognized"),
]

BAD_VF = [
    (["--voltages", "0.6,abc"], "not a number"),
    (["--voltages", "0.6", "--vmin", "0.6"], "not both"),
    (["--vmin", "0.9", "--vmax", "0.6"], "above"),
    (["--freq-fractions", "1.0,0"], "positive"),
    (["--voltages", "0.6", "--set", "chip.frequency_mhz=100"], "swept by this script"),
    (["--steps", "0"], "--steps"),
]


@needs_sim
@pytest.mark.parametrize("args,msg", BAD_SWEEP)
def test_sweep_bad_arguments_exit_2(tmp_path, args, msg):
    out = str(tmp_path / "bad")
    p = run(SWEEP, "--config", CONFIG, "--sim", SIM, "--out", out, *args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert msg in p.stderr
    assert not os.path.exists(out)


@needs_sim
@pytest.mark.parametrize("args,msg", BAD_VF)
def test_vf_bad_arguments_exit_2(tmp_path, args, msg):
    out = str(tmp_path / "bad")
    p = run(SWEEP_VF, "--config", CONFIG, "--sim", SIM, "--out", out, *args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert msg in p.stderr
    assert not os.path.exists(out)


def test_missing_simulator_or_config_exit_2(tmp_path):
    out = str(tmp_path / "bad")
    p = run(SWEEP, "--config", CONFIG, "--sim", str(tmp_path / "no-sim"), "--param",
            "chip.voltage=0.6", "--out", out)
    assert p.returncode == 2 and "not found" in p.stderr
    p = run(SWEEP_VF, "--config", str(tmp_path / "none.json"), "--sim", SIM, "--out", out)
    assert p.returncode == 2 and "error" in p.stderr
    p = run(SWEEP_VF, "--config", CONFIG, "--sim", SIM)  # no --out
    assert p.returncode == 2
    assert not os.path.exists(out)


# ----------------------------------------------------------------------------- helpers

def f_max_by_hand(v):
    """The alpha-power law of docs/energy.md with the default chip's constants, written out here
    so that the simulator's answer is checked against an independent computation."""
    return 675.0 * ((v - 0.40) ** 1.3 / v) / ((1.0 - 0.40) ** 1.3 / 1.0)


@needs_sim
def test_f_max_comes_from_the_simulator():
    for v in (0.56, 0.7, 1.0):
        assert simulator.f_max_mhz(SIM, CONFIG, [], v) == pytest.approx(f_max_by_hand(v), rel=1e-12)
    # a voltage the chip refuses still gets its f_max (the point then fails in the simulator)
    assert simulator.f_max_mhz(SIM, CONFIG, [], 1.2) == pytest.approx(f_max_by_hand(1.2), rel=1e-12)
    # the config's own constants are honoured
    assert simulator.f_max_mhz(SIM, CONFIG, [("chip.f_max_mhz_at_vnom", "700")], 1.0) == 700.0
    p = simulator.pricing(SIM, CONFIG, [("chip.voltage", "0.56")])
    assert p["f_max_mhz"] == pytest.approx(f_max_by_hand(0.56), rel=1e-12)
    assert p["clock_mhz"] == p["f_max_mhz"]


def test_last_line_and_slug():
    assert simulator.last_line("banner\n\nswpu-sim: config error: x\n\n", 2) == "swpu-sim: config error: x"
    assert simulator.last_line("", 2) == "exit status 2, no message on stderr"
    assert simulator.last_line("", -9) == "killed by signal SIGKILL"
    assert "/" not in cli.slug([("workload.network", "a/b"), ("chip.voltage", "0.6")])
