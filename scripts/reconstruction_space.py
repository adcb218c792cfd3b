#!/usr/bin/python3
"""Sweep the ASSUMED parameters that move the paper's claims 3-5 and show where they are reproduced.

For SWPU (configs/swpu.json) and every baseline of claims 3-5 (scripts/swpu/baselines.py
BASELINES), each parameter of scripts/swpu/space.py PARAMS is swept one at a time around the
default config; each claim's ratio (baseline / SWPU, per amortized training iteration) is shown
at every swept value, against the paper's value and tolerance. Per claim and baseline, the swept
values that came nearest the paper's value are then combined into one config, run, and shown as
*chosen* (picked after the fact, with its parameter values). Writes:

    OUT/reconstruction-space.md           tables, chosen configs, plots
    OUT/reconstruction-space.json         every ratio
    OUT/images/space/claim{3,4,5}.png     one plot per claim

OUT is docs/ unless --out is given; the runs go to --work (default out/space/, or OUT/space-runs
with --out), one resumable sweep per machine (scripts/swpu/sweep.py: a rerun skips finished
points). `scripts/reproduce_paper --space` runs the same and embeds it in reproduction.md.

    scripts/reconstruction_space.py                  # default: a few minutes on 2 cores
    scripts/reconstruction_space.py --quick --out /tmp/space     # CI size: 2 values per parameter
    scripts/reconstruction_space.py --param workload.weight_sparsity --param compaction.segments

Exit status: 0 all runs ok, 1 some run failed, 2 bad arguments (nothing run).
"""

import argparse
import datetime
import json
import os
import shlex
import sys

SCRIPTS_DIR = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, SCRIPTS_DIR)
from swpu import baselines, cli, simulator, space  # noqa: E402
from swpu.files import write_text_atomic  # noqa: E402

PROG = "reconstruction_space"


def build_parser():
    ap = argparse.ArgumentParser(prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 description=__doc__)
    ap.add_argument("--quick", action="store_true",
                    help="CI size: width %g, each parameter's two quick values" % baselines.QUICK_WIDTH)
    ap.add_argument("--batch", type=cli.positive_int, default=1, metavar="B",
                    help="images per iteration (default %(default)s)")
    ap.add_argument("--param", action="append", metavar="NAME",
                    help="sweep only this parameter (repeatable; default: all of %s)"
                         % ", ".join(p.name for p in space.PARAMS))
    ap.add_argument("--jobs", type=cli.positive_int, default=os.cpu_count() or 1, metavar="N",
                    help="simulations in parallel (a local Dask cluster of N workers; default "
                         "%(default)s)")
    ap.add_argument("--out", metavar="DIR", help="write the document, JSON and plots here, not docs/")
    ap.add_argument("--work", metavar="DIR", help="directory of the runs (resumable)")
    ap.add_argument("--sim", metavar="PATH",
                    help="simulator binary (default: $SWPU_SIM, else <repo>/build/swpu-sim)")
    ap.add_argument("--timeout", type=cli.positive_float, metavar="SECONDS",
                    help="fail a run that takes longer than this")
    ap.add_argument("-q", "--quiet", action="store_true", help="report only failed runs")
    return ap


def select_params(names, option="--param"):
    if not names:
        return list(space.PARAMS)
    known = {p.name: p for p in space.PARAMS}
    bad = [n for n in names if n not in known]
    if bad:
        raise cli.UsageError("%s %s: not a swept parameter (one of %s)"
                             % (option, ", ".join(bad), ", ".join(known)))
    return [known[n] for n in dict.fromkeys(names)]


def run_space(args, argv, sim, work, prog=PROG):
    """Runs the harness; returns (ev, settings, failed run count)."""
    params = select_params(args.param)
    ev, settings = space.run(sim, work, args.batch, args.quick, ("local", args.jobs), prog,
                             params, args.quiet, args.timeout)
    failed = sum(1 for c in ev for b in c["baselines"] if c["default"][b]["ratio"] is None) + sum(
        1 for c in ev for row in c["params"] for b in c["baselines"]
        for r in row["ratios"][b] if r is None)
    return ev, settings, failed


def default_work(out, explicit_out):
    """Where the runs go: out/space/ of the repository, or OUT/space-runs with --out (shared by
    scripts/reproduce_paper --space, so either resumes the other's runs)."""
    return (os.path.join(out, "space-runs") if explicit_out else
            os.path.join(baselines.REPO_ROOT, "out", "space"))


def write_outputs(ev, settings, out, command):
    """OUT/reconstruction-space.md and .json, OUT/images/space/claim*.png."""
    settings["command"] = command
    settings["date"] = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    subtitle = "swpu-sim, ResNet-18 (synthetic CIFAR form) width %g batch %d" % (
        settings["width"], settings["batch"])
    space.write_plots(ev, os.path.join(out, "images", "space"), subtitle)
    md = ["# The reconstruction space of claims 3-5", "",
          "<!-- GENERATED FILE: written by %s. Do not edit by hand. -->" % command.split()[0],
          "", "**Generated; do not edit by hand.** Command (from the repository root), run %s:"
          % settings["date"], "", "```", command, "```", "",
          "Claims 3-5 and the baselines: [reproduction.md](reproduction.md), "
          "[baselines.md](baselines.md). Per-iteration figures are amortized over one "
          "mask-update interval as in reproduction.md.", "",
          space.render_section(ev, settings, "images/space", heading="##"), ""]
    write_text_atomic(os.path.join(out, "reconstruction-space.md"), "\n".join(md))
    write_text_atomic(os.path.join(out, "reconstruction-space.json"),
                      json.dumps({"generated_by": command.split()[0], "settings": settings,
                                  "claims": ev}, indent=1) + "\n")


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        select_params(args.param)
        sim = simulator.require_simulator(args.sim)
        baselines.check_baselines()
    except (cli.UsageError, simulator.SimulatorError, baselines.DriftError) as e:
        cli.die_usage(PROG, str(e))
    out = os.path.abspath(args.out) if args.out else os.path.join(baselines.REPO_ROOT, "docs")
    work = os.path.abspath(args.work) if args.work else default_work(out, bool(args.out))
    os.environ.setdefault("SC_COPYRIGHT_MESSAGE", "DISABLE")
    ev, settings, failed = run_space(args, argv, sim, work)
    shown = ["scripts/reconstruction_space.py"] + (list(argv) if argv is not None else sys.argv[1:])
    write_outputs(ev, settings, out, " ".join(shlex.quote(a) for a in shown))
    sys.stderr.write("%s: %d runs, %d ratios missing; wrote %s\n" % (
        PROG, settings["runs"], failed, os.path.join(out, "reconstruction-space.md")))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
