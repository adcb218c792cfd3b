#!/usr/bin/env -S /usr/bin/python3
"""Fit the synthetic workload's parameters to a real trace (scripts/gen_trace.py output).

Measures the trace (swpu.trace_stats): per-layer input-activation and output-gradient
densities, the distribution of Hamming distances between filters' line masks, and how masks
change from one mask update to the next; then fits

  * the per-layer density tables of src/synthetic_trace.cpp (the measured values, by layer),
  * workload.line_families and workload.family_flip: the family model of line masks whose
    Hamming-distance histograms (simulated here with the generator's model) are closest, in
    total-variation distance averaged over the pruned conv layers, to the trace's,
  * workload.mask_churn and workload.shape_churn: the mean fraction of kept lines and of kept
    shape groups that change between two consecutive recorded mask updates,
  * workload.shape_row_exponent: a with d_row = d_shape ** a, the fraction of kernel rows (c, r)
    that keep a shape group against the fraction of shape groups kept (mean over the layers).

    /usr/bin/python3 scripts/fit_workload.py --trace configs/traces/resnet18-fmnist-substructured \\
        --out docs/data/workload_fit.json

The fitted values and how the simulator uses them: docs/workload.md.
"""

import argparse
import json
import os
import shlex
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402

from swpu import trace_format  # noqa: E402
from swpu.files import write_text_atomic  # noqa: E402
from swpu.trace_stats import HAMMING_BINS, pairwise_hamming, trace_statistics  # noqa: E402

FAMILIES = [1, 2, 4, 8, 16, 32, 64, 1 << 20]
FLIPS = [round(x, 3) for x in np.arange(0.0, 0.51, 0.02)]


def simulate_lines(k, active_cols, j, dl, families, flip, rng):
    """The generator's family model of a line mask [K, J] (src/synthetic_trace.cpp,
    make_family_lines, without the final re-balancing): lines only in the active columns."""
    fcount = max(1, min(families, k))
    fam = np.empty(k, dtype=int)
    fam[rng.permutation(k)] = np.arange(k) % fcount
    ja = len(active_cols)
    da = min(1.0, dl * j / max(1, ja))  # the density within the columns that hold weights
    base = np.zeros((fcount, ja), dtype=bool)
    for f in range(fcount):
        base[f, rng.permutation(ja)[:int(round(da * ja))]] = True
    p_drop = min(1.0, flip / (2 * da)) if da > 0 else 0.0
    p_add = min(1.0, flip / (2 * (1 - da))) if da < 1 else 0.0
    u = rng.random((k, ja))
    b = base[fam]
    rows = np.where(b, ~(u < p_drop), u < p_add)
    out = np.zeros((k, j), dtype=bool)
    out[:, active_cols] = rows
    return out


def hist(h):
    return np.histogram(h, HAMMING_BINS)[0] / max(1, len(h))


def fit_families(real_layers, seed=1):
    """(families, flip, distance, table) minimising the mean total-variation distance."""
    best = None
    table = []
    for fam in FAMILIES:
        for flip in FLIPS:
            rng = np.random.default_rng(seed)
            dists = []
            for lay in real_layers:
                sim = simulate_lines(lay["K"], lay["active"], lay["J"], lay["line_density"],
                                     fam, flip, rng)
                dists.append(0.5 * np.abs(hist(pairwise_hamming(sim)) - lay["hist"]).sum())
            d = float(np.mean(dists))
            table.append({"families": fam, "flip": flip, "tv_distance": round(d, 4)})
            if best is None or d < best[2]:
                best = (fam, flip, d)
    return best[0], best[1], best[2], table


def producer_name(layer):
    """Name, in the simulator's network (src/network.cpp), of the tensor a weighted layer of
    resnet18-cifar reads: the stem ReLU, a block's relu1 or the previous block's relu2, avgpool."""
    if layer == "fc":
        return "avgpool"
    stage, block, conv = layer[5], int(layer[7]), layer.split(".")[2]
    if conv == "conv2":
        return "layer%s.%d.relu1" % (stage, block)
    if block == 1:
        return "layer%s.0.relu2" % stage
    return "relu" if stage == "1" else "layer%d.1.relu2" % (int(stage) - 1)


def cpp_tables(fitted):
    inp = {}
    for name, d in fitted["input_density"].items():
        if name != "conv1":
            inp.setdefault(producer_name(name), d)
    lines = ["const std::map<std::string, double> kInputDensity = {"]
    lines += ['    {"%s", %.4f},' % (k, v) for k, v in inp.items()]
    lines += ["};", "const std::map<std::string, double> kGradDensity = {"]
    lines += ['    {"%s", %.4f},' % (k, v) for k, v in fitted["grad_density"].items() if k != "fc"]
    lines += ["};"]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="fit_workload.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--trace", required=True, metavar="DIR", help="real trace directory")
    p.add_argument("--out", metavar="FILE", help="write the statistics and fitted values (JSON)")
    p.add_argument("--cpp", action="store_true",
                   help="also print the density tables in the form of src/synthetic_trace.cpp")
    args = p.parse_args(argv)
    problems = trace_format.check_trace(args.trace, load_bitmaps=False) \
        if os.path.isdir(args.trace) else ["no such directory"]
    if problems:
        p.error("--trace %s: %s" % (args.trace, "; ".join(problems[:3])))
    if args.out and os.path.dirname(args.out) and not os.path.isdir(os.path.dirname(args.out)):
        p.error("--out %s: directory does not exist" % args.out)
    stats = trace_statistics(args.trace)
    m = trace_format.load_manifest(args.trace)
    layer_table = {lay["name"]: lay for lay in m["layers"]}
    pruned = set(m["source"].get("pruning", {}).get("pruned_layers", []))

    # line masks of the last recorded iteration, per pruned conv layer
    last = m["iterations"][-1]
    real_layers, row_exponents = [], []
    for name, e in last["layers"].items():
        lay = layer_table[name]
        if lay["type"] != "conv" or name not in pruned or "line_mask" not in e:
            continue
        sh = trace_format.read_bitmap(args.trace, e["shape_mask"]).astype(bool)
        ln = trace_format.read_bitmap(args.trace, e["line_mask"]).astype(bool) & sh.any(2)[None]
        k = ln.shape[0]
        lines = ln.reshape(k, -1)
        active = np.flatnonzero(sh.any(2).reshape(-1))
        d_shape, d_row = float(sh.mean()), float(sh.any(2).mean())
        if 0 < d_shape < 1 and d_row > 0:
            row_exponents.append(np.log(d_row) / np.log(d_shape))
        real_layers.append({"name": name, "K": k, "J": lines.shape[1], "active": active,
                            "line_density": float(lines.mean()),
                            "hist": hist(pairwise_hamming(lines))})
    if not real_layers:
        p.error("--trace %s: no pruned conv layer with line masks (record a line-only or "
                "sub-structured run)" % args.trace)
    families, flip, tv, table = fit_families(real_layers)

    drops = [v["line_dropped"] for ev in stats["evolution"] for n, v in ev["layers"].items()
             if n in pruned]
    churn = round(float(np.mean(drops)), 4) if drops else None
    sdrops = [v["shape_dropped"] for ev in stats["evolution"] for n, v in ev["layers"].items()
              if n in pruned]
    shape_churn = round(float(np.mean(sdrops)), 4) if sdrops else None
    row_exponent = round(float(np.mean(row_exponents)), 4) if row_exponents else None

    fitted = {
        "line_families": families, "family_flip": flip, "family_tv_distance": round(tv, 4),
        "mask_churn": churn, "shape_churn": shape_churn, "shape_row_exponent": row_exponent,
        "input_density": {n: e["input_density"] for n, e in stats["layers"].items()},
        "grad_density": {n: e["grad_density"] for n, e in stats["layers"].items()},
    }
    result = {"command": shlex.join(["/usr/bin/python3", "scripts/fit_workload.py"]
                                    + (sys.argv[1:] if argv is None else list(argv))),
              "fitted": fitted, "statistics": stats, "family_grid": table}
    print("trace %s (%s, iterations %s)" % (args.trace, stats["mode"], stats["iterations"]))
    print("%-22s %8s %8s %8s %8s" % ("layer", "input", "grad", "lines", "hamming"))
    for n, e in stats["layers"].items():
        print("%-22s %8.4f %8.4f %8s %8s" % (n, e["input_density"], e["grad_density"],
                                             e.get("line_density", "-"),
                                             e.get("hamming_mean", "-")))
    print("line families %d, family flip %.2f (mean total-variation distance %.4f)"
          % (families, flip, tv))
    print("mask churn per update: lines %s, shape groups %s (from %d layer updates)"
          % (churn, shape_churn, len(drops)))
    print("shape row exponent: %s (kept shape groups fill d_shape ** a of the kernel rows)"
          % row_exponent)
    if args.cpp:
        print(cpp_tables(fitted))
    if args.out:
        write_text_atomic(args.out, json.dumps(result, indent=1) + "\n")
        print("written %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
