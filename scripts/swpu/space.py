"""The reconstruction space (scripts/reconstruction_space.py, scripts/reproduce_paper --space).

The paper fixes only headline facts; most of the machine is ASSUMED. This sweeps the ASSUMED
parameters that move claims 3-5 (each ratio of a baseline to SWPU) one at a time around the
default config, for SWPU and every baseline of those claims, and shows per claim where the paper's
value is reproduced and where not. Then, per claim and baseline, it combines the swept values
that came closest to the paper's value into one config, runs it and shows it as *chosen*: a
config picked after the fact to land on a claim, with its parameter values, never a prediction.

Adding a swept parameter is one Param line in PARAMS; adding a machine is one entry in
swpu.baselines.BASELINES naming the claims it is a baseline of.

The runs go through swpu.sweep.Sweep (Dask, resumable: a rerun skips finished points), one sweep
per machine, each run's report kept under WORK/<machine>/points/.
"""

import collections
import math
import os
import sys

from . import claims as cl
from .baselines import BASELINES, SWPU_CONFIG, baseline_path, baselines_of, flatten, resolved
from .cli import fmt_num
from .report import Report, ReportError
from .sweep import Sweep, describe, run_on_dask


class Param(object):
    """A swept ASSUMED parameter. `paths`: the config fields it sets (default: [name]);
    `applies_to`: "swpu" (SWPU's own design choice: the baselines keep their config), "all" (the
    chip's shared memory system or the workload: every machine at the same value) or a tuple of
    machine names; `quick`: the values of --quick (default: the first and last)."""

    def __init__(self, name, values, applies_to="all", paths=None, quick=None, doc=""):
        self.name, self.values, self.applies_to = name, list(values), applies_to
        self.paths = list(paths or [name])
        self.quick = list(quick) if quick is not None else [self.values[0], self.values[-1]]
        self.doc = doc

    def applies(self, machine):
        if self.applies_to == "all":
            return True
        if self.applies_to == "swpu":
            return machine == "swpu"
        return machine in self.applies_to

    def sets(self, value):
        return [(p, value) for p in self.paths]


_BANKS = ["buffers.weight.banks", "buffers.activation.banks", "buffers.output.banks"]

# One line per swept parameter (docs/reconstruction-space.md shows their meaning).
PARAMS = [
    Param("compaction.window", [16, 32, 64], "swpu", quick=[32, 64],
          doc="compaction window N of SWPU's log-routing network"),
    Param("compaction.segments", [1, 2, 4, 8, 16], "swpu", quick=[1, 4],
          doc="spatially disconnected segments D of SWPU's routing network"),
    Param("buffers.banks", [2, 4, 8, 16, 32, 256], "all", paths=_BANKS, quick=[8, 256],
          doc="banks of each global buffer (every machine)"),
    Param("dram.bandwidth_gbps", [3.2, 6.4, 12.8, 25.6, 51.2], "all", quick=[12.8, 51.2],
          doc="DRAM bandwidth in GB/s (every machine)"),
    Param("workload.weight_sparsity", [0.5, 0.6, 0.7, 0.8, 0.9], "all", quick=[0.7, 0.9],
          doc="weight sparsity (every machine at the same sparsity)"),
    Param("workload.input_density", [-1, 0.3, 0.5, 0.7, 1.0], "all", quick=[-1, 1.0],
          doc="activation density (-1: per-layer defaults, docs/workload.md)"),
    Param("workload.family_flip", [0.0, 0.05, 0.1, 0.2, 0.3], "all", quick=[0.0, 0.3],
          doc="mask correlation: probability that a filter's line bit leaves its family's"),
    Param("workload.line_families", [1, 4, 16, 64], "all", quick=[1, 16],
          doc="mask correlation: latent families of filters sharing line masks"),
    Param("pe_array.group_sync", ["lockstep", "decoupled"], "swpu",
          doc="SWPU's group synchronization: lockstep (one shared compaction) or decoupled "
              "(per-group FIFOs and networks)"),
    Param("pe_array.bp_orientation", ["channel", "filter"], "swpu",
          doc="what SWPU's groups hold in BP: input channels (the union of G channels' masks) or "
              "FF's filter clusters (per-group dO rows, a cross-group sum per input channel)"),
    Param("pe_array.group_fifo_depth", [1, 2, 4, 16], "all", quick=[1, 16],
          doc="operand FIFO depth of decoupled groups, in lines (the fine-grained machines; "
              "SWPU when decoupled)"),
    Param("vector_unit.fuse_bn_relu", [False, True], "swpu",
          doc="BN and ReLU fused into SWPU's conv write-back and load"),
    Param("vector_unit.fuse_sgd", [False, True], "all",
          doc="the SGD update in each layer's WG epilogue (every machine)"),
    Param("energy.crossbar_route_pj", [0.1, 0.25, 0.5, 1.0], "all", quick=[0.1, 1.0],
          doc="energy of one operand through a 64-input crossbar (the fine-grained machines and "
              "the technique-3 ablation)"),
]

CLAIM_IDS = ("3", "4", "5")


def claim_defs():
    """[(claim id, text, paper value, tolerance, metric key)] of claims 3-5 (swpu.claims)."""
    return [(c[0], c[1], c[2], c[3], c[4]) for c in cl.PAIR_CLAIMS if c[0] in CLAIM_IDS]


def machines():
    """SWPU and every baseline of claims 3-5, in BASELINES order."""
    out = ["swpu"]
    for cid in CLAIM_IDS:
        out += [n for n in baselines_of(cid) if n not in out]
    return out


def machine_config(name):
    return SWPU_CONFIG if name == "swpu" else baseline_path(name)


def _same(a, b):
    try:
        return abs(float(a) - float(b)) <= 1e-12 * max(1.0, abs(float(a)))
    except (TypeError, ValueError):
        return a == b


def point_sets(machine, sets, defaults):
    """The --set pairs a machine needs for `sets`, without those equal to its own config."""
    return [(k, v) for k, v in sets if not _same(defaults.get(k), v)]


def _label(sets):
    return ",".join("%s=%s" % (k, fmt_num(v) if isinstance(v, float) else v) for k, v in sets)


def plan(params, quick):
    """The points of the one-at-a-time sweep: {machine: OrderedDict(label -> sets)} with the
    machine's base point under label "" and, per (param, value), the point it runs at (the base
    point where the parameter does not apply to it or equals its own config)."""
    ms = machines()
    defaults = {m: flatten(resolved(machine_config(m))) for m in ms}
    runs = {m: collections.OrderedDict([("", [])]) for m in ms}
    where = {}  # (machine, param name, value) -> label
    for p in params:
        for v in (p.quick if quick else p.values):
            for m in ms:
                ps = point_sets(m, p.sets(v), defaults[m]) if p.applies(m) else []
                lab = _label(ps)
                runs[m].setdefault(lab, ps)
                where[(m, p.name, v)] = lab
    return runs, where, defaults


def _point_id(label):
    return "base" if not label else label.replace("/", "_")


def _set_text(v):
    if isinstance(v, bool):
        return str(v).lower()
    return fmt_num(v) if isinstance(v, float) else str(v)


def run_sweeps(sim, runs, work, base_sets, cluster, prog, quiet=False, timeout=None):
    """Runs every machine's points (resumable: one swpu.sweep.Sweep per machine, its finished
    points skipped) on one Dask cluster. Returns {machine: {label: metrics or None}}."""
    sweeps, plan_ = {}, []
    for m, pts in runs.items():
        sw = Sweep(sim, machine_config(m), None, base_sets, os.path.join(work, m),
                   ["--engine", cl.ENGINE], timeout, "%s[%s]" % (prog, m), quiet)
        os.makedirs(os.path.join(sw.out, "points"), exist_ok=True)
        sweeps[m] = sw
        for lab, ps in pts.items():
            sets = [(k, _set_text(v)) for k, v in ps]
            plan_.append((m, lab, sets, sw.task(_point_id(lab), sets)))
    records = {}
    for m, lab, sets, t in plan_:
        rec = sweeps[m].finished(t)
        if rec is not None:
            records[t["key"], m] = rec
    todo = [t for m, lab, sets, t in plan_ if (t["key"], m) not in records]
    by_key = {t["key"]: m for m, lab, sets, t in plan_}
    sys.stderr.write("%s: %d runs on %d machines, %d already finished (skipped), %d to run on %s\n"
                     % (prog, len(plan_), len(runs), len(plan_) - len(todo), len(todo),
                        describe(cluster)))
    done = [0]

    def on_record(rec):
        done[0] += 1
        records[rec["key"], by_key[rec["key"]]] = rec
        if rec["status"] != "ok":
            sys.stderr.write("[%d/%d] FAILED  %s %s: %s\n" % (done[0], len(todo), by_key[rec["key"]],
                                                           rec["point"], rec["error"]))
        elif not quiet:
            sys.stderr.write("[%d/%d] ok      %s %s (%.1f s)\n" % (done[0], len(todo), by_key[rec["key"]],
                                                              rec["point"], rec["seconds"]))
    if todo:
        run_on_dask(todo, cluster, prog, on_record)
    out = {}
    for m, sw in sweeps.items():
        mine = [(lab, sets, t) for mm, lab, sets, t in plan_ if mm == m]
        sw.write_table(os.path.join(sw.out, "results.csv"), ["point_sets"], [t for _, _, t in mine],
                       {t["key"]: records[t["key"], m] for _, _, t in mine if (t["key"], m) in records},
                       {t["key"]: {"point_sets": lab or "(config as is)"} for lab, _, t in mine})
        res = {}
        for lab, sets, t in mine:
            try:
                if records.get((t["key"], m), {}).get("status") != "ok":
                    raise ReportError("run failed")
                res[lab] = cl.network_metrics(Report.load(t["dir"]))
                res[lab]["command"] = " ".join(
                    ["build/swpu-sim", "--config", cl.rel(machine_config(m)), "--engine", cl.ENGINE]
                    + ["--set %s=%s" % kv for kv in base_sets + sets])
            except (ReportError, KeyError, ValueError, OSError):
                res[lab] = None
        out[m] = res
    return out


def _status(r, paper, tol):
    if r is None:
        return "run failed"
    return "met" if abs(r / paper - 1.0) <= tol + 1e-12 else "missed"


def _ratio(num, den, key):
    if num is None or den is None or not den.get(key):
        return None
    return num[key] / den[key]


def evaluate(params, quick, where, results):
    """Per claim: the default ratio, per parameter the ratio at each value for each baseline,
    where the paper value is met, and the nearest swept point."""
    out = []
    for cid, text, paper, tol, key in claim_defs():
        names = baselines_of(cid)
        c = {"id": cid, "claim": text, "paper": paper, "tolerance": tol, "metric": key,
             "baselines": names, "default": {}, "params": [], "nearest": {}}
        for b in names:
            r = _ratio(results[b].get(""), results["swpu"].get(""), key)
            c["default"][b] = {"ratio": r, "status": _status(r, paper, tol)}
        for p in params:
            vals = p.quick if quick else p.values
            row = {"param": p.name, "doc": p.doc, "applies_to": p.applies_to, "values": vals,
                   "ratios": {}, "met_at": {}}
            for b in names:
                rs = [_ratio(results[b].get(where[(b, p.name, v)]),
                             results["swpu"].get(where[("swpu", p.name, v)]), key) for v in vals]
                row["ratios"][b] = rs
                row["met_at"][b] = [v for v, r in zip(vals, rs) if _status(r, paper, tol) == "met"]
                for v, r in zip(vals, rs):
                    if r is None:
                        continue
                    best = c["nearest"].get(b)
                    if best is None or abs(math.log(r / paper)) < abs(math.log(best["ratio"] / paper)):
                        c["nearest"][b] = {"param": p.name, "value": v, "ratio": r,
                                           "status": _status(r, paper, tol)}
            c["params"].append(row)
        out.append(c)
    return out


MAX_COMBINED = 4  # the chosen config combines at most this many parameters' values


def chosen_sets(params, claim, baseline):
    """The parameter values a claim's chosen config may combine, for one baseline: per parameter
    the swept value whose ratio came nearest the paper's value, where that is nearer than the
    default; ordered nearest first, at most MAX_COMBINED."""
    paper = claim["paper"]
    d = claim["default"][baseline]["ratio"]
    if d is None:
        return []
    picks = []
    for p, row in zip(params, claim["params"]):
        best = None
        for v, r in zip(row["values"], row["ratios"][baseline]):
            if r is not None and abs(math.log(r / paper)) < abs(math.log(d / paper)) - 1e-9 and (
                    best is None or abs(math.log(r / paper)) < abs(math.log(best[1] / paper))):
                best = (v, r)
        if best is not None:
            picks.append((p, best[0], abs(math.log(best[1] / paper))))
    picks.sort(key=lambda x: x[2])
    return [(p, v) for p, v, _ in picks[:MAX_COMBINED]]


def plan_chosen(params, ev, defaults):
    """The candidates of the chosen configs: per (claim, baseline) the combinations of its first
    1, 2, ... picks (chosen_sets()); their points {machine: OrderedDict(label -> sets)}."""
    runs = collections.defaultdict(collections.OrderedDict)
    chosen = []
    for c in ev:
        for b in c["baselines"]:
            picks = chosen_sets(params, c, b)
            cands = []
            for k in range(1, len(picks) + 1):
                labs = {}
                for m in ("swpu", b):
                    ps = []
                    for p, v in picks[:k]:
                        if p.applies(m):
                            ps += point_sets(m, p.sets(v), defaults[m])
                    lab = _label(ps)
                    runs[m].setdefault(lab, ps)
                    labs[m] = lab
                cands.append({"values": [(p.name, v) for p, v in picks[:k]], "labels": labs})
            if cands:
                chosen.append({"claim": c["id"], "baseline": b, "candidates": cands})
    return runs, chosen


def evaluate_chosen(ev, chosen, results):
    """Each (claim, baseline)'s chosen config: the candidate nearest the paper's value."""
    by_id = {c["id"]: c for c in ev}
    for ch in chosen:
        c = by_id[ch["claim"]]
        best = None
        for cand in ch["candidates"]:
            sw = results["swpu"].get(cand["labels"]["swpu"])
            bm = results[ch["baseline"]].get(cand["labels"][ch["baseline"]])
            cand["ratio"] = _ratio(bm, sw, c["metric"])
            cand["commands"] = [x["command"] for x in (sw, bm) if x]
            if cand["ratio"] is not None and (best is None or abs(math.log(cand["ratio"] / c["paper"]))
                                              < abs(math.log(best["ratio"] / c["paper"]))):
                best = cand
        if best is None:
            continue
        c.setdefault("chosen", []).append({
            "claim": ch["claim"], "baseline": ch["baseline"], "values": best["values"],
            "ratio": best["ratio"], "status": _status(best["ratio"], c["paper"], c["tolerance"]),
            "commands": best["commands"],
            "tried": [{"values": x["values"], "ratio": x.get("ratio")} for x in ch["candidates"]]})
    return ev


def run(sim, work, batch, quick, cluster, prog, params=None, quiet=False, timeout=None):
    """The whole harness: the sweep, then the chosen configs. Returns the evaluation (a list of
    claims) and the run settings."""
    params = params if params is not None else PARAMS
    base_sets = [("workload.batch", str(batch)), ("workload.iterations", str(cl.NETWORK_ITERATIONS))]
    if quick:
        base_sets.append(("workload.width", repr(cl.QUICK_WIDTH)))
    runs, where, defaults = plan(params, quick)
    results = run_sweeps(sim, runs, work, base_sets, cluster, prog, quiet, timeout)
    ev = evaluate(params, quick, where, results)
    for c in ev:  # SWPU's own value of each parameter, marked in the tables and plots
        for p, row in zip(params, c["params"]):
            row["default_value"] = defaults["swpu"].get(p.paths[0])
    ch_runs, chosen = plan_chosen(params, ev, defaults)
    if ch_runs:
        more = run_sweeps(sim, ch_runs, work, base_sets, cluster, prog, quiet, timeout)
        for m, res in more.items():
            results.setdefault(m, {}).update(res)
    evaluate_chosen(ev, chosen, results)
    points = collections.OrderedDict()  # param -> machine -> [per value {value, cycles, chip_uj, total_uj}]
    for p in params:
        points[p.name] = {m: [dict(value=v, **{k: (results[m].get(where[(m, p.name, v)]) or {}).get(k)
                                              for k in ("cycles", "chip_uj", "total_uj")})
                              for v in (p.quick if quick else p.values)] for m in machines()}
    n = sum(len(v) for v in runs.values()) + sum(len(v) for v in ch_runs.values())
    settings = {"batch": batch, "quick": quick, "width": cl.QUICK_WIDTH if quick else 1.0,
                "iterations": cl.NETWORK_ITERATIONS, "engine": cl.ENGINE, "runs": n,
                "base_sets": base_sets, "machines": machines(),
                "params": [{"name": p.name, "paths": p.paths, "applies_to": p.applies_to,
                            "values": p.quick if quick else p.values, "doc": p.doc} for p in params],
                "points": points}
    return ev, settings


# ----------------------------------------------------------------------------- presentation

def _v(v):
    return fmt_num(v).rstrip("0").rstrip(".") if isinstance(v, float) else str(v)


def _x(r):
    return "-" if r is None else "%.2fx" % r


def render_section(ev, settings, images_rel, heading="##"):
    """The Markdown of the reconstruction space: per claim a table and a plot."""
    L = []
    a = L.append
    s = settings
    a("%s Reconstruction space: where claims 3-5 are reproduced" % heading)
    a("")
    a("Each ASSUMED parameter below is swept one at a time around the default config (marked "
      "*default*; a dashed line in the plots), on SWPU "
      "and on every baseline of claims 3-5 (ResNet-18 CIFAR form, width %g, batch %d, %d "
      "iterations amortized as above, `--engine %s`; %d simulator runs). A parameter marked "
      "*swpu* is SWPU's own design choice (the baselines keep their config); *all* sets it on "
      "every machine. A cell shows the claim's ratio (baseline / SWPU) at each swept value, in "
      "bold where it lies within the claim's tolerance of the paper's value."
      % (s["width"], s["batch"], s["iterations"], s["engine"], s["runs"]))
    a("")
    a("| parameter | applies to | values | meaning |")
    a("|---|---|---|---|")
    for p in s["params"]:
        a("| `%s`%s | %s | %s | %s |" % (
            p["name"], "" if p["paths"] == [p["name"]] else " (%s)" % ", ".join(
                "`%s`" % x for x in p["paths"]),
            p["applies_to"] if isinstance(p["applies_to"], str) else ", ".join(p["applies_to"]),
            ", ".join(_v(v) for v in p["values"]), p["doc"]))
    a("")
    for c in ev:
        a("%s# Claim %s: %s (paper %.2fx, tolerance %g%%)" % (heading, c["id"], c["claim"],
                                                                c["paper"], 100 * c["tolerance"]))
        a("")
        a("At the default config: " + "; ".join(
            "vs %s %s (%s)" % (b, _x(d["ratio"]), d["status"]) for b, d in c["default"].items()) + ".")
        a("")
        a("| parameter | baseline | ratio at each value | paper value reached at |")
        a("|---|---|---|---|")
        for row in c["params"]:
            for b in c["baselines"]:
                cells = []
                for v, r in zip(row["values"], row["ratios"][b]):
                    t = "%s%s: %s" % (_v(v), " (default)" if _same(v, row.get("default_value"))
                                      else "", _x(r))
                    cells.append("**%s**" % t if v in row["met_at"][b] else t)
                a("| `%s` | %s | %s | %s |" % (row["param"], b, ", ".join(cells),
                                              ", ".join(_v(v) for v in row["met_at"][b])
                                              or "nowhere"))
        a("")
        for b, n in c["nearest"].items():
            a("- Nearest swept point vs %s: `%s = %s` gives %s (%s)." % (
                b, n["param"], _v(n["value"]), _x(n["ratio"]), n["status"]))
        for ch in c.get("chosen", []):
            a("- **Chosen** vs %s (picked after the sweep to land near the paper's value, not a "
              "prediction): %s gives %s (%s). Commands: %s. Combinations tried (the parameter "
              "values nearest the paper's, nearest first): %s." % (
                  ch["baseline"], ", ".join("`%s = %s`" % (k, _v(v)) for k, v in ch["values"]),
                  _x(ch.get("ratio")), ch.get("status"),
                  "; ".join("`%s`" % x for x in ch.get("commands", [])),
                  "; ".join("%d: %s" % (len(t["values"]), _x(t["ratio"])) for t in ch["tried"])))
        a("")
        a("![claim %s](%s/claim%s.png)" % (c["id"], images_rel, c["id"]))
        a("")
    return "\n".join(L)


def write_plots(ev, images_dir, subtitle):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from .files import save_figure_atomic

    os.makedirs(images_dir, exist_ok=True)
    written = []
    for c in ev:
        n = len(c["params"])
        cols = min(4, max(1, n))
        rows = (n + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows + 0.8), squeeze=False)
        lo, hi = c["paper"] * (1 - c["tolerance"]), c["paper"] * (1 + c["tolerance"])
        for i, row in enumerate(c["params"]):
            ax = axes[i // cols][i % cols]
            xs = list(range(len(row["values"])))
            ax.axhspan(lo, hi, color="tab:green", alpha=0.2, lw=0)
            ax.axhline(c["paper"], color="tab:green", lw=1, label="paper %.2fx" % c["paper"])
            for b in c["baselines"]:
                pts = [(x, r) for x, r in zip(xs, row["ratios"][b]) if r is not None]
                if pts:
                    ax.plot(*zip(*pts), marker="o", label="vs " + b)
            ax.axhline(1.0, color="k", lw=0.6)
            for x, v in zip(xs, row["values"]):
                if _same(v, row.get("default_value")):
                    ax.axvline(x, color="gray", ls="--", lw=0.8, label="SWPU's default")
            ax.set_xticks(xs)
            ax.set_xticklabels([_v(v) for v in row["values"]], fontsize=7)
            ax.set_title(row["param"], fontsize=8)
            ax.grid(True, alpha=0.3)
            if i == 0:
                ax.legend(fontsize=6)
        for j in range(n, rows * cols):
            axes[j // cols][j % cols].axis("off")
        fig.suptitle("Claim %s: ratio baseline / SWPU across the reconstruction space\n%s"
                     % (c["id"], subtitle), fontsize=9)
        fig.tight_layout()
        name = "claim%s.png" % c["id"]
        save_figure_atomic(fig, os.path.join(images_dir, name))
        plt.close(fig)
        written.append(name)
    return written
