#!/usr/bin/python3
"""Fits the energy calibration factor of swpu-sim to the paper's peak efficiency.

Runs the peak condition (configs/peak.json) with every on-chip calibration factor at 1.0, reads the
convolution passes' effective TFLOPS/W (report.json energy.conv), and prints the one factor k that,
applied to every on-chip component class (compute, sram, interconnect, control, leakage), lands the
peak on 126.04 TFLOPS/W: energy is linear in the factors, so k = uncalibrated / target.

Usage: /usr/bin/python3 scripts/calibrate_energy.py [--sim build/swpu-sim] [--config configs/peak.json]
"""
import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from swpu import cli, simulator  # noqa: E402
from swpu.report import Report, ReportError  # noqa: E402

TARGET = 126.04  # TFLOPS/W, the paper's peak (FOUND)
CLASSES = ["cal_compute", "cal_sram", "cal_interconnect", "cal_control", "cal_leakage"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_sim_argument(ap)
    ap.add_argument("--config", default=os.path.join(simulator.REPO_ROOT, "configs", "peak.json"))
    args = ap.parse_args()
    try:
        sim = simulator.require_simulator(args.sim)
    except simulator.SimulatorError as e:
        cli.die_usage("calibrate_energy", str(e))
    if not os.path.isfile(args.config):
        cli.die_usage("calibrate_energy", "config file %s not found" % args.config)
    with tempfile.TemporaryDirectory() as out:
        cmd = simulator.command(sim, args.config, [("energy.%s" % c, "1.0") for c in CLASSES], out=out)
        res = subprocess.run(cmd, env=simulator.sim_env(), capture_output=True, text=True)
        if res.returncode != 0:
            print(res.stderr, file=sys.stderr)
            return res.returncode
        try:
            rep = Report.load(out)
        except ReportError as e:
            print("calibrate_energy: %s" % e, file=sys.stderr)
            return 1
    raw = rep.energy["conv"]["effective_tflops_per_w"]
    k = raw / TARGET
    print(f"uncalibrated peak: {raw:.2f} TFLOPS/W (convolution passes, {rep.clock_mhz:.1f} MHz, "
          f"{rep.config['chip']['voltage']} V)")
    print(f"calibration factor for {', '.join(CLASSES)}: {k:.4f}")
    print(f"calibrated peak with k rounded to 3 digits: {raw / round(k, 3):.2f} TFLOPS/W")
    if not 0.5 <= k <= 2.0:
        print("warning: the factor is outside 0.5-2x of the cited table", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
