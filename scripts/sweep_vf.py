#!/usr/bin/python3
"""Voltage/frequency sweep of swpu-sim.

For each supply voltage V the chip runs at f_max(V) and, with --freq-fractions, also at
fractions of it (chip.frequency_mhz = fraction * f_max(V)). f_max follows the alpha-power
law f ~ (V - Vth)^a / V anchored at chip.f_max_mhz_at_vnom for chip.v_nom; vth, alpha and
the anchors are the simulator's own (f_max(V) from `swpu-sim --config FILE --set ...
--print-pricing`). Writes OUT/sweep_vf.csv (one row per point, failed points included), the PNG plots
OUT/efficiency_vs_voltage.png, throughput_vs_voltage.png, power_vs_voltage.png and
energy_breakdown_vs_voltage.png, and each point's output under OUT/points/<id>/.
See docs/sweeps.md.

    scripts/sweep_vf.py --config configs/swpu.json --voltages 0.56,0.6,0.7,0.8,0.9,1.0 \\
        --out out/vf

Voltages: --voltages V1,V2,... or --vmin/--vmax/--steps (evenly spaced, both ends
included; default: chip.v_min to chip.v_max of the config in 10 steps).
Exit status: 0 all points ok, 1 some points failed, 2 bad arguments.
"""

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from swpu import cli, report, runner, simulator  # noqa: E402
from swpu.files import save_figure_atomic, write_csv_atomic  # noqa: E402

PROG = "sweep_vf.py"
PLOTS = ["efficiency_vs_voltage.png", "throughput_vs_voltage.png", "power_vs_voltage.png",
         "energy_breakdown_vs_voltage.png"]
VF_COLUMNS = ["voltage", "freq_fraction", "frequency_mhz"]


def build_parser():
    ap = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n", 1)[1])
    ap.add_argument("--voltages", metavar="V1,V2,...", help="explicit list of supply voltages (V)")
    ap.add_argument("--vmin", type=float, metavar="V", help="lowest voltage (default chip.v_min)")
    ap.add_argument("--vmax", type=float, metavar="V", help="highest voltage (default chip.v_max)")
    ap.add_argument("--steps", type=cli.positive_int, metavar="N",
                    help="number of voltages from vmin to vmax, both included (default 10)")
    ap.add_argument("--freq-fractions", default="1.0", metavar="F1,F2,...",
                    help="fractions of f_max(V) to run at (default 1.0)")
    ap.add_argument("--no-plots", action="store_true", help="write the CSV only")
    cli.add_common_arguments(ap)
    cli.add_cluster_arguments(ap)
    return ap


def voltage_list(args, chip):
    if args.voltages is not None:
        if args.vmin is not None or args.vmax is not None or args.steps is not None:
            raise cli.UsageError("give either --voltages or --vmin/--vmax/--steps, not both")
        vs = cli.parse_float_list(args.voltages, "--voltages")
    else:
        vmin = float(chip["v_min"]) if args.vmin is None else args.vmin
        vmax = float(chip["v_max"]) if args.vmax is None else args.vmax
        steps = 10 if args.steps is None else args.steps
        for name, x in (("--vmin", vmin), ("--vmax", vmax)):
            if not math.isfinite(x):
                raise cli.UsageError("%s must be a finite number" % name)
        if vmin > vmax:
            raise cli.UsageError("--vmin %g is above --vmax %g" % (vmin, vmax))
        if steps == 1 and vmin != vmax:
            raise cli.UsageError("--steps 1 needs --vmin == --vmax")
        if vmin == vmax:
            vs = [vmin]
        else:
            # rounded so that 0.56 + k*0.0488... prints as a short number
            vs = [round(vmin + (vmax - vmin) * i / (steps - 1), 6) for i in range(steps)]
    for v in vs:
        if v <= 0:
            raise cli.UsageError("voltage %g must be positive" % v)
    if len(set(vs)) != len(vs):
        raise cli.UsageError("repeated voltage in the list")
    return vs


def fraction_list(text):
    fs = cli.parse_float_list(text, "--freq-fractions")
    for f in fs:
        if f <= 0:
            raise cli.UsageError("--freq-fractions: %g must be positive" % f)
    if len(set(fs)) != len(fs):
        raise cli.UsageError("--freq-fractions: repeated value")
    return fs


def make_points(voltages, fractions, f_max):
    """[(id, [(k, v), ...], meta)], meta = {voltage, freq_fraction, frequency_mhz}; f_max(V) is
    the simulator's (None where it cannot say)."""
    points = []
    width = max(3, len(str(len(voltages) * len(fractions) - 1)))
    i = 0
    for v in voltages:
        fmax = f_max(v) or 0.0
        for frac in fractions:
            ps = [("chip.voltage", cli.fmt_num(v))]
            freq = fmax * frac
            if frac != 1.0 and freq > 0:
                # at fraction 1 the simulator picks f_max(V) itself
                ps.append(("chip.frequency_mhz", cli.fmt_num(freq)))
            pid = "%0*d_V%s_f%s" % (width, i, cli.fmt_num(v), cli.fmt_num(frac))
            points.append((pid, ps, {"voltage": v, "freq_fraction": frac,
                                     "frequency_mhz": freq if freq > 0 else ""}))
            i += 1
    return points


# ----------------------------------------------------------------------------- plots

def write_plots(out, rows, fractions, subtitle):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r["status"] == "ok"]
    failed = [r for r in rows if r["status"] != "ok"]
    note = "" if not failed else "  (%d failed point%s not shown)" % (len(failed), "" if len(failed) == 1 else "s")

    def line_plot(fname, col, ylabel, title, extra=None):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for frac in fractions:
            pts = sorted((r["voltage"], r[col]) for r in ok if r["freq_fraction"] == frac)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                        label="f = %g x f_max(V)" % frac)
        if extra:
            extra(ax)
        if not ok:
            ax.text(0.5, 0.5, "no successful points", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("supply voltage (V)")
        ax.set_ylabel(ylabel)
        ax.set_title(title + note, fontsize=11)
        fig.suptitle(subtitle, fontsize=8, y=0.995)
        ax.grid(True, alpha=0.3)
        if ok:
            ax.legend(fontsize=8)
        fig.tight_layout()
        save_figure_atomic(fig, os.path.join(out, fname))
        plt.close(fig)

    line_plot("efficiency_vs_voltage.png", "effective_tflops_per_w", "effective TFLOPS/W (chip, excl. DRAM)",
              "Energy efficiency vs voltage")
    line_plot("throughput_vs_voltage.png", "effective_tflops", "effective TFLOPS",
              "Throughput vs voltage")
    line_plot("power_vs_voltage.png", "power_mw", "chip power (mW, excl. DRAM)",
              "Chip power vs voltage")

    # Stacked energy breakdown at one frequency fraction (1.0 if swept, else the first).
    frac = 1.0 if 1.0 in fractions else fractions[0]
    sel = sorted((r for r in ok if r["freq_fraction"] == frac), key=lambda r: r["voltage"])
    comps = report.energy_columns(sel)
    fig, ax = plt.subplots(figsize=(8, 4.8))
    if sel and comps:
        xs = list(range(len(sel)))
        bottom = [0.0] * len(sel)
        cmap = plt.get_cmap("tab20")
        for ci, c in enumerate(comps):
            vals = [float(r.get(c) or 0.0) for r in sel]
            ax.bar(xs, vals, bottom=bottom, width=0.7, color=cmap(ci % 20),
                   label=c[len("energy_"):-len("_uj")])
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_xticks(xs)
        ax.set_xticklabels(["%g" % r["voltage"] for r in sel])
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    else:
        ax.text(0.5, 0.5, "no successful points", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("supply voltage (V)")
    ax.set_ylabel("chip energy per run (uJ, excl. DRAM)")
    ax.set_title("Chip energy by component, f = %g x f_max(V)%s" % (frac, note), fontsize=11)
    fig.suptitle(subtitle, fontsize=8, y=0.995)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure_atomic(fig, os.path.join(out, "energy_breakdown_vs_voltage.png"))
    plt.close(fig)


# ----------------------------------------------------------------------------- table

def summary_table(rows, fractions):
    """Markdown table of the sweep (printed on stdout; docs/sweeps.md quotes it)."""
    multi = len(fractions) > 1
    head = ["V"] + (["f/f_max"] if multi else []) + ["MHz", "effective TFLOPS", "chip mW",
                                                      "effective TFLOPS/W", "system TFLOPS/W"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" for _ in head) + "|"]
    for r in rows:
        cells = ["%g" % r["voltage"]] + (["%g" % r["freq_fraction"]] if multi else [])
        f = r.get("frequency_mhz")
        cells.append("%.1f" % f if isinstance(f, float) else "")
        if r["status"] == "ok":
            cells += ["%.4f" % r["effective_tflops"], "%.2f" % r["power_mw"],
                      "%.2f" % r["effective_tflops_per_w"], "%.3f" % r["system_effective_tflops_per_w"]]
        else:
            cells += ["failed", "", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- main

def main(argv=None):
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        sim, config, trace, sets = cli.resolve_common(args)
        clash = [k for k, _ in sets if k in ("chip.voltage", "chip.frequency_mhz")]
        if clash:
            raise cli.UsageError("--set %s: swept by this script; use --voltages/--freq-fractions"
                                 % clash[0])
        fractions = fraction_list(args.freq_fractions)
        cfg = cli.effective_config(sim, config, sets, trace)
        chip = cfg["chip"]
        voltages = voltage_list(args, chip)
        extra = cli.engine_args(sim, config, args.engine, trace)
    except cli.UsageError as e:
        cli.die_usage(PROG, str(e))

    points = make_points(voltages, fractions,
                         lambda v: simulator.f_max_mhz(sim, config, sets, v, trace))
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    csv_path = os.path.join(out, "sweep_vf.csv")

    def ran_at(row):
        if row["status"] == "ok":
            row["frequency_mhz"] = row["clock_mhz"]  # what the simulator actually ran at

    if args.cluster:
        from swpu.sweep import Sweep
        sw = Sweep(sim, config, trace, sets, out, extra, args.timeout, PROG, args.quiet,
                   dir_by_point=True)
        rows, stats = sw.run(points, args.cluster, VF_COLUMNS, table="sweep_vf.csv",
                             row_hook=ran_at)
        status = 1 if stats["failed_total"] else 0
    else:
        run = runner.Runner(sim, config, trace, sets, out, args.jobs, args.timeout, args.quiet,
                            PROG, extra_args=extra)
        results = run.run_all([(pid, ps) for pid, ps, _ in points])
        rows = []
        for (pid, ps, meta), r in zip(points, results):
            row = {"point": pid}
            row.update(meta)
            row["status"], row["error"] = r["status"], r["error"]
            if r["report"] is not None:
                row.update(r["report"].metric_row())
            ran_at(row)
            rows.append(row)
        columns = (["point"] + VF_COLUMNS + ["status", "error"] + report.METRIC_COLUMNS
                   + report.energy_columns(rows))
        write_csv_atomic(csv_path, columns, rows)
        status = None
    if not args.no_plots:
        wl = cfg.get("workload", {})
        subtitle = "swpu-sim %s%s" % (os.path.basename(config),
                                      ", trace %s" % os.path.basename(trace) if trace else
                                      ", synthetic %s width %g batch %s" % (wl.get("network", "?"),
                                                                           wl.get("width", 1.0),
                                                                           wl.get("batch", "?")))
        if sets:
            subtitle += ", " + " ".join("%s=%s" % kv for kv in sets)
        write_plots(out, rows, fractions, subtitle)
    sys.stdout.write(summary_table(rows, fractions))
    sys.stdout.flush()
    if status is not None:
        return status
    return runner.summarize(PROG, results, csv_path)


if __name__ == "__main__":
    sys.exit(main())
