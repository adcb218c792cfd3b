#!/usr/bin/python3
"""Fits the energy calibration factor of swpu-sim to the paper's peak efficiency.

Runs the peak condition (configs/peak.json) with every on-chip calibration factor at 1.0, reads the
convolution passes' effective TFLOPS/W (report.json energy.conv), and prints the one factor k that,
applied to every on-chip component class (compute, sram, interconnect, control, leakage), lands the
peak on 126.04 TFLOPS/W: energy is linear in the factors, so k = uncalibrated / target.

Usage: /usr/bin/python3 scripts/calibrate_energy.py [--sim build/swpu-sim] [--config configs/peak.json]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

TARGET = 126.04  # TFLOPS/W, the paper's peak (FOUND)
CLASSES = ["cal_compute", "cal_sram", "cal_interconnect", "cal_control", "cal_leakage"]


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sim", default=os.environ.get("SWPU_SIM", os.path.join(root, "build", "swpu-sim")))
    ap.add_argument("--config", default=os.path.join(root, "configs", "peak.json"))
    args = ap.parse_args()
    if not os.path.exists(args.sim):
        print(f"calibrate_energy: simulator not found at {args.sim} (build it: scripts/build.sh)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as out:
        cmd = [args.sim, "--config", args.config, "--out", out, "-q"]
        for c in CLASSES:
            cmd += ["--set", f"energy.{c}=1.0"]
        env = dict(os.environ, SC_COPYRIGHT_MESSAGE="DISABLE")
        res = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if res.returncode != 0:
            print(res.stderr, file=sys.stderr)
            return res.returncode
        with open(os.path.join(out, "report.json")) as f:
            rep = json.load(f)
    raw = rep["energy"]["conv"]["effective_tflops_per_w"]
    k = raw / TARGET
    print(f"uncalibrated peak: {raw:.2f} TFLOPS/W (convolution passes, {rep['clock_mhz']:.1f} MHz, "
          f"{rep['config']['chip']['voltage']} V)")
    print(f"calibration factor for {', '.join(CLASSES)}: {k:.4f}")
    print(f"calibrated peak with k rounded to 3 digits: {raw / round(k, 3):.2f} TFLOPS/W")
    if not 0.5 <= k <= 2.0:
        print("warning: the factor is outside 0.5-2x of the cited table", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
