#!/usr/bin/python3
"""Design-space exploration of SWPU on ResNet-18 training: Pareto fronts of energy per
iteration vs cycles per iteration.

The design space: PE array G x L at a fixed MAC count (default: the config's G x L), compaction
window N, segments D, banks of every global buffer, and the buffers' capacities (one factor for
the three), each design run on every workload (default: ResNet-18 CIFAR and ImageNet training).
--designs K picks K designs from the space, seeded: the config's own design (the paper's, for
configs/swpu.json) first, then a shuffled walk that keeps the designs the simulator accepts
(`--print-config` refuses e.g. lanes > window). All points run as Dask tasks (--cluster), resume
when rerun, and land in OUT/results.csv; then OUT/pareto.csv (the front of each workload, the
config's design listed too) and OUT/pareto.png (all designs, the fronts, the config's design
marked); with --energy chip, OUT/pareto_chip.csv and .png. A rerun with other plot options
re-simulates nothing.

    scripts/dse.py --config configs/swpu.json --designs 100 --out out/dse

Exit status: 0 done (failed points are listed), 1 some point failed, 2 bad arguments (nothing
written).
"""

import argparse
import itertools
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from swpu import cli, pareto, simulator  # noqa: E402
from swpu.files import save_figure_atomic, write_csv_atomic  # noqa: E402
from swpu.sweep import Sweep  # noqa: E402

PROG = "dse.py"
DESIGN_COLUMNS = ["pe_array.groups", "pe_array.lanes", "compaction.window", "compaction.segments",
                  "buffers.banks", "buffers.kib_scale"]
BUFFERS = ("weight", "activation", "output")
DEFAULT_WORKLOADS = "resnet18-cifar,resnet18-imagenet"


def int_list(text, what):
    try:
        vals = [int(t) for t in text.split(",")]
    except ValueError:
        raise cli.UsageError("%s %r: expected integers separated by commas" % (what, text))
    if not vals or any(v < 1 for v in vals) or len(set(vals)) != len(vals):
        raise cli.UsageError("%s %r: expected distinct positive integers" % (what, text))
    return vals


def build_parser():
    ap = argparse.ArgumentParser(prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 description=__doc__)
    ap.add_argument("--config", default=os.path.join(simulator.REPO_ROOT, "configs", "swpu.json"),
                    metavar="FILE", help="base chip config (default: configs/swpu.json)")
    ap.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                    help="override applied to every point (repeatable), e.g. workload.width=0.25")
    ap.add_argument("--out", required=True, metavar="DIR", help="output directory")
    ap.add_argument("--workloads", default=DEFAULT_WORKLOADS, metavar="NET,...",
                    help="workload.network values (default: %(default)s)")
    ap.add_argument("--macs", type=cli.positive_int, metavar="M",
                    help="G x L of every array shape (default: the config's)")
    ap.add_argument("--lanes", default="8,16,32,64", metavar="L,...",
                    help="lane counts L (G = M / L; default %(default)s)")
    ap.add_argument("--windows", default="16,32,64", metavar="N,...", help="compaction windows N")
    ap.add_argument("--segments", default="1,2,4,8", metavar="D,...", help="segments D")
    ap.add_argument("--banks", default="4,8,16", metavar="B,...", help="banks of every buffer")
    ap.add_argument("--kib-scales", default="0.5,1,2", metavar="S,...",
                    help="capacity factors of the three buffers (default %(default)s)")
    ap.add_argument("--designs", type=cli.positive_int, metavar="K",
                    help="designs to pick from the space (default: all it accepts)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the pick (default 1)")
    ap.add_argument("--energy", choices=("total", "chip"), default="total",
                    help="energy axis: chip + DRAM (total, default) or chip only")
    cli.add_sim_argument(ap)
    cli.add_cluster_arguments(ap, default=("local", None))
    ap.add_argument("--timeout", type=cli.positive_float, metavar="SECONDS",
                    help="fail a point that runs longer than this")
    ap.add_argument("--no-plot", action="store_true", help="tables only")
    ap.add_argument("-q", "--quiet", action="store_true", help="report only failed points")
    return ap


def design_sets(d, base_cfg):
    g, l, n, seg, banks, scale = d
    sets = [("pe_array.groups", str(g)), ("pe_array.lanes", str(l)),
            ("compaction.window", str(n)), ("compaction.segments", str(seg))]
    for b in BUFFERS:
        kib = max(1, int(round(float(base_cfg["buffers"][b]["kib"]) * scale)))
        sets += [("buffers.%s.banks" % b, str(banks)), ("buffers.%s.kib" % b, str(kib))]
    return sets


def pick_designs(args, sim, config, sets, base_cfg):
    macs = args.macs or int(base_cfg["pe_array"]["groups"]) * int(base_cfg["pe_array"]["lanes"])
    lanes = [l for l in int_list(args.lanes, "--lanes") if macs % l == 0]
    if not lanes:
        raise cli.UsageError("no lane count in --lanes divides the MAC count %d" % macs)
    windows = int_list(args.windows, "--windows")
    segments = int_list(args.segments, "--segments")
    banks = int_list(args.banks, "--banks")
    scales = cli.parse_float_list(args.kib_scales, "--kib-scales")
    if any(s <= 0 for s in scales):
        raise cli.UsageError("--kib-scales must be positive")
    space = [(macs // l, l, n, d, b, s) for l, n, d, b, s in
             itertools.product(lanes, windows, segments, banks, scales)]
    own = (int(base_cfg["pe_array"]["groups"]), int(base_cfg["pe_array"]["lanes"]),
           int(base_cfg["compaction"]["window"]), int(base_cfg["compaction"]["segments"]),
           int(base_cfg["buffers"]["weight"]["banks"]), 1.0)
    order = [d for d in space if d != own]
    random.Random(args.seed).shuffle(order)
    want = args.designs or len(space) + 1
    picked, refused = [], 0
    for d in [own] + order:
        if len(picked) >= want:
            break
        try:  # the simulator decides what is a valid design
            simulator.print_config(sim, config, sets + design_sets(d, base_cfg))
            picked.append(d)
        except simulator.SimulatorError:
            if d == own:
                raise cli.UsageError("the config's own design is refused with the --set overrides")
            refused += 1
    return picked, refused, own, len(space)


def plot(path, rows, fronts, workloads, ecol, own_ids, subtitle):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(workloads), figsize=(6.2 * len(workloads), 4.8), squeeze=False)
    for ax, wl in zip(axes[0], workloads):
        ok = [r for r in rows if r["workload"] == wl and r["status"] == "ok"]
        fr = fronts.get(wl, [])
        ax.scatter([r["cycles_per_iter"] / 1e6 for r in ok], [r[ecol] / 1e3 for r in ok], s=12,
                   color="0.7", label="designs (%d)" % len(ok))
        ax.plot([r["cycles_per_iter"] / 1e6 for r in fr], [r[ecol] / 1e3 for r in fr], "-o",
                color="tab:blue", ms=4, label="Pareto front (%d)" % len(fr))
        for r in ok:
            if r["design"] in own_ids:
                ax.scatter([r["cycles_per_iter"] / 1e6], [r[ecol] / 1e3], marker="*", s=220,
                           color="tab:red", zorder=5, label="configs/swpu.json design")
                ax.annotate("%dx%d N%d D%d" % (r["pe_array.groups"], r["pe_array.lanes"],
                                              r["compaction.window"], r["compaction.segments"]),
                            (r["cycles_per_iter"] / 1e6, r[ecol] / 1e3), fontsize=7,
                            xytext=(6, 6), textcoords="offset points", color="tab:red")
        ax.set_title(wl, fontsize=11)
        ax.set_xlabel("cycles per training iteration (millions)")
        ax.set_ylabel("%s energy per iteration (mJ)" % ("chip + DRAM" if ecol == "total_uj_per_iter"
                                                        else "chip"))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(subtitle, fontsize=8)
    fig.tight_layout()
    save_figure_atomic(fig, path)
    plt.close(fig)


def main(argv=None):
    args = build_parser().parse_args(argv)
    t_start = time.monotonic()
    try:
        sim = simulator.require_simulator(args.sim)
        config = os.path.abspath(args.config)
        if not os.path.isfile(config):
            raise cli.UsageError("config file %s not found" % args.config)
        out = os.path.abspath(args.out)
        if os.path.exists(out) and not os.path.isdir(out):
            raise cli.UsageError("--out %s exists and is not a directory" % args.out)
        sets = cli.parse_sets(args.set)
        swept = set(DESIGN_COLUMNS[:4]) | {"workload.network"} | {
            "buffers.%s.%s" % (b, f) for b in BUFFERS for f in ("kib", "banks")}
        clash = sorted(k for k, _ in sets if k in swept)
        if clash:
            raise cli.UsageError("--set %s: swept by this script" % ", ".join(clash))
        base_cfg = cli.effective_config(sim, config, sets)
        workloads = [w.strip() for w in args.workloads.split(",")]
        if not all(workloads) or len(set(workloads)) != len(workloads):
            raise cli.UsageError("--workloads %r: empty or repeated entry" % args.workloads)
        for w in workloads:
            cli.effective_config(sim, config, sets + [("workload.network", w)])
        extra = cli.engine_args(sim, config, args.engine)
        designs, refused, own, space = pick_designs(args, sim, config, sets, base_cfg)
    except cli.UsageError as e:
        cli.die_usage(PROG, str(e))
    sys.stderr.write("%s: %d designs picked from a space of %d (%d refused by the simulator), "
                     "%d workloads\n" % (PROG, len(designs), space, refused, len(workloads)))

    points, own_ids = [], set()
    for i, d in enumerate(designs):
        did = "d%03d" % i
        if d == own:
            own_ids.add(did)
        for w in workloads:
            ps = design_sets(d, base_cfg) + [("workload.network", w)]
            cols = dict(zip(DESIGN_COLUMNS, d))
            cols.update(design=did, workload=w)
            points.append(("%s_%s" % (did, w), ps, cols))
    sw = Sweep(sim, config, None, sets, out, extra, args.timeout, PROG, args.quiet)
    params = ["design", "workload"] + DESIGN_COLUMNS

    def per_iter(row):
        if row["status"] == "ok":
            it = int(row.get("iterations") or 1)
            row["cycles_per_iter"] = float(row["cycles"]) / it
            row["total_uj_per_iter"] = float(row["total_uj"]) / it
            row["chip_uj_per_iter"] = float(row["chip_uj"]) / it

    rows, stats = sw.run(points, args.cluster, params, row_hook=per_iter,
                         extra_columns=["cycles_per_iter", "total_uj_per_iter", "chip_uj_per_iter"])
    ecol = "total_uj_per_iter" if args.energy == "total" else "chip_uj_per_iter"
    fronts, front_rows = {}, []
    for w in workloads:
        ok = [r for r in rows if r["workload"] == w and r["status"] == "ok"]
        fronts[w] = pareto.front(ok, "cycles_per_iter", ecol)
        for r in fronts[w]:
            front_rows.append(dict(r, on_front="yes"))
    # the config's own design is listed even when it is not on the front
    for r in rows:
        if r["design"] in own_ids and r["status"] == "ok" and not any(
                f["key"] == r["key"] for f in front_rows):
            front_rows.append(dict(r, on_front="no"))
    cols = (["workload", "design"] + DESIGN_COLUMNS + ["cycles_per_iter", "total_uj_per_iter",
                                                      "chip_uj_per_iter", "on_front", "point",
                                                      "key", "git_commit", "config_hash", "engine"])
    stem = "pareto" if args.energy == "total" else "pareto_chip"
    write_csv_atomic(os.path.join(out, stem + ".csv"), cols, front_rows)
    if not args.no_plot:
        subtitle = "swpu-sim %s, %d designs x %d workloads, G x L = %d%s" % (
            os.path.basename(config), len(designs), len(workloads), own[0] * own[1] if not args.macs
            else args.macs, (", " + " ".join("%s=%s" % kv for kv in sets)) if sets else "")
        plot(os.path.join(out, stem + ".png"), rows, fronts, workloads, ecol, own_ids, subtitle)
    wall = time.monotonic() - t_start
    ran = stats["ran"]
    rate = ran / stats["seconds"] * 3600 if ran and stats["seconds"] > 0 else 0.0
    speed = ("%d points ran in %.1f s (%.0f points/hour)" % (ran, stats["seconds"], rate) if ran
             else "nothing to run")
    sys.stderr.write("%s: %s, %.1f s in all; fronts: %s; wrote %s\n" % (
                         PROG, speed, wall,
                         ", ".join("%s %d" % (w, len(fronts[w])) for w in workloads),
                         os.path.join(out, stem + ".csv")))
    return 1 if stats["failed_total"] else 0


if __name__ == "__main__":
    sys.exit(main())
