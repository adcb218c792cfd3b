#!/usr/bin/env -S /usr/bin/python3
"""Pruning ratio at equal accuracy, per pruning mode, from accuracy-vs-sparsity curves.

The SWPU paper claims that sub-structured pruning reaches a 50.1% higher pruning ratio than
structured pruning while ResNet-18 keeps its unpruned accuracy (claim 6). This script measures
it on real training (the trace generator's network, masks and L2-norm ranking):

1. per seed, a dense ResNet-18 is pre-trained (cached under --runs, shared by all modes);
2. per mode and seed, one run prunes it up a staircase of target sparsities (--levels),
   fine-tuning after each step and testing on the whole test set (swpu.pruning_curve);
   a dense run walks the same staircase unpruned;
3. the summary takes the dense accuracy (mean over seeds, at the end of the staircase) and, per
   mode and seed, the highest pruning ratio whose accuracy stays within --tolerance points of
   it (the curve is read in order up to its first failing step; the crossing of the accuracy
   floor is interpolated linearly between the last passing and the first failing step).

Each finished run is a JSON file under --runs holding its command, settings and curve; runs
already there are skipped, so an interrupted job resumes where it stopped. Two processes may
share a --runs directory (each claims a run with a lock file).

    /usr/bin/python3 scripts/pruning_ratio.py --runs docs/data/pruning/runs --threads 1 \\
        --out docs/data/pruning_ratio_fmnist.json --plot docs/images/pruning_curves.png

The recipe and the measured figures: docs/pruning.md.
"""

import argparse
import glob
import json
import os
import shlex
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import torch
except ImportError as _e:  # pragma: no cover
    sys.exit("pruning_ratio.py needs PyTorch (%s); run it with /usr/bin/python3" % _e)
import numpy as np  # noqa: E402

from swpu import cli  # noqa: E402
from swpu.files import write_text_atomic  # noqa: E402
from swpu.trace_data import DATASETS, DataError  # noqa: E402
from swpu.trace_format import MODES  # noqa: E402
from swpu import pruning_curve  # noqa: E402

PAPER_GAIN = 0.501
PRUNED_MODES = [m for m in MODES if m != "dense"]
DEFAULT_LEVELS = [0.1, 0.2, 0.3, 0.5, 0.7]


def _floats(text):
    try:
        v = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated numbers, got %r" % text)
    if not v or any(not 0.0 < x < 1.0 for x in v):
        raise argparse.ArgumentTypeError("sparsities must lie strictly between 0 and 1: %r" % text)
    if v != sorted(set(v)):
        raise argparse.ArgumentTypeError("levels must be strictly increasing: %r" % text)
    return v


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
    bad = [m for m in v if m not in PRUNED_MODES]
    if bad or not v:
        raise argparse.ArgumentTypeError("modes must be among %s: %r"
                                         % (", ".join(PRUNED_MODES), text))
    return v


def build_parser():
    p = argparse.ArgumentParser(
        prog="pruning_ratio.py",
        description="Pruning ratio within a tolerance of dense accuracy, per pruning mode, from "
                    "accuracy-vs-sparsity curves of real training (iterative pruning with "
                    "fine-tuning). Finished runs under --runs are reused.")
    a = p.add_argument
    a("--runs", required=True, metavar="DIR",
      help="directory of the per-run result files (created; finished runs are skipped)")
    a("--out", metavar="FILE", help="write the summary JSON to FILE")
    a("--plot", metavar="PNG", help="draw accuracy vs pruning ratio per mode to PNG")
    a("--summarize-only", action="store_true",
      help="train nothing: summarize the finished runs under --runs")
    a("--include-partial", action="store_true",
      help="also summarize the steps already tested of unfinished pruned runs (flagged "
           "partial_run; a partial curve that never fell under the floor gives a lower bound)")
    a("--modes", type=_modes, default=list(PRUNED_MODES),
      help="comma-separated pruning modes (default: all five)")
    a("--seeds", type=_ints, default=[1, 2, 3], help="seeds of every mode (default 1,2,3)")
    a("--extra-seeds", type=_ints, default=[1],
      help="seeds of the modes not in --main-modes (default 1)")
    a("--main-modes", type=_modes, default=["structured", "sub-structured"],
      help="modes run with every seed of --seeds (default structured,sub-structured)")
    a("--tolerance", type=cli.nonneg_float, default=0.5,
      help="allowed accuracy loss against the dense mean, percentage points (default 0.5)")
    g = p.add_argument_group("training")
    g.add_argument("--dataset", choices=DATASETS, default="fashion-mnist",
                   help="data set (default fashion-mnist)")
    g.add_argument("--dataset-dir", metavar="DIR", help="its directory (default: the package's)")
    g.add_argument("--split-seed", type=int, default=0, help="seed of the subsets (default 0)")
    g.add_argument("--train-images", type=cli.positive_int,
                   help="training subset size (default: the whole training set)")
    g.add_argument("--test-images", type=cli.positive_int,
                   help="test subset size (default: the whole test set)")
    g.add_argument("--width", type=cli.positive_float, default=0.5,
                   help="channel multiplier (default 0.5)")
    g.add_argument("--batch-size", type=cli.positive_int, default=64)
    g.add_argument("--pretrain-iterations", type=cli.positive_int, default=100,
                   help="dense pre-training iterations (default 100)")
    g.add_argument("--lr", type=cli.positive_float, default=0.05,
                   help="pre-training learning rate, cosine to 0 (default 0.05)")
    g.add_argument("--weight-decay", type=cli.nonneg_float, default=5e-4)
    g.add_argument("--levels", type=_floats, default=DEFAULT_LEVELS,
                   help="staircase of target sparsities (default %s)"
                        % ",".join(map(str, DEFAULT_LEVELS)))
    g.add_argument("--finetune-iterations", type=cli.positive_int, default=10,
                   help="iterations per staircase step (default 10)")
    g.add_argument("--finetune-lr", type=cli.positive_float, default=0.01,
                   help="learning rate of each step, cosine to 0 (default 0.01)")
    g.add_argument("--ramp-updates", type=cli.positive_int, default=3,
                   help="mask updates that raise the sparsity to a step's target (default 3)")
    g.add_argument("--update-interval", type=cli.positive_int, default=3,
                   help="iterations between those mask updates (default 3)")
    g.add_argument("--shape-fraction", type=cli.unit_float, default=0.5,
                   help="sub-structured: d_shape = d ** shape_fraction (default 0.5)")
    g.add_argument("--fc-block", type=cli.positive_int, default=16)
    g.add_argument("--bn-batches", type=int, default=20,
                   help="training batches that re-estimate BatchNorm statistics before each "
                        "test (default 20; 0: none)")
    g.add_argument("--stop-below", type=cli.nonneg_float, default=2.5,
                   help="end a run after a step more than this many points under the "
                        "pre-trained accuracy (default 2.5)")
    g.add_argument("--threads", type=cli.positive_int, help="PyTorch CPU threads")
    return p


RUN_KEYS = ("dataset", "split_seed", "train_images", "test_images", "width", "batch_size",
            "pretrain_iterations", "lr", "weight_decay", "levels", "finetune_iterations",
            "finetune_lr", "ramp_updates", "update_interval", "shape_fraction", "fc_block",
            "bn_batches", "stop_below")


def jobs(args):
    """(mode, seed) in the order they run: per seed dense, structured, sub-structured first."""
    out = []
    for s in args.seeds:
        out.append(("dense", s))
        out += [(m, s) for m in args.modes if m in args.main_modes]
    for s in args.extra_seeds:
        out += [(m, s) for m in args.modes if m not in args.main_modes]
    seen = set()
    return [j for j in out if not (j in seen or seen.add(j))]


def run_path(args, mode, seed):
    return os.path.join(args.runs, "%s-seed%d.json" % (mode, seed))


def _claim(path):
    """Create `path` exclusively (a lock holding our pid); reclaim it from a dead process."""
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            return True
        except FileExistsError:
            try:
                pid = int(open(path).read().strip() or 0)
                os.kill(pid, 0)
                return False
            except (ValueError, ProcessLookupError):
                os.unlink(path)
            except PermissionError:
                return False
    return False


def _pretrained(args, seed, log):
    path = os.path.join(args.runs, "pretrain-seed%d.pt" % seed)
    lock = path + ".lock"
    while True:
        if os.path.exists(path):
            return pruning_curve.pretrain(_cfg(args, "dense", seed), path, log)
        if _claim(lock):
            try:
                return pruning_curve.pretrain(_cfg(args, "dense", seed), path, log)
            finally:
                os.unlink(lock)
        time.sleep(5)


def _cfg(args, mode, seed):
    ns = argparse.Namespace(**vars(args))
    ns.mode, ns.seed = mode, seed
    return ns


def _pretrain_busy(args, seed):
    path = os.path.join(args.runs, "pretrain-seed%d.pt" % seed)
    if os.path.exists(path) or not os.path.exists(path + ".lock"):
        return False
    try:
        os.kill(int(open(path + ".lock").read().strip() or 0), 0)
        return True
    except (ValueError, ProcessLookupError, FileNotFoundError):
        return False


def _next_job(args):
    """The first unfinished, unclaimed run whose pre-training is not under way elsewhere;
    "wait" when only such blocked runs remain, None when nothing is left to do here."""
    blocked = False
    for mode, seed in jobs(args):
        path = run_path(args, mode, seed)
        if os.path.exists(path):
            continue
        if _pretrain_busy(args, seed):
            blocked = True
            continue
        if _claim(path + ".lock"):
            return mode, seed
    return "wait" if blocked else None


def _pretrain_next(args, log):
    """Pre-train the first seed whose checkpoint is neither on disk nor under way elsewhere;
    False when no such seed is left. Every seed is pre-trained before any curve starts, so that
    several processes sharing --runs never wait for a pre-training another one started late."""
    for seed in dict.fromkeys(list(args.seeds) + list(args.extra_seeds)):
        if all(os.path.exists(run_path(args, m, s)) for m, s in jobs(args) if s == seed):
            continue
        path = os.path.join(args.runs, "pretrain-seed%d.pt" % seed)
        if os.path.exists(path):
            continue
        if _claim(path + ".lock"):
            try:
                if not os.path.exists(path):
                    pruning_curve.pretrain(_cfg(args, "dense", seed), path, log)
            finally:
                os.unlink(path + ".lock")
            return True
    return False


def train_all(args, command, log):
    while _pretrain_next(args, log):
        pass
    while True:
        job = _next_job(args)
        if job is None:
            return
        if job == "wait":
            time.sleep(10)
            continue
        mode, seed = job
        path = run_path(args, mode, seed)
        lock = path + ".lock"
        try:
            ck = _pretrained(args, seed, log)
            cfg = _cfg(args, mode, seed)
            curve = pruning_curve.run_curve(cfg, ck, log, partial_path=path + ".partial")
            res = {"command": command, "mode": mode, "seed": seed,
                   "settings": {k: getattr(args, k) for k in RUN_KEYS},
                   "pretrain": {"test_accuracy": round(ck["test_accuracy"], 6),
                                "iterations": ck["iterations"], "seconds": ck["seconds"]},
                   "torch": torch.__version__, "threads": torch.get_num_threads()}
            res.update(curve)
            write_text_atomic(path, json.dumps(res, indent=1) + "\n")
            if os.path.exists(path + ".partial"):
                os.unlink(path + ".partial")
            log("finished %s" % path)
        finally:
            if os.path.exists(lock):
                os.unlink(lock)


def load_runs(runs_dir, partial=False):
    """Finished runs {(mode, seed): run}; with partial, also the steps already tested of
    unfinished pruned runs (`<run>.json.partial`), marked "partial": true."""
    out = {}
    for path in sorted(glob.glob(os.path.join(runs_dir, "*-seed*.json"))):
        try:
            with open(path) as f:
                r = json.load(f)
            out[(r["mode"], int(r["seed"]))] = r
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DataError("%s: not a pruning_ratio.py run file (%s)" % (path, e))
    if partial:
        for path in sorted(glob.glob(os.path.join(runs_dir, "*-seed*.json.partial"))):
            name = os.path.basename(path)[:-len(".json.partial")]
            mode, seed = name.rsplit("-seed", 1)
            if (mode, int(seed)) in out or mode == "dense":
                continue
            try:
                with open(path) as f:
                    pts = json.load(f)["points"]
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise DataError("%s: not a partial run file (%s)" % (path, e))
            if pts:
                out[(mode, int(seed))] = {"mode": mode, "seed": int(seed), "points": pts,
                                          "partial": True}
    return out


def t_interval95(values):
    """(mean, sample sd, half-width of the 95% t interval) of a list; sd/half None for n < 2."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()), None, None
    from scipy import stats  # noqa: F401  (Debian's python3-scipy comes with sklearn)
    sd = float(v.std(ddof=1))
    return float(v.mean()), sd, float(stats.t.ppf(0.975, len(v) - 1) * sd / np.sqrt(len(v)))


def _paired_gain(st, sub, field):
    """Claim 6 over the seeds both modes ran, paired by seed: the same seed shares its
    pre-trained network and data order, so the delta method on mean_sub/mean_struct takes the
    covariance of the two modes' ratios (`field` of per_seed) into account."""
    common = sorted((s for s in set(st["per_seed"]) & set(sub["per_seed"])
                     if st["per_seed"][s][field] is not None
                     and sub["per_seed"][s][field] is not None), key=int)
    if len(common) < 3:  # two pairs are always perfectly correlated: no usable covariance
        return None
    from scipy import stats
    a = np.array([st["per_seed"][s][field] for s in common], dtype=float)
    b = np.array([sub["per_seed"][s][field] for s in common], dtype=float)
    ma, mb, n = a.mean(), b.mean(), len(common)
    if ma <= 0 or mb <= 0:
        return None
    va, vb = a.var(ddof=1) / n, b.var(ddof=1) / n
    cov = float(np.cov(a, b, ddof=1)[0, 1]) / n
    g = mb / ma - 1.0
    se = (mb / ma) * np.sqrt(max(va / ma ** 2 + vb / mb ** 2 - 2 * cov / (ma * mb), 0.0))
    q = float(stats.t.ppf(0.975, n - 1))
    return {"seeds": [int(s) for s in common], "ratio": field, "value": round(float(g), 4),
            "ci95": [round(float(g - q * se), 4), round(float(g + q * se), 4)],
            "per_seed_gain": {s: (round(float(y / x - 1.0), 4) if x > 0 else None)
                              for s, x, y in zip(common, a, b)},
            "ci_method": "delta method on mean_sub/mean_struct over the seeds both modes ran, "
                         "with the covariance of their paired ratios, t quantile with n-1 "
                         "degrees of freedom"}


def summarize(runs, tolerance, command):
    dense = {s: r for (m, s), r in runs.items() if m == "dense"}
    if not dense:
        raise DataError("no finished dense run: the accuracy floor needs one")
    dense_final = {s: r["points"][-1]["test_accuracy"] for s, r in sorted(dense.items())}
    dmean, dsd, _ = t_interval95(list(dense_final.values()))
    floor = dmean - tolerance / 100.0
    # the dense mean at each step of the staircase (dense runs tested at every step): the
    # step-matched floor compares a pruned network with dense ones of the same training budget
    by_step = {}
    for r in dense.values():
        for p in r["points"]:
            by_step.setdefault(p["target"], []).append(p["test_accuracy"])
    step_mean = {t: float(np.mean(v)) for t, v in by_step.items() if len(v) == len(dense)}
    modes = {}
    for (m, s), r in sorted(runs.items()):
        if m == "dense":
            continue
        pts = [(p["pruning_ratio"], p["test_accuracy"]) for p in r["points"]]
        step, interp = pruning_curve.crossing(pts, floor)
        acc_at = max([a for (rr, a) in pts if rr == step] or [None], key=lambda x: x or 0)
        d = modes.setdefault(m, {"per_seed": {}})
        paired = None
        if s in dense_final:  # against the same seed's dense run (removes the seed's offset)
            paired = round(pruning_curve.crossing(pts, dense_final[s] - tolerance / 100.0)[1], 4)
        matched = None
        if r["points"] and all(p["target"] in step_mean for p in r["points"]):
            matched = round(pruning_curve.crossing(
                [(p["pruning_ratio"],
                  p["test_accuracy"] - (step_mean[p["target"]] - tolerance / 100.0))
                 for p in r["points"]], 0.0)[1], 4)
        own = None  # the same seed's dense run at the same step: same network, same budget
        if s in dense:
            own_step = {p["target"]: p["test_accuracy"] for p in dense[s]["points"]}
            if r["points"] and all(p["target"] in own_step for p in r["points"]):
                own = round(pruning_curve.crossing(
                    [(p["pruning_ratio"],
                      p["test_accuracy"] - (own_step[p["target"]] - tolerance / 100.0))
                     for p in r["points"]], 0.0)[1], 4)
        d["per_seed"][str(s)] = {"partial_run": bool(r.get("partial")),
                                 "ratio_paired_same_seed_dense": paired,
                                 "ratio_step_matched": matched,
                                 "ratio_step_matched_same_seed": own,
                                 "ratio_interpolated": round(interp, 4),
                                 "ratio_last_passing_step": round(step, 4),
                                 "accuracy_at_last_passing_step": acc_at,
                                 "steps_run": len(pts),
                                 "curve_reached_floor": any(a < floor for _, a in pts)}
    for m, d in modes.items():
        vals = [v["ratio_interpolated"] for v in d["per_seed"].values()]
        mean, sd, half = t_interval95(vals)
        d["ratio_mean"] = round(mean, 4)
        d["ratio_sd"] = None if sd is None else round(sd, 4)
        d["ratio_ci95_halfwidth"] = None if half is None else round(half, 4)
        d["ratio_min"], d["ratio_max"] = min(vals), max(vals)
        d["seeds"] = len(vals)
        steps = [v["ratio_last_passing_step"] for v in d["per_seed"].values()]
        d["last_passing_step_mean"] = round(float(np.mean(steps)), 4)
        pv = [v["ratio_paired_same_seed_dense"] for v in d["per_seed"].values()
              if v["ratio_paired_same_seed_dense"] is not None]
        if pv:
            pm, psd, _ = t_interval95(pv)
            d["paired_ratio_mean"] = round(pm, 4)
            d["paired_ratio_sd"] = None if psd is None else round(psd, 4)
        for field, key in (("ratio_step_matched", "step_matched_ratio"),
                           ("ratio_step_matched_same_seed", "step_matched_same_seed_ratio")):
            sv = [v[field] for v in d["per_seed"].values() if v[field] is not None]
            if sv:
                sm, ssd, shalf = t_interval95(sv)
                d[key + "_mean"] = round(sm, 4)
                d[key + "_sd"] = None if ssd is None else round(ssd, 4)
                d[key + "_ci95_halfwidth"] = None if shalf is None else round(shalf, 4)
    gain = None
    if "structured" in modes and "sub-structured" in modes:
        st, sub = modes["structured"], modes["sub-structured"]
        g = sub["ratio_mean"] / st["ratio_mean"] - 1.0 if st["ratio_mean"] > 0 else None
        gain = {"value": None if g is None else round(g, 4), "paper": PAPER_GAIN,
                "definition": "mean sub-structured ratio / mean structured ratio - 1"}
        a = [v["ratio_interpolated"] for v in st["per_seed"].values()]
        b = [v["ratio_interpolated"] for v in sub["per_seed"].values()]
        if g is not None and len(a) >= 2 and len(b) >= 2:
            # delta method on the ratio of two independent means, with the t quantile of the
            # smaller sample
            from scipy import stats
            ma, mb = np.mean(a), np.mean(b)
            va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
            se = (mb / ma) * np.sqrt(va / ma ** 2 + vb / mb ** 2)
            q = float(stats.t.ppf(0.975, min(len(a), len(b)) - 1))
            gain["ci95"] = [round(g - q * se, 4), round(g + q * se, 4)]
            gain["ci_method"] = ("delta method on mean_sub/mean_struct (independent seeds), "
                                 "t quantile with min(n)-1 degrees of freedom")
        for key, field in (("paired", "ratio_interpolated"),
                           ("paired_same_seed_dense", "ratio_paired_same_seed_dense"),
                           ("paired_step_matched", "ratio_step_matched"),
                           ("paired_step_matched_same_seed", "ratio_step_matched_same_seed")):
            pg = _paired_gain(st, sub, field)
            if pg:
                gain[key] = pg
    # per step of the staircase: each mode's mean accuracy over the seeds that tested it, against
    # the dense mean at the end and at the same step; and sub-structured minus structured, paired
    # by seed (same pre-trained network, same batches)
    per_step = {}
    curves = {}
    for (m, s), r in runs.items():
        for p in r["points"]:
            curves.setdefault(m, {}).setdefault(p["target"], {})[s] = p
    for m, steps in sorted(curves.items()):
        if m == "dense":
            continue
        rows = {}
        for t, by_seed in sorted(steps.items()):
            accs = [p["test_accuracy"] for p in by_seed.values()]
            row = {"seeds": sorted(by_seed),
                   "pruning_ratio_mean": round(float(np.mean(
                       [p["pruning_ratio"] for p in by_seed.values()])), 4),
                   "accuracy_mean": round(float(np.mean(accs)), 6),
                   "vs_dense_end_pp": round(100 * (float(np.mean(accs)) - dmean), 3)}
            if t in step_mean:
                row["vs_dense_same_step_pp"] = round(100 * (float(np.mean(accs)) - step_mean[t]), 3)
            rows[str(t)] = row
        per_step[m] = rows
    if "structured" in curves and "sub-structured" in curves:
        rows = {}
        for t in sorted(set(curves["structured"]) & set(curves["sub-structured"])):
            a, b = curves["structured"][t], curves["sub-structured"][t]
            common = sorted(set(a) & set(b))
            if not common:
                continue
            d = [100 * (b[s]["test_accuracy"] - a[s]["test_accuracy"]) for s in common]
            mean, sd, half = t_interval95(d)
            rows[str(t)] = {"seeds": common, "mean_pp": round(mean, 3),
                            "sd_pp": None if sd is None else round(sd, 3),
                            "ci95_halfwidth_pp": None if half is None else round(half, 3)}
        per_step["sub_minus_structured_paired"] = rows
    return {
        "what": "highest pruning ratio (fraction of pruned weights over the pruned layers) "
                "whose test accuracy stays within the tolerance of the dense mean, read from "
                "accuracy-vs-sparsity curves of iterative pruning with fine-tuning",
        "command": command,
        "tolerance_pp": tolerance,
        "dense_accuracy_per_seed": {str(s): a for s, a in dense_final.items()},
        "dense_accuracy_mean": round(dmean, 6),
        "dense_accuracy_sd": None if dsd is None else round(dsd, 6),
        "accuracy_floor": round(floor, 6),
        "dense_accuracy_mean_per_step": {str(t): round(a, 6) for t, a in sorted(step_mean.items())},
        "modes": modes,
        "claim6_gain_sub_vs_structured": gain,
        "settings": next(r["settings"] for r in runs.values() if "settings" in r),
        "accuracy_per_step": per_step,
        "curves": {"%s-seed%d" % k: r["points"] for k, r in sorted(runs.items())},
    }


def plot(summary, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    colors = {"structured": "C0", "sub-structured": "C3", "unstructured": "C2",
              "shape-only": "C1", "line-only": "C4"}
    for name, pts in summary["curves"].items():
        mode = name.rsplit("-seed", 1)[0]
        if mode == "dense":
            continue
        seed = name.rsplit("-seed", 1)[1]
        ax.plot([p["pruning_ratio"] for p in pts], [100 * p["test_accuracy"] for p in pts],
                marker="o", ms=3, color=colors.get(mode, "k"), alpha=0.8,
                label=mode if seed == min(s.rsplit("-seed", 1)[1] for s in summary["curves"]
                                          if s.startswith(mode + "-seed")) else None)
    d = 100 * summary["dense_accuracy_mean"]
    ax.axhline(d, color="k", lw=1, label="dense mean %.2f%%" % d)
    ax.axhline(100 * summary["accuracy_floor"], color="k", lw=1, ls="--",
               label="dense - %.1f pt" % summary["tolerance_pp"])
    steps = summary.get("dense_accuracy_mean_per_step") or {}
    if len(steps) > 1:  # the dense mean at each step, minus the tolerance (step-matched floor)
        ts = sorted(steps, key=float)
        ax.plot([float(t) for t in ts], [100 * steps[t] - summary["tolerance_pp"] for t in ts],
                color="0.4", lw=1, ls=":", marker="x", ms=4,
                label="dense at the same step - %.1f pt" % summary["tolerance_pp"])
    ax.set_xlabel("pruning ratio (pruned layers)")
    ax.set_ylabel("test accuracy, %s (%%)" % summary["settings"]["dataset"])
    accs = [100 * p["test_accuracy"] for pts in summary["curves"].values() for p in pts]
    ax.set_ylim(max(0, d - 12, min(accs + [100 * summary["accuracy_floor"]]) - 1),
                min(100, max(accs + [d]) + 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("ResNet-18 (width %g): accuracy vs pruning ratio, one line per seed"
                 % summary["settings"]["width"], fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    if args.tolerance > 100:
        p.error("--tolerance must be at most 100 percentage points")
    for f, what in ((args.out, "--out"), (args.plot, "--plot")):
        if f and os.path.dirname(f) and not os.path.isdir(os.path.dirname(f)):
            p.error("%s %s: directory does not exist" % (what, f))
    command = shlex.join(["/usr/bin/python3", "scripts/pruning_ratio.py"]
                         + (sys.argv[1:] if argv is None else list(argv)))
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.runs, exist_ok=True)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    try:
        if not args.summarize_only:
            train_all(args, command, log)
        runs = load_runs(args.runs, args.include_partial)
        if not runs:
            p.error("--runs %s: no finished runs to summarize" % args.runs)
        summary = summarize(runs, args.tolerance, command)
    except (DataError, ValueError) as e:
        p.error(str(e))
    print("dense accuracy %.4f (seeds %s); floor %.4f"
          % (summary["dense_accuracy_mean"], ",".join(summary["dense_accuracy_per_seed"]),
             summary["accuracy_floor"]))
    for m, d in summary["modes"].items():
        print("%-15s ratio %.4f (sd %s, seeds %d; last passing step mean %.4f)"
              % (m, d["ratio_mean"], d["ratio_sd"], d["seeds"], d["last_passing_step_mean"]))
        for key, what in (("step_matched_ratio", "step-matched floor"),
                          ("step_matched_same_seed_ratio", "own seed, step-matched")):
            if key + "_mean" in d:
                print("%-15s %s: ratio %.4f (sd %s)"
                      % ("", what, d[key + "_mean"], d[key + "_sd"]))
    g = summary["claim6_gain_sub_vs_structured"]
    if g and g["value"] is not None:
        ci = g.get("ci95")
        print("claim 6: sub-structured vs structured %+.1f%% (95%% CI %s; paper +%.1f%%)"
              % (100 * g["value"], "[%+.1f%%, %+.1f%%]" % (100 * ci[0], 100 * ci[1]) if ci
                 else "not available", 100 * PAPER_GAIN))
        for key, what in (("paired", "paired by seed"),
                          ("paired_same_seed_dense", "paired, each seed's own dense floor"),
                          ("paired_step_matched", "paired, floor of the dense mean at the same "
                                                  "step"),
                          ("paired_step_matched_same_seed", "paired, floor of the seed's own "
                                                            "dense run at the same step")):
            pg = g.get(key)
            if pg:
                print("claim 6, %s (seeds %s): %+.1f%% (95%% CI [%+.1f%%, %+.1f%%])"
                      % (what, ",".join(map(str, pg["seeds"])), 100 * pg["value"],
                         100 * pg["ci95"][0], 100 * pg["ci95"][1]))
    if args.out:
        write_text_atomic(args.out, json.dumps(summary, indent=1) + "\n")
        print("written %s" % args.out)
    if args.plot:
        plot(summary, args.plot)
        print("written %s" % args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
