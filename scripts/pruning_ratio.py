#!/usr/bin/env -S /usr/bin/python3
"""Highest pruning ratio at dense accuracy: structured vs sub-structured (vs unstructured).

The SWPU paper claims that sub-structured pruning reaches a 50.1% higher pruning ratio than
structured pruning while ResNet-18 keeps its unpruned accuracy. This script measures that
claim on the generator's own training (scripts/gen_trace.py, same network, data and dynamic
pruning): it trains a dense reference and, for each mode, a sweep of target sparsities; a
sweep point passes when its mean test accuracy over the seeds is at most --tolerance
percentage points below the dense mean. For each mode it reports the highest pruning ratio
that passes, and the relative gain ratio_sub / ratio_struct - 1.

    /usr/bin/python3 scripts/pruning_ratio.py --width 0.25 --epochs 10 --out ratio.json

Time: one run of width 0.25, 10 epochs on digits takes about 1 minute with 2 threads on an idle
2-core machine, about 105 s with --threads 1; the default sweep is 1 + 2 x 6 runs per seed
(about 25 minutes with --threads 1). Width 1.0 costs about 13 minutes a run. Under CPU
contention prefer --threads 1: PyTorch's threads wait for each other when the cores are shared.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_trace  # noqa: E402
from swpu.files import write_text_atomic  # noqa: E402

PAPER_GAIN = 0.501


def _floats(text):
    try:
        v = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated numbers, got %r" % text)
    if not v or any(not 0.0 < x < 1.0 for x in v):
        raise argparse.ArgumentTypeError("sparsities must lie strictly between 0 and 1: %r" % text)
    return sorted(set(v))


def _ints(text):
    try:
        v = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated integers, got %r" % text)
    if not v:
        raise argparse.ArgumentTypeError("expected at least one seed")
    return v


def _modes(text):
    v = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in v if m not in gen_trace.MODES or m == "dense"]
    if bad or not v:
        raise argparse.ArgumentTypeError(
            "modes must be among %s: %r" % (", ".join(m for m in gen_trace.MODES if m != "dense"),
                                            text))
    return v


def build_parser():
    p = argparse.ArgumentParser(
        prog="pruning_ratio.py",
        description="Highest pruning ratio within a tolerance of dense accuracy, per pruning "
                    "mode, from real training runs of scripts/gen_trace.py.")
    a = p.add_argument
    a("--out", metavar="FILE", help="write the results as JSON to FILE")
    a("--modes", type=_modes, default=["structured", "sub-structured"],
      help="comma-separated modes to sweep (default structured,sub-structured; unstructured, "
           "shape-only, line-only also allowed)")
    a("--sparsities", type=_floats, default=[0.5, 0.7, 0.8, 0.9, 0.95, 0.98],
      help="target sparsities to train at (default 0.5,0.7,0.8,0.9,0.95,0.98)")
    a("--tolerance", type=float, default=1.0,
      help="allowed accuracy loss against dense, in percentage points (default 1.0)")
    a("--seeds", type=_ints, default=[1], help="training seeds; accuracy is their mean (default 1)")
    a("--width", default="0.25", help="channel multiplier (default 0.25)")
    a("--epochs", default="10", help="epochs per run (default 10)")
    a("--threads", default=None, help="PyTorch CPU threads")
    a("--train-args", default="", metavar="'ARGS'",
      help="further gen_trace.py training options, e.g. \"--lr 0.1 --update-interval 5\"")
    return p


def train_cfg(args, mode, sparsity, seed):
    import shlex
    argv = ["--mode", mode, "--width", str(args.width), "--epochs", str(args.epochs),
            "--seed", str(seed)]
    if sparsity is not None:
        argv += ["--sparsity", repr(sparsity)]
    if args.threads:
        argv += ["--threads", str(args.threads)]
    argv += shlex.split(args.train_args)
    gp = gen_trace.build_parser(with_output=False)
    cfg = gp.parse_args(argv)
    gen_trace.check_args(gp, cfg)
    return cfg, argv


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    if not 0.0 <= args.tolerance <= 100.0:
        p.error("--tolerance must be in [0, 100] percentage points")
    for mode in args.modes:  # validate the training options once, before any training
        try:
            train_cfg(args, mode, args.sparsities[0], args.seeds[0])
        except SystemExit:
            p.error("bad training options (see the message above)")
    if args.out and os.path.dirname(args.out) and not os.path.isdir(os.path.dirname(args.out)):
        p.error("--out %s: directory does not exist" % args.out)

    t_start = time.time()
    runs = []

    def train(mode, sparsity, seed):
        cfg, targv = train_cfg(args, mode, sparsity, seed)
        try:
            res = gen_trace.run(cfg, log=lambda *a: None)
        except (gen_trace.ArgError, gen_trace.DataError) as e:
            p.error(str(e))
        row = {"mode": mode, "target": sparsity, "seed": seed, "dataset": res["dataset"],
               "test_accuracy": res["test_accuracy"], "pruning_ratio": res["pruning_ratio"],
               "overall_weight_sparsity": res["overall_weight_sparsity"],
               "seconds": res["elapsed_s"], "args": targv}
        runs.append(row)
        print("%-15s target %-5s seed %-3d accuracy %.4f  ratio %.4f  (%.0f s)"
              % (mode, "-" if sparsity is None else "%.2f" % sparsity, seed,
                 res["test_accuracy"], res["pruning_ratio"], res["elapsed_s"]), flush=True)
        return row

    dense = [train("dense", None, s)["test_accuracy"] for s in args.seeds]
    dense_acc = sum(dense) / len(dense)
    floor = dense_acc - args.tolerance / 100.0
    summary = {}
    points = {}
    for mode in args.modes:
        points[mode] = []
        for sp in args.sparsities:
            rows = [train(mode, sp, s) for s in args.seeds]
            acc = sum(r["test_accuracy"] for r in rows) / len(rows)
            ratio = sum(r["pruning_ratio"] for r in rows) / len(rows)
            points[mode].append({"target": sp, "test_accuracy": round(acc, 6),
                                 "pruning_ratio": round(ratio, 6),
                                 "within_tolerance": acc >= floor - 1e-9})
        ok = [pt for pt in points[mode] if pt["within_tolerance"]]
        best = max(ok, key=lambda pt: pt["pruning_ratio"]) if ok else None
        summary[mode] = {
            "max_pruning_ratio": best["pruning_ratio"] if best else 0.0,
            "accuracy_at_max": best["test_accuracy"] if best else None,
            "target_at_max": best["target"] if best else None,
            "top_of_sweep_passed": bool(ok) and ok[-1] is points[mode][-1],
        }

    gain = None
    if "structured" in summary and "sub-structured" in summary:
        rs = summary["structured"]["max_pruning_ratio"]
        rsub = summary["sub-structured"]["max_pruning_ratio"]
        gain = round(rsub / rs - 1.0, 6) if rs > 0 else None

    result = {
        "what": "highest pruning ratio (fraction of pruned weights over the pruned layers) whose "
                "mean test accuracy is within the tolerance of the dense run's",
        "command": "/usr/bin/python3 scripts/pruning_ratio.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "dataset": runs[0]["dataset"],
        "width": float(args.width), "epochs": int(args.epochs), "seeds": args.seeds,
        "tolerance_pp": args.tolerance,
        "dense_accuracy": round(dense_acc, 6),
        "dense_accuracy_per_seed": dense,
        "sweep": points,
        "summary": summary,
        "relative_gain_sub_vs_structured": gain,
        "paper_relative_gain": PAPER_GAIN,
        "runs": runs,
        "elapsed_s": round(time.time() - t_start, 1),
    }

    print()
    print("dense accuracy %.4f (seeds %s); tolerance %.2f pp -> accuracy floor %.4f"
          % (dense_acc, ",".join(map(str, args.seeds)), args.tolerance, floor))
    head = "%-8s" % "target" + "".join("%-28s" % m for m in args.modes)
    print(head)
    for i, sp in enumerate(args.sparsities):
        cells = []
        for m in args.modes:
            pt = points[m][i]
            cells.append("%-28s" % ("acc %.4f ratio %.4f %s" % (
                pt["test_accuracy"], pt["pruning_ratio"], "ok" if pt["within_tolerance"] else "--")))
        print("%-8.2f" % sp + "".join(cells))
    for m in args.modes:
        s = summary[m]
        print("%-15s max pruning ratio within tolerance: %.4f%s" % (
            m, s["max_pruning_ratio"],
            " (the top of the sweep passed: the true maximum may be higher)"
            if s["top_of_sweep_passed"] else ""))
    if gain is not None:
        print("sub-structured vs structured: %+.1f%% pruning ratio (paper: +%.1f%%)"
              % (100 * gain, 100 * PAPER_GAIN))
    print("total %.0f s" % result["elapsed_s"])
    if args.out:
        write_text_atomic(args.out, json.dumps(result, indent=1) + "\n")
        print("written %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
