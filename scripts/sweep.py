#!/usr/bin/python3
"""General parameter sweep of swpu-sim.

Runs the cartesian product of the --param value lists (each point adds its PATH=VALUE
overrides to the --set ones), each point into OUT/points/<id>/, and writes OUT/sweep.csv: one
row per point with the swept values, status (ok/failed), the error of a failed point (last line
of the simulator's stderr) and the key metrics of report.json. See docs/sweeps.md.

    scripts/sweep.py --config configs/swpu.json --param chip.voltage=0.56,0.7,1.0 \\
        --param workload.batch=1,4 --set workload.width=0.25 --out out/sweep

With --cluster the points run as Dask tasks (local worker processes or an existing scheduler),
the CSV gains action counts and provenance columns, and a rerun skips the finished points.
Exit status: 0 all points ok, 1 some points failed, 2 bad arguments.
"""

import argparse
import itertools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from swpu import cli, report, runner  # noqa: E402
from swpu.files import write_csv_atomic  # noqa: E402

PROG = "sweep.py"


def build_parser():
    ap = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n", 1)[1])
    ap.add_argument("--param", action="append", default=[], metavar="PATH=V1,V2,...",
                    help="swept config parameter and its values (repeatable; the sweep is the "
                         "cartesian product)")
    cli.add_common_arguments(ap)
    cli.add_cluster_arguments(ap)
    ap.add_argument("--check-engines", type=int, default=0, metavar="K",
                    help="rerun the first K finished points on the other engine and report the "
                         "cycle difference (OUT/engine_check.csv; local runner only)")
    return ap


def main(argv=None):
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        sim, config, trace, sets = cli.resolve_common(args)
        params = cli.parse_params(args.param)
        clash = sorted(set(k for k, _ in params) & set(k for k, _ in sets))
        if clash:
            raise cli.UsageError("%s given both as --param and --set" % ", ".join(clash))
        cfg = cli.effective_config(sim, config, sets, trace)
        cli.check_paths_exist(cfg, [k for k, _ in params], "--param")
        if args.check_engines < 0:
            raise cli.UsageError("--check-engines must be at least 0")
        if args.check_engines and args.cluster:
            raise cli.UsageError("--check-engines runs with the local runner (without --cluster)")
        extra = cli.engine_args(sim, config, args.engine, trace)
    except cli.UsageError as e:
        cli.die_usage(PROG, str(e))

    keys = [k for k, _ in params]
    combos = list(itertools.product(*[vals for _, vals in params]))
    width = max(3, len(str(len(combos) - 1)))
    points = []
    for i, combo in enumerate(combos):
        ps = list(zip(keys, combo))
        points.append(("%0*d_%s" % (width, i, cli.slug(ps)), ps))

    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    csv_path = os.path.join(out, "sweep.csv")
    if args.cluster:
        from swpu.sweep import Sweep
        sw = Sweep(sim, config, trace, sets, out, extra, args.timeout, PROG, args.quiet,
                   dir_by_point=True)
        rows, stats = sw.run([(pid, ps, dict(ps)) for pid, ps in points], args.cluster, keys,
                             table="sweep.csv")
        return 1 if stats["failed_total"] else 0

    run = runner.Runner(sim, config, trace, sets, out, args.jobs, args.timeout, args.quiet, PROG,
                        extra_args=extra)
    results = run.run_all(points)
    rows = []
    for (pid, ps), r in zip(points, results):
        row = {"point": pid}
        row.update(dict(ps))
        row["status"], row["error"] = r["status"], r["error"]
        if r["report"] is not None:
            row.update(r["report"].metric_row())
        rows.append(row)
    columns = (["point"] + keys + ["status", "error"] + report.METRIC_COLUMNS
               + report.energy_columns(rows))
    write_csv_atomic(csv_path, columns, rows)
    status = runner.summarize(PROG, results, csv_path)
    if args.check_engines > 0:
        from swpu import engine_check
        engine = args.engine or (cfg.get("simulation") or {}).get("engine", "cycle")
        _, line = engine_check.check(sim, config, trace, sets, out, points, results, engine,
                                     args.check_engines, args.jobs, args.timeout, PROG)
        print(line, file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
