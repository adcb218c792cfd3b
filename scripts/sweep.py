#!/usr/bin/python3
"""General parameter sweep of swpu-sim.

Runs the cartesian product of the --param value lists (each point adds its PATH=VALUE
overrides to the --set ones) in parallel, each point into OUT/points/<id>/, and writes
OUT/sweep.csv: one row per point with the swept values, status (ok/failed), the error of a
failed point (last line of the simulator's stderr) and the key metrics of report.json.
See docs/sweeps.md.

    scripts/sweep.py --config configs/swpu.json --param chip.voltage=0.56,0.7,1.0 \\
        --param workload.batch=1,4 --set workload.width=0.25 --out out/sweep

Exit status: 0 all points ok, 1 some points failed, 2 bad arguments.
"""

import argparse
import itertools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import swpu_sweep as sw  # noqa: E402

PROG = "sweep.py"


def parse_params(items):
    """['a.b=1,2', ...] -> [('a.b', ['1', '2']), ...]; raises sw.UsageError."""
    if not items:
        raise sw.UsageError("give at least one --param PATH=V1,V2,...")
    params, seen = [], set()
    for item in items:
        key, values = sw.parse_assignment(item, "--param")
        vals = [v.strip() for v in values.split(",")]
        if not values or any(v == "" for v in vals):
            raise sw.UsageError("--param %r: empty value in the list" % item)
        if key in seen:
            raise sw.UsageError("--param %s given twice" % key)
        if len(set(vals)) != len(vals):
            raise sw.UsageError("--param %r: repeated value" % item)
        seen.add(key)
        params.append((key, vals))
    return params


def build_parser():
    ap = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n", 1)[1])
    ap.add_argument("--param", action="append", default=[], metavar="PATH=V1,V2,...",
                    help="swept config parameter and its values (repeatable; the sweep is the "
                         "cartesian product)")
    sw.add_common_arguments(ap)
    return ap


def main(argv=None):
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        sim, config, trace, sets = sw.resolve_common(args)
        params = parse_params(args.param)
        clash = sorted(set(k for k, _ in params) & set(k for k, _ in sets))
        if clash:
            raise sw.UsageError("%s given both as --param and --set" % ", ".join(clash))
        cfg = sw.print_config(sim, config, sets, trace)
        sw.check_paths_exist(cfg, [k for k, _ in params], "--param")
    except sw.UsageError as e:
        sw.die_usage(PROG, str(e))

    keys = [k for k, _ in params]
    combos = list(itertools.product(*[vals for _, vals in params]))
    width = max(3, len(str(len(combos) - 1)))
    points = []
    for i, combo in enumerate(combos):
        ps = list(zip(keys, combo))
        points.append(("%0*d_%s" % (width, i, sw.slug(ps)), ps))

    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    runner = sw.Runner(sim, config, trace, sets, out, args.jobs, args.timeout, args.quiet, PROG)
    results = runner.run_all(points)

    rows = []
    for (pid, ps), r in zip(points, results):
        row = {"point": pid}
        row.update(dict(ps))
        row["status"], row["error"] = r["status"], r["error"]
        if r["report"] is not None:
            row.update(sw.metric_row(r["report"]))
        rows.append(row)
    columns = ["point"] + keys + sw.STATUS_COLUMNS + sw.METRIC_COLUMNS + sw.energy_columns(rows)
    csv_path = os.path.join(out, "sweep.csv")
    sw.write_csv_atomic(csv_path, columns, rows)
    return sw.summarize(PROG, results, csv_path)


if __name__ == "__main__":
    sys.exit(main())
