#!/usr/bin/python3
"""Re-price a finished sweep for a new energy table or supply voltage, without re-simulating.

Reads the point records of a sweep run with --cluster (sweep.py, sweep_vf.py or dse.py:
OUT/points/*/record.json), adds the --set overrides to each point's own command line, and
- re-prices the point from its saved action counts when the overrides change only energy-table
  (energy.*) or supply fields (chip.voltage, ...) and the clock stays the same; the energy per
  action, leakage and clock come from `swpu-sim ... --print-pricing`, so the figures equal a fresh
  simulation's;
- re-simulates the point otherwise (e.g. a voltage change that moves the clock f_max(V): DRAM
  timing is in ns, so the cycles change), and says why on stderr and in the `reason` column.

Writes NEW/repriced.csv: point, key, method (repriced / simulated), reason, status, error and the
summary columns of the sweeps. Re-simulated points run into NEW/points/<key>/.

    scripts/reprice.py --sweep out/dse --set energy.dram_pj_per_bit=4 --out out/dse-dram4
    scripts/reprice.py --sweep out/dse --set chip.voltage=0.8 --set chip.frequency_mhz=200 --out out/dse-0v8

Exit status: 0 all points ok, 1 some point failed, 2 bad arguments (nothing written).
"""

import argparse
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from swpu import cli, reprice, simulator  # noqa: E402
from swpu.files import write_csv_atomic  # noqa: E402
from swpu.report import METRIC_COLUMNS, energy_columns  # noqa: E402

PROG = "reprice.py"


def build_parser():
    ap = argparse.ArgumentParser(prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 description=__doc__)
    ap.add_argument("--sweep", required=True, metavar="DIR", help="output directory of a sweep run with --cluster")
    ap.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                    help="new value of a config field, added to every point (repeatable)")
    ap.add_argument("--out", required=True, metavar="DIR", help="where repriced.csv goes")
    cli.add_sim_argument(ap)
    cli.add_cluster_arguments(ap, default=("local", None))
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    return ap


def load_records(sweep_dir):
    recs = []
    for path in sorted(glob.glob(os.path.join(sweep_dir, "points", "*", "record.json"))):
        try:
            with open(path) as f:
                rec = json.load(f)
        except (OSError, ValueError):
            continue
        if rec.get("status") == "ok" and rec.get("cmd"):
            recs.append(rec)
    return recs


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        sim = simulator.require_simulator(args.sim)
        new_sets = cli.parse_sets(args.set)
        if not new_sets:
            raise cli.UsageError("give at least one --set PATH=VALUE to re-price for")
        if not os.path.isdir(args.sweep):
            raise cli.UsageError("--sweep %s is not a directory" % args.sweep)
        out = os.path.abspath(args.out)
        if os.path.exists(out) and not os.path.isdir(out):
            raise cli.UsageError("--out %s exists and is not a directory" % args.out)
        recs = load_records(args.sweep)
        if not recs:
            raise cli.UsageError("%s has no finished points (points/*/record.json of a sweep run "
                                 "with --cluster)" % args.sweep)
        # Refused overrides are bad input: ask once, before anything is written.
        reprice.reprice_record(sim, recs[0]["cmd"], recs[0], new_sets)
    except (cli.UsageError, simulator.SimulatorError) as e:
        cli.die_usage(PROG, str(e))

    rows, resim = [], []
    for rec in recs:
        row = {"point": rec["point"], "key": rec["key"]}
        metrics, why = reprice.reprice_record(sim, rec["cmd"], rec, new_sets)
        if metrics is not None:
            row.update(method="repriced", reason="", status="ok", error="")
            row.update(metrics)
        else:
            row.update(method="simulated", reason=why)
            args_ = list(rec["cmd"])
            for k, v in new_sets:
                args_ += ["--set", "%s=%s" % (k, v)]
            key = simulator.json_sha256({"cmd": args_})[:20]
            resim.append((row, {"key": key, "point": rec["point"], "cmd": args_,
                                "dir": os.path.join(out, "points", key), "timeout": None}))
        rows.append(row)
    sys.stderr.write("%s: %d points re-priced from their action counts, %d re-simulated\n"
                     % (PROG, len(rows) - len(resim), len(resim)))
    for why in sorted(set(r["reason"] for r, _ in resim)):
        n = sum(1 for r, _ in resim if r["reason"] == why)
        sys.stderr.write("%s: re-simulating %d point%s: %s\n" % (PROG, n, "" if n == 1 else "s", why))
    if resim:
        from swpu.sweep import run_on_dask
        by_key = {t["key"]: row for row, t in resim}

        def on_record(rec):
            row = by_key[rec["key"]]
            row["status"], row["error"] = rec["status"], rec.get("error", "")
            row.update(rec.get("metrics") or {})
            if not args.quiet or rec["status"] != "ok":
                sys.stderr.write("re-simulated %s: %s\n" % (rec["point"], rec["status"]))
        os.makedirs(out, exist_ok=True)
        run_on_dask([t for _, t in resim], args.cluster, PROG, on_record)
    columns = (["point", "key", "method", "reason", "status", "error"] + METRIC_COLUMNS
               + energy_columns(rows))
    path = os.path.join(out, "repriced.csv")
    write_csv_atomic(path, columns, rows)
    failed = sum(1 for r in rows if r.get("status") != "ok")
    sys.stderr.write("%s: wrote %s (%d rows, %d failed)\n" % (PROG, path, len(rows), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
