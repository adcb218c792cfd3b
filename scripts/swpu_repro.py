#!/usr/bin/python3
"""Machinery of scripts/reproduce_paper: the baseline configs, the experiments, the claims.

- Baselines (configs/baselines/*.json) are full copies of configs/swpu.json that differ only in
  the fields listed in BASELINES. check_baselines() verifies exactly that (and fails loudly on
  drift); write_baselines() regenerates the files from configs/swpu.json.
- experiments() lists the simulator runs; they are run in parallel by swpu_sweep.Runner.
- evaluate() turns the reports into the claims table, the ablation and baseline tables, the
  voltage curve and the real-trace comparison; render_markdown() and write_plots() present them.

Run with the system interpreter /usr/bin/python3 (Debian numpy/matplotlib). Every number comes
from a simulator run; nothing here is a constant of the paper except the paper's own values,
which are only compared against.
"""

import collections
import json
import math
import os
import re
import sys

SCRIPTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(SCRIPTS_DIR)
sys.path.insert(0, SCRIPTS_DIR)
import swpu_sweep as sw  # noqa: E402

SWPU_CONFIG = os.path.join(REPO_ROOT, "configs", "swpu.json")
PEAK_CONFIG = os.path.join(REPO_ROOT, "configs", "peak.json")
BASELINE_DIR = os.path.join(REPO_ROOT, "configs", "baselines")
TRACES_DIR = os.path.join(REPO_ROOT, "configs", "traces")
TRACE_GEN_DOC = os.path.join(REPO_ROOT, "docs", "trace-generator.md")

# The paper's numbers (abstract of the TCSI 2022 paper; shared/ARCHITECTURE.md section 1).
PAPER_PEAK_TFLOPS_W = 126.04
PAPER_FMAX_MHZ = 675.0
PAPER_VS_UNSTRUCTURED = 1.53
PAPER_VS_PREV_ENERGY = 3.72
PAPER_VS_PREV_SPEEDUP = 4.69
PAPER_PRUNING_GAIN = 0.501

# workload.iterations of the network runs: iteration 0 recomputes the masks and re-clusters,
# iteration 1 is a steady-state iteration (see amortize()).
NETWORK_ITERATIONS = 2
FULL_VOLTAGES = [0.56, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0]
QUICK_VOLTAGES = [0.56, 0.8, 1.0]
QUICK_WIDTH = 0.25


class DriftError(Exception):
    """A baseline config no longer matches configs/swpu.json plus its documented fields."""


# ----------------------------------------------------------------------------- baselines

def _structured_sparsity(swpu):
    # Paper: sub-structured pruning reaches a 50.1% higher pruning ratio than structured pruning
    # at equal accuracy, so structured runs at the sub-structured ratio / 1.501.
    return round(swpu["workload"]["weight_sparsity"] / (1.0 + PAPER_PRUNING_GAIN), 4)


_NO_TECHNIQUES = {"compaction.routing": "crossbar", "dbl.enabled": False,
                  "reorder_unit.enabled": False}

# name -> (what it is, why, fields(swpu_config) -> {path: value}). Reasons and citations:
# docs/baselines.md.
BASELINES = collections.OrderedDict([
    ("dense", (
        "the SWPU chip running dense training",
        "upper bound of the work: what weight pruning saves on the same machine",
        lambda s: {"workload.pruning": "dense"})),
    ("structured", (
        "the SWPU chip with structured (whole-filter) pruning at the sub-structured weight "
        "sparsity / 1.501",
        "the paper's sub-structured pruning reaches a 50.1% higher pruning ratio than structured "
        "pruning at equal accuracy, so at equal accuracy structured pruning keeps more weights",
        lambda s: {"workload.pruning": "structured",
                   "workload.weight_sparsity": _structured_sparsity(s)})),
    ("unstructured", (
        "unstructured (element-wise) pruning at SWPU's weight sparsity on the same array, with "
        "per-weight-index crossbar routing and without the reorder unit and the DBL controller",
        "the paper's 1.53x comparison: sub-structured vs unstructured pruning at equal weight "
        "sparsity; irregular masks need per-weight indices, and line clustering and "
        "detect-before-load have no line structure to work on",
        lambda s: dict(_NO_TECHNIQUES, **{"workload.pruning": "unstructured"}))),
    ("prev_sparse_processor", (
        "a previous sparse training processor (PNPU/LNPU/GANPU class) normalised to SWPU's "
        "process, 256 MACs, buffers and DRAM: fine-grained unstructured pruning at SWPU's weight "
        "sparsity, input/output zero skipping, crossbar routing, no clustering, no DBL, no "
        "spatial disconnect (one compaction segment)",
        "the paper's 3.72x energy and 4.69x speed comparison on ResNet-18 training",
        lambda s: dict(_NO_TECHNIQUES, **{"workload.pruning": "unstructured",
                                          "compaction.segments": 1}))),
    ("swpu_no_reorder", (
        "SWPU without the Hamming-distance clustering reorder unit (natural filter/channel order)",
        "ablation of technique 1",
        lambda s: {"reorder_unit.enabled": False})),
    ("swpu_no_dbl", (
        "SWPU without the detect-before-load controller (detect-after-load: every line is read "
        "and zero-detected)",
        "ablation of technique 2",
        lambda s: {"dbl.enabled": False})),
    ("swpu_no_log_routing", (
        "SWPU with crossbar routing (per-weight indices, groups decoupled) instead of the "
        "spatial-disconnect log-based routing with bi-directional switches",
        "ablation of technique 3",
        lambda s: {"compaction.routing": "crossbar"})),
])
ABLATIONS = ["swpu_no_reorder", "swpu_no_dbl", "swpu_no_log_routing"]
ABLATION_TECHNIQUE = {"swpu_no_reorder": "Hamming-distance clustering (reorder unit)",
                      "swpu_no_dbl": "detect-before-load controller",
                      "swpu_no_log_routing": "log-based routing + bi-directional switches"}


def is_comment_key(key):
    return key.startswith("_comment") or key.startswith("//")


def flatten(cfg, prefix=""):
    """{'a': {'b': 1}} -> {'a.b': 1}; comment keys are dropped."""
    out = collections.OrderedDict()
    for k, v in cfg.items():
        if is_comment_key(k):
            continue
        path = prefix + k
        if isinstance(v, dict):
            out.update(flatten(v, path + "."))
        else:
            out[path] = v
    return out


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f, object_pairs_hook=collections.OrderedDict)
    except (OSError, ValueError) as e:
        raise DriftError("%s: cannot read it as plain JSON: %s" % (rel(path), e))


def baseline_path(name, baseline_dir=None):
    return os.path.join(baseline_dir or BASELINE_DIR, name + ".json")


def _fmt_value(v):
    return json.dumps(v)


def baseline_comment(name, fields):
    what, why, _ = BASELINES[name]
    diff = ", ".join("%s = %s" % (k, _fmt_value(v)) for k, v in fields.items())
    return ("Baseline '%s': %s. Why: %s. A full copy of configs/swpu.json differing only in: %s. "
            "Reasons and citations: docs/baselines.md. Generated by `scripts/reproduce_paper "
            "--write-baselines`; scripts/reproduce_paper refuses to run if this file drifts from "
            "configs/swpu.json." % (name, what, why, diff))


def _set_path(cfg, path, value):
    node = cfg
    parts = path.split(".")
    for p in parts[:-1]:
        node = node[p]
    if parts[-1] not in node:
        raise DriftError("configs/swpu.json has no parameter %s (documented baseline field)" % path)
    node[parts[-1]] = value


def make_baseline(name, swpu):
    """The baseline config: swpu.json with the documented fields changed and a _comment."""
    fields = BASELINES[name][2](swpu)
    cfg = json.loads(json.dumps(swpu), object_pairs_hook=collections.OrderedDict)
    for k, v in fields.items():
        _set_path(cfg, k, v)
    out = collections.OrderedDict([("_comment", baseline_comment(name, fields))])
    for k, v in cfg.items():
        if k != "_comment":
            out[k] = v
    return out


def write_baselines(swpu_path=None, baseline_dir=None):
    swpu = load_json(swpu_path or SWPU_CONFIG)
    baseline_dir = baseline_dir or BASELINE_DIR
    os.makedirs(baseline_dir, exist_ok=True)
    written = []
    for name in BASELINES:
        path = baseline_path(name, baseline_dir)
        with open(path, "w") as f:
            json.dump(make_baseline(name, swpu), f, indent=2)
            f.write("\n")
        written.append(path)
    return written


def _same(a, b):
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b  # true/false/null only equal themselves (not 1, 0)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= 1e-12 * max(abs(a), abs(b))
    return a == b


def check_baselines(swpu_path=None, baseline_dir=None):
    """Every documented baseline exists and equals swpu.json except in its documented fields,
    which hold their documented values; no undocumented file is in the directory. Raises
    DriftError listing every problem."""
    swpu = load_json(swpu_path or SWPU_CONFIG)
    baseline_dir = baseline_dir or BASELINE_DIR
    ref = flatten(swpu)
    problems = []
    for name in BASELINES:
        path = baseline_path(name, baseline_dir)
        if not os.path.isfile(path):
            problems.append("%s is missing" % rel(path))
            continue
        try:
            cfg = load_json(path)
        except DriftError as e:
            problems.append(str(e))
            continue
        if not str(cfg.get("_comment", "")).strip():
            problems.append("%s: no top-level \"_comment\" saying what the baseline is" % rel(path))
        fields = BASELINES[name][2](swpu)
        got = flatten(cfg)
        for k in ref:
            if k not in got:
                problems.append("%s: %s is missing (configs/swpu.json has %s)"
                                % (rel(path), k, _fmt_value(ref[k])))
        for k in got:
            if k not in ref:
                problems.append("%s: %s is not in configs/swpu.json" % (rel(path), k))
                continue
            want = fields[k] if k in fields else ref[k]
            if not _same(got[k], want):
                if k in fields:
                    problems.append("%s: documented field %s is %s, expected %s"
                                    % (rel(path), k, _fmt_value(got[k]), _fmt_value(want)))
                else:
                    problems.append("%s: %s is %s but configs/swpu.json has %s (only %s may differ)"
                                    % (rel(path), k, _fmt_value(got[k]), _fmt_value(ref[k]),
                                       ", ".join(fields)))
    if os.path.isdir(baseline_dir):
        for fn in sorted(os.listdir(baseline_dir)):
            if fn.endswith(".json") and fn[:-5] not in BASELINES:
                problems.append("%s is not a documented baseline (add it to BASELINES in "
                                "scripts/swpu_repro.py and to docs/baselines.md)"
                                % rel(os.path.join(baseline_dir, fn)))
    if problems:
        raise DriftError("\n".join(problems))


# ----------------------------------------------------------------------------- experiments

def rel(path):
    p = os.path.abspath(path)
    r = os.path.relpath(p, REPO_ROOT)
    return p if r.startswith("..") else r


def bundled_traces():
    """Trace directories under configs/traces/ (those with a manifest.json), sorted."""
    if not os.path.isdir(TRACES_DIR):
        return []
    return sorted(os.path.join(TRACES_DIR, d) for d in os.listdir(TRACES_DIR)
                  if os.path.isfile(os.path.join(TRACES_DIR, d, "manifest.json")))


def vid(v):
    return ("%.2f" % v).replace(".", "v")


def experiments(quick, batch, trace=None):
    """The simulator runs: list of dicts {id, kind, name, config, trace, sets}. Longest first
    (the pool starts them in order)."""
    wl = [("workload.batch", str(batch))]
    if quick:
        wl.append(("workload.width", repr(QUICK_WIDTH)))
    runs = []
    if trace:
        for name, cfg in (("swpu", SWPU_CONFIG), ("unstructured", baseline_path("unstructured"))):
            runs.append({"id": "trace_" + name, "kind": "trace", "name": name, "config": cfg,
                         "trace": trace, "sets": []})
    for name in ["swpu"] + list(BASELINES):
        cfg = SWPU_CONFIG if name == "swpu" else baseline_path(name)
        runs.append({"id": "net_" + name, "kind": "network", "name": name, "config": cfg,
                     "trace": None,
                     "sets": wl + [("workload.iterations", str(NETWORK_ITERATIONS))]})
    runs.append({"id": "peak", "kind": "peak", "name": "peak", "config": PEAK_CONFIG,
                 "trace": None, "sets": []})
    peak_v = load_json(PEAK_CONFIG)["chip"]["voltage"]
    for v in (QUICK_VOLTAGES if quick else FULL_VOLTAGES):
        runs.append({"id": "vf_" + vid(v), "kind": "vf", "name": "swpu", "voltage": v,
                     "config": SWPU_CONFIG, "trace": None,
                     "sets": [("chip.voltage", sw.fmt_num(v))] + wl})
        if abs(v - peak_v) > 1e-9:  # at peak.json's own voltage the "peak" run is the point
            runs.append({"id": "peakvf_" + vid(v), "kind": "peakvf", "name": "peak", "voltage": v,
                         "config": PEAK_CONFIG, "trace": None,
                         "sets": [("chip.voltage", sw.fmt_num(v))]})
    return runs


def sim_args(run, path=os.path.abspath):
    """The simulator's arguments of a run, before --out."""
    args = ["--config", path(run["config"])]
    if run["trace"]:
        args += ["--trace", path(run["trace"])]
    for k, v in run["sets"]:
        args += ["--set", "%s=%s" % (k, v)]
    return args


def display_command(run):
    """The run's command with repository-relative paths (what the docs show)."""
    return " ".join(["build/swpu-sim"] + sim_args(run, rel))


class ExperimentRunner(sw.Runner):
    """swpu_sweep.Runner whose points each carry their own config and trace."""

    def __init__(self, sim, runs, work_dir, jobs, timeout=None, quiet=False, prog="reproduce_paper"):
        super().__init__(sim, None, None, [], work_dir, jobs, timeout, quiet, prog)
        self.runs = {r["id"]: r for r in runs}

    def command(self, point_sets, point_dir):
        run = self.runs[os.path.basename(point_dir)]
        return [self.sim] + sim_args(run) + ["--out", point_dir, "-q"]

    def run_experiments(self):
        # run_all's point "sets" only label the progress lines; command() reads the run's own.
        return self.run_all([(rid, [("run", rid)]) for rid in self.runs])


# ----------------------------------------------------------------------------- metrics

CONV_OPS = ("conv", "fc")
PER_ITER_KEYS = ("cycles", "energy_chip_uj", "energy_dram_uj", "valid_macs", "dense_macs",
                 "time_us")


def per_iteration(report):
    """Sums of the report's layer entries per iteration, and the once-per-update ops seen."""
    it = collections.defaultdict(lambda: collections.defaultdict(float))
    for e in report["layers"]:
        d = it[int(e["iteration"])]
        for k in PER_ITER_KEYS:
            d[k] += float(e.get(k, 0) or 0)
        if e.get("op") in ("mask_update", "reorder_filters", "reorder_channels"):
            d["update_ops"] += 1
    return [dict(it[i]) for i in sorted(it)]


def amortize(iters, interval):
    """Average iteration over one mask-update interval of `interval` iterations: iteration 0
    recomputes the masks and re-clusters (paid once per interval), the other interval - 1
    iterations cost what the run's steady-state iteration 1 costs."""
    if len(iters) < 2 or interval <= 1:
        return {k: sum(i.get(k, 0.0) for i in iters) / len(iters) for k in PER_ITER_KEYS}
    first, steady = iters[0], iters[1]
    return {k: (first.get(k, 0.0) + (interval - 1) * steady.get(k, 0.0)) / interval
            for k in PER_ITER_KEYS}


def layer_costs(report, iteration):
    """Conv/FC layers of one iteration: layer -> {cycles, energy_chip_uj} summed over FF/BP/WG."""
    out = collections.OrderedDict()
    for e in report["layers"]:
        if int(e["iteration"]) != iteration or e.get("op") not in CONV_OPS:
            continue
        d = out.setdefault(e["layer"], {"cycles": 0.0, "energy_chip_uj": 0.0})
        d["cycles"] += float(e["cycles"])
        d["energy_chip_uj"] += float(e["energy_chip_uj"])
    return out


def network_metrics(report):
    cfg = report.get("config", {})
    interval = int(cfg.get("workload", {}).get("update_interval", 1))
    iters = per_iteration(report)
    am = amortize(iters, interval)
    macs = int(cfg["pe_array"]["groups"]) * int(cfg["pe_array"]["lanes"])
    t, e = report["totals"], report["energy"]
    chip_j = am["energy_chip_uj"] * 1e-6
    return {
        "update_interval": interval,
        "iterations": iters,
        "cycles": am["cycles"],
        "time_us": am["time_us"],
        "chip_uj": am["energy_chip_uj"],
        "dram_uj": am["energy_dram_uj"],
        "total_uj": am["energy_chip_uj"] + am["energy_dram_uj"],
        "valid_macs": am["valid_macs"],
        "dense_macs": am["dense_macs"],
        "effective_tflops_per_w": (2.0 * am["dense_macs"] / chip_j / 1e12) if chip_j > 0 else None,
        "utilization_amortized": am["valid_macs"] / (macs * am["cycles"]) if am["cycles"] else None,
        "run_utilization": t["utilization"],
        "conv_compute_utilization": t["compute_utilization"],
        "conv_chip_uj_per_iteration": e["conv"]["chip_uj"] / len(iters),
        "conv_cycles_per_iteration": e["conv"]["cycles"] / len(iters),
        "conv_effective_tflops_per_w": e["conv"]["effective_tflops_per_w"],
        "stall_dram_cycles_per_iteration": t["stall_dram_cycles"] / len(iters),
        "clock_mhz": report["clock_mhz"],
        "layers": layer_costs(report, len(iters) - 1),
    }


def trace_metrics(report):
    iters = per_iteration(report)
    t, e = report["totals"], report["energy"]
    return {
        "iterations": iters,
        "cycles": t["cycles"],
        "chip_uj": e["chip_uj"],
        "dram_uj": e["dram_uj"],
        "utilization": t["utilization"],
        "conv_compute_utilization": t["compute_utilization"],
        "conv_chip_uj": e["conv"]["chip_uj"],
        "conv_cycles": e["conv"]["cycles"],
        "conv_effective_tflops_per_w": e["conv"]["effective_tflops_per_w"],
        "effective_tflops_per_w": e["effective_tflops_per_w"],
        "workload": report.get("workload", {}),
    }


def trace_steps(trace_dir):
    """[(training iteration, mask_update)] of a trace's recorded steps, from its manifest."""
    try:
        with open(os.path.join(trace_dir, "manifest.json")) as f:
            its = json.load(f).get("iterations", [])
        return [(it.get("index"), bool(it.get("mask_update"))) for it in its]
    except (OSError, ValueError, AttributeError):
        return []


def vf_metrics(report):
    e = report["energy"]
    return {"voltage": e.get("voltage"), "clock_mhz": report["clock_mhz"],
            "cycles": report["totals"]["cycles"],
            "effective_tflops": e["effective_tflops"], "power_mw": e["power_mw"],
            "effective_tflops_per_w": e["effective_tflops_per_w"],
            "conv_effective_tflops_per_w": e["conv"]["effective_tflops_per_w"],
            "system_effective_tflops_per_w": e["system_effective_tflops_per_w"]}


# ----------------------------------------------------------------------------- pruning ratio

def documented_pruning_result(doc=None):
    """The JSON file docs/trace-generator.md names as the output of scripts/pruning_ratio.py
    (the `--out FILE.json` of a pruning_ratio.py command in it), or None."""
    try:
        with open(doc or TRACE_GEN_DOC) as f:
            text = f.read()
    except OSError:
        return None
    for m in re.finditer(r"pruning_ratio\.py((?:\\\n|[^\n`])*)", text):
        o = re.search(r"--out\s+(\S+\.json)", m.group(1))
        if o:
            return os.path.join(REPO_ROOT, o.group(1))
    return None


def read_pruning_result(path):
    """(result dict or None, note)."""
    if path is None:
        return None, ("no result file: docs/trace-generator.md does not (yet) name the JSON that "
                      "scripts/pruning_ratio.py writes")
    if not os.path.isfile(path):
        return None, "%s does not exist" % rel(path)
    try:
        with open(path) as f:
            res = json.load(f)
    except (OSError, ValueError) as e:
        return None, "%s is not readable JSON: %s" % (rel(path), e)
    return res, rel(path)


# ----------------------------------------------------------------------------- claims

def _status(sim, paper, tol, exact=False):
    if sim is None:
        return "run failed"
    if exact:
        return "met" if abs(sim - paper) < 1e-6 else "missed"
    return "met" if abs(sim / paper - 1.0) <= tol + 1e-12 else "missed"


def _ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


def evaluate(runs, results, pruning_path):
    """Everything the documents show, from the run results. `results`: id -> sweep result."""
    ok = {rid: r for rid, r in results.items() if r["status"] == "ok"}
    net = {r["name"]: network_metrics(ok[r["id"]]["report"])
           for r in runs if r["kind"] == "network" and r["id"] in ok}
    cmd = {r["id"]: display_command(r) for r in runs}
    ev = {"network": net, "claims": [], "ablation": [], "baselines": [], "notes": []}
    sw_ = net.get("swpu")

    def g(name, key):
        m = net.get(name)
        return None if m is None else m[key]

    def add(cid, text, paper, unit, sim, tol, command, secondary=False):
        """tol: allowed relative deviation, or None for an exact match."""
        ev["claims"].append({
            "id": cid, "claim": text, "paper": paper, "unit": unit, "simulated": sim,
            "tolerance": "exact" if tol is None else "%g%%" % (100 * tol),
            "status": _status(sim, paper, tol or 0.0, tol is None), "command": command,
            "secondary": secondary})

    peak = ok.get("peak")
    add("1", "peak energy efficiency at 0.56 V (conv passes, effective FLOPs)",
        PAPER_PEAK_TFLOPS_W, "TFLOPS/W",
        peak["report"]["energy"]["conv"]["effective_tflops_per_w"] if peak else None, 0.03,
        cmd["peak"] + "  -> energy.conv.effective_tflops_per_w")
    v1 = next((r for r in runs if r["kind"] == "vf" and abs(r["voltage"] - 1.0) < 1e-9), None)
    add("2", "maximum frequency at 1.0 V", PAPER_FMAX_MHZ, "MHz",
        ok[v1["id"]]["report"]["clock_mhz"] if v1 and v1["id"] in ok else None, None,
        (cmd[v1["id"]] if v1 else "") + "  -> clock_mhz")
    add("3", "energy efficiency, sub-structured vs unstructured pruning (chip energy per "
        "training iteration, unstructured / SWPU)", PAPER_VS_UNSTRUCTURED, "x",
        _ratio(g("unstructured", "chip_uj"), g("swpu", "chip_uj")), 0.10,
        "%s vs %s" % (cmd["net_swpu"], cmd["net_unstructured"]))
    add("3b", "same, conv passes (FF+BP+WG) only", PAPER_VS_UNSTRUCTURED, "x",
        _ratio(g("unstructured", "conv_chip_uj_per_iteration"),
               g("swpu", "conv_chip_uj_per_iteration")), 0.10,
        "energy.conv.chip_uj of the same pair", secondary=True)
    add("4", "less energy than a previous sparse training processor, ResNet-18 training (chip "
        "energy per iteration, previous / SWPU)", PAPER_VS_PREV_ENERGY, "x",
        _ratio(g("prev_sparse_processor", "chip_uj"), g("swpu", "chip_uj")), 0.15,
        "%s vs %s" % (cmd["net_swpu"], cmd["net_prev_sparse_processor"]))
    add("4b", "same, chip + DRAM energy", PAPER_VS_PREV_ENERGY, "x",
        _ratio(g("prev_sparse_processor", "total_uj"), g("swpu", "total_uj")), 0.15,
        "the same pair", secondary=True)
    add("5", "speedup over a previous sparse training processor, ResNet-18 training (cycles "
        "per iteration, previous / SWPU; same clock)", PAPER_VS_PREV_SPEEDUP, "x",
        _ratio(g("prev_sparse_processor", "cycles"), g("swpu", "cycles")), 0.15,
        "the same pair")
    for c, key, num in (("3", "energy_chip_uj", "unstructured"),
                        ("4", "energy_chip_uj", "prev_sparse_processor"),
                        ("5", "cycles", "prev_sparse_processor")):
        if net.get(num) and sw_:
            claim = next(x for x in ev["claims"] if x["id"] == c)
            claim["by_iteration"] = [_ratio(a[key], b[key]) for a, b in
                                     zip(net[num]["iterations"], sw_["iterations"])]
    # 6. pruning ratio: from real training runs (scripts/pruning_ratio.py), never invented
    res, note = read_pruning_result(pruning_path)
    gain = res.get("relative_gain_sub_vs_structured") if res else None
    add("6", "pruning ratio of sub-structured over structured pruning at equal accuracy "
        "(relative gain)", PAPER_PRUNING_GAIN, "", gain, 0.20,
        "/usr/bin/python3 scripts/pruning_ratio.py --out FILE.json, then "
        "scripts/reproduce_paper --pruning-result FILE.json (%s)" % note if res is None else
        "%s  -> %s" % (res.get("command", "scripts/pruning_ratio.py"), note))
    c6 = ev["claims"][-1]
    if res is None:
        c6["status"] = "not run"
    else:
        summ = res.get("summary", {})
        c6["detail"] = {m: summ.get(m) for m in ("structured", "sub-structured") if m in summ}
        c6["detail"].update({k: res.get(k) for k in ("dataset", "width", "epochs", "seeds",
                                                      "tolerance_pp", "dense_accuracy")})
        if gain is None:
            c6["status"] = "missed"
            c6["note"] = "structured pruning passed at no swept ratio: the gain is undefined"
        elif summ.get("sub-structured", {}).get("top_of_sweep_passed"):
            c6["note"] = ("the highest sub-structured sparsity of the sweep passed: the measured "
                          "gain is a lower bound")
    ev["pruning_result"] = res

    # 7. ablation
    for name in ["swpu"] + ABLATIONS:
        m = net.get(name)
        row = {"config": name, "technique_removed": ABLATION_TECHNIQUE.get(name, "none (SWPU)"),
               "command": cmd["net_" + name]}
        if m is None:
            row["status"] = "run failed"
        else:
            row.update({k: m[k] for k in ("cycles", "chip_uj", "run_utilization",
                                          "utilization_amortized", "conv_compute_utilization",
                                          "conv_chip_uj_per_iteration")})
            row["cycles_ratio"] = _ratio(m["cycles"], g("swpu", "cycles"))
            row["chip_uj_ratio"] = _ratio(m["chip_uj"], g("swpu", "chip_uj"))
            row["conv_chip_uj_ratio"] = _ratio(m["conv_chip_uj_per_iteration"],
                                               g("swpu", "conv_chip_uj_per_iteration"))
        ev["ablation"].append(row)
    # all configs
    for name in ["swpu"] + list(BASELINES):
        m = net.get(name)
        row = {"config": name, "command": cmd["net_" + name]}
        if m is None:
            row["status"] = "run failed"
        else:
            row.update({k: m[k] for k in ("cycles", "chip_uj", "dram_uj", "total_uj",
                                          "utilization_amortized", "conv_compute_utilization",
                                          "effective_tflops_per_w", "conv_effective_tflops_per_w",
                                          "dense_macs", "valid_macs")})
            for k in ("cycles", "chip_uj", "total_uj"):
                row[k + "_ratio"] = _ratio(m[k], g("swpu", k))
        ev["baselines"].append(row)

    # voltage curve
    vf = []
    for r in runs:
        if r["kind"] != "vf":
            continue
        row = {"voltage": r["voltage"], "command": cmd[r["id"]]}
        if r["id"] in ok:
            row.update(vf_metrics(ok[r["id"]]["report"]))
            row["report_metrics"] = sw.metric_row(ok[r["id"]]["report"])
        else:
            row["status"] = "run failed"
        pk = next((p for p in runs if p["kind"] == "peakvf" and abs(p["voltage"] - r["voltage"]) < 1e-9),
                  None)
        pid = pk["id"] if pk else "peak"
        prep = ok.get(pid)
        if prep is not None and abs(prep["report"]["energy"].get("voltage", -1) - r["voltage"]) < 1e-9:
            row["peak_conv_effective_tflops_per_w"] = \
                prep["report"]["energy"]["conv"]["effective_tflops_per_w"]
        vf.append(row)
    ev["vf"] = vf

    # real trace
    tr = {}
    for r in runs:
        if r["kind"] == "trace":
            tr[r["name"]] = (trace_metrics(ok[r["id"]]["report"]) if r["id"] in ok else None)
            tr.setdefault("commands", {})[r["name"]] = cmd[r["id"]]
    ev["trace"] = tr or None

    # observations computed from the runs (no interpretation beyond the numbers)
    if sw_:
        dm = {n: m["dense_macs"] for n, m in net.items()}
        if len(set(round(v) for v in dm.values())) > 1:
            ev["notes"].append("dense MACs per iteration differ between configs (%s): the energy "
                               "ratios are then not efficiency ratios" % dm)
    for n, m in net.items():
        if len(m["iterations"]) > 1 and m["iterations"][1].get("update_ops") and \
                m["update_interval"] > 1:
            ev["notes"].append(
                "Run %s updated masks or re-clustered in iteration 1 although "
                "workload.update_interval is %d: the per-iteration averages assume it does not."
                % (n, m["update_interval"]))
    un, pv = net.get("unstructured"), net.get("prev_sparse_processor")
    if un and pv:
        if un["cycles"] == pv["cycles"] and abs(un["chip_uj"] - pv["chip_uj"]) < 1e-9 * un["chip_uj"]:
            ev["notes"].append(
                "The unstructured and previous-processor baselines give identical cycles and "
                "energy: they differ only in compaction.segments, which the crossbar routing "
                "does not use.")
        else:
            ev["notes"].append(
                "The previous-processor baseline differs from the unstructured one by %.2f%% in "
                "cycles and %.2f%% in chip energy." % (100 * (pv["cycles"] / un["cycles"] - 1),
                                                       100 * (pv["chip_uj"] / un["chip_uj"] - 1)))
    return ev


# ----------------------------------------------------------------------------- markdown

def _f(x, fmt="%.3g"):
    if x is None:
        return "-"
    if isinstance(x, float) and not math.isfinite(x):
        return "-"
    return fmt % x


def _num(x, unit):
    if x is None:
        return "-"
    if unit == "x":
        return "%.2fx" % x
    if unit == "MHz":
        return "%.2f MHz" % x
    if unit == "TFLOPS/W":
        return "%.2f TFLOPS/W" % x
    if unit == "":
        return "%+.1f%%" % (100 * x)
    return "%.4g %s" % (x, unit)


def _md_escape(s):
    return s.replace("|", "\\|")


def render_markdown(ev, meta):
    L = []
    a = L.append
    a("# Reproducing the SWPU paper's claims with swpu-sim")
    a("")
    a("<!-- GENERATED FILE: written by scripts/reproduce_paper. Do not edit by hand; "
      "re-run the command below. -->")
    a("")
    a("**Generated by `scripts/reproduce_paper`; do not edit by hand.** Command (run from the "
      "repository root):")
    a("")
    a("```")
    a(meta["command"])
    a("```")
    a("")
    a("- source: commit `%s`%s; simulator `%s`" % (
        meta["commit"], " plus uncommitted changes to %s" % ", ".join(meta["dirty"])
        if meta["dirty"] else "", meta["sim"]))
    a("- %d simulator runs, %d ok, %d failed; wall time %.1f s with %d parallel jobs on %d cores"
      % (meta["runs"], meta["runs"] - len(meta["failed"]), len(meta["failed"]),
         meta["wall_s"], meta["jobs"], meta["cores"]))
    a("- generated %s" % meta["date"])
    a("")
    if meta["failed"]:
        a("**FAILED RUNS** (the numbers that depend on them are shown as `run failed`):")
        a("")
        for f in meta["failed"]:
            a("- `%s`: %s" % (f["id"], f["error"]))
        a("")
    a("The paper (Wang et al., *SWPU: A 126.04 TFLOPS/W Edge-Device Sparse DNN Training "
      "Processor With Dynamic Sub-Structured Weight Pruning*, TCSI 2022) is public only as its "
      "abstract. swpu-sim models a reconstruction (docs/config.md: every ASSUMED parameter), "
      "so a `missed` claim says how far this reconstruction is from the paper, not that the "
      "paper is wrong. Every simulated number below comes from a simulator run listed at the "
      "end; nothing is fitted here except what docs/energy.md says about the energy table's "
      "calibration to the peak point.")
    a("")
    a("## Workload and method")
    a("")
    s = meta["settings"]
    a("- Network runs: ResNet-18 training, the simulator's built-in synthetic trace in CIFAR form "
      "(`workload.network` of the config), width %g, batch %d, %d iterations%s. Baseline configs "
      "and why each looks as it does: [baselines.md](%s)." % (
          s["width"], s["batch"], NETWORK_ITERATIONS, " (`--quick`)" if s["quick"] else "",
          meta["baselines_doc_link"]))
    interval = next((m["update_interval"] for m in ev["network"].values()), None)
    a("- **Per-iteration figures** (cycles, energy, ratios) are averages over one mask-update "
      "interval of U = `workload.update_interval` = %s iterations: iteration 0 of a run "
      "recomputes the masks (vector unit) and runs the reorder unit, which the chip does once "
      "per interval; iterations 1..U-1 cost what the run's iteration 1 costs. So "
      "X = (X(iteration 0) + (U-1) X(iteration 1)) / U, from the report's per-layer entries. "
      "Both iterations' raw values are in the JSON." % (interval if interval else "?"))
    a("- All configs run the same network and batch, so they do the same effective (dense) FLOPs "
      "per iteration: an energy ratio is an energy-efficiency ratio. Chip energy excludes DRAM "
      "(reported apart). Every config runs at 1.0 V and f_max = 675 MHz, so a cycle ratio is a "
      "time ratio.")
    a("")
    a("## Claims")
    a("")
    a("| # | claim | paper | simulated | tolerance | status | command / config |")
    a("|---|---|---:|---:|---:|---|---|")
    for c in ev["claims"]:
        sim = _num(c["simulated"], c["unit"])
        paper = _num(c["paper"], c["unit"])
        st = c["status"]
        st = "**%s**" % st if not c.get("secondary") else "%s (secondary)" % st
        claim = c["claim"] + ("; note: " + c["note"] if c.get("note") else "")
        a("| %s | %s | %s | %s | %s | %s | `%s` |" % (
            c["id"], _md_escape(claim), paper, sim, c["tolerance"], st, _md_escape(c["command"])))
    a("")
    a("A claim within its tolerance of the paper's value is `met`; otherwise `missed`, with the "
      "measured value. Secondary lines (3b, 4b) show the same comparison measured differently; "
      "they do not decide the claim.")
    a("")
    byit = [c for c in ev["claims"] if c.get("by_iteration")]
    if byit:
        a("The same ratios for single iterations, not amortized: " + "; ".join(
            "claim %s: %s" % (c["id"], ", ".join(
                "iteration %d%s %s" % (i, " (mask update + clustering)" if i == 0 else "",
                                       _num(v, c["unit"]))
                for i, v in enumerate(c["by_iteration"]))) for c in byit) + ".")
        a("")
    for n in ev["notes"]:
        a("- " + n)
    if ev["notes"]:
        a("")
    c6 = next(c for c in ev["claims"] if c["id"] == "6")
    if c6.get("detail"):
        d = c6["detail"]
        a("Claim 6 comes from real training runs (scripts/pruning_ratio.py, %s, width %s, %s "
          "epochs, seeds %s, accuracy tolerance %s pp against dense accuracy %s):" % (
              d.get("dataset"), d.get("width"), d.get("epochs"), d.get("seeds"),
              d.get("tolerance_pp"), d.get("dense_accuracy")))
        a("")
        a("| mode | highest pruning ratio within tolerance | accuracy there | target sparsity |")
        a("|---|---:|---:|---:|")
        for m in ("structured", "sub-structured"):
            x = d.get(m) or {}
            a("| %s | %s | %s | %s |" % (m, _f(x.get("max_pruning_ratio"), "%.4f"),
                                         _f(x.get("accuracy_at_max"), "%.4f"),
                                         _f(x.get("target_at_max"), "%.2f")))
        a("")

    a("## Ablation: the three techniques")
    a("")
    a("Each row removes one technique from SWPU (configs/baselines/swpu_no_*.json). Cycles and "
      "chip energy are per iteration (amortized as above); ratios are to SWPU (> 1: removing the "
      "technique costs). Utilization = valid MACs / (256 MAC lanes x cycles) of the amortized "
      "iteration; conv compute utilization = `totals.compute_utilization` (valid MACs over the "
      "lane slots of the conv passes' compute cycles: DRAM stalls excluded, the crossbar's "
      "buffer-port stalls included).")
    a("")
    a("| config | technique removed | cycles / iter | cycles ratio | utilization | conv compute "
      "utilization | chip uJ / iter | energy ratio | conv-pass energy ratio |")
    a("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in ev["ablation"]:
        if r.get("status") == "run failed":
            a("| %s | %s | run failed | | | | | | |" % (r["config"], r["technique_removed"]))
            continue
        a("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["config"], r["technique_removed"], _f(r["cycles"], "%.0f"), _f(r["cycles_ratio"], "%.3f"),
            _f(r["utilization_amortized"], "%.3f"), _f(r["conv_compute_utilization"], "%.3f"),
            _f(r["chip_uj"], "%.1f"), _f(r["chip_uj_ratio"], "%.3f"),
            _f(r["conv_chip_uj_ratio"], "%.3f")))
    a("")
    a("![ablation](images/reproduction/ablation.png)")
    a("")
    a("## All configs")
    a("")
    a("| config | cycles / iter | x SWPU | chip uJ / iter | x SWPU | chip+DRAM uJ / iter | x SWPU "
      "| utilization | conv compute utilization | effective TFLOPS/W (iteration) | effective "
      "TFLOPS/W (conv passes) |")
    a("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in ev["baselines"]:
        if r.get("status") == "run failed":
            a("| %s | run failed |||||||||||" % r["config"])
            continue
        a("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["config"], _f(r["cycles"], "%.0f"), _f(r["cycles_ratio"], "%.2f"),
            _f(r["chip_uj"], "%.1f"), _f(r["chip_uj_ratio"], "%.2f"), _f(r["total_uj"], "%.0f"),
            _f(r["total_uj_ratio"], "%.2f"), _f(r["utilization_amortized"], "%.3f"),
            _f(r["conv_compute_utilization"], "%.3f"), _f(r["effective_tflops_per_w"], "%.2f"),
            _f(r["conv_effective_tflops_per_w"], "%.2f")))
    a("")
    a("Commands (each adds `--out DIR -q`):")
    a("")
    a("```")
    for r in ev["baselines"]:
        a(r["command"])
    a("```")
    a("")
    a("Per layer (conv and FC layers, FF + BP + WG of the steady-state iteration 1):")
    a("")
    a("![energy per layer](images/reproduction/layers_energy.png)")
    a("")
    a("![cycles per layer](images/reproduction/layers_cycles.png)")
    a("")
    a("## Voltage curve")
    a("")
    a("SWPU (configs/swpu.json, the network workload above, one iteration) at f_max(V) from "
      "0.56 V to 1.0 V, and the peak-efficiency condition (configs/peak.json: 90% weight and "
      "90% activation/gradient sparsity) at the same voltages. Plots drawn with "
      "scripts/sweep_vf.py's `write_plots`.")
    a("")
    a("| V | MHz | effective TFLOPS | chip mW | effective TFLOPS/W | conv-pass TFLOPS/W | "
      "system TFLOPS/W (chip + DRAM) | peak condition, conv-pass TFLOPS/W |")
    a("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in ev["vf"]:
        if r.get("status") == "run failed":
            a("| %g | run failed |||||||" % r["voltage"])
            continue
        a("| %g | %.1f | %.4f | %.2f | %.2f | %.2f | %.3f | %s |" % (
            r["voltage"], r["clock_mhz"], r["effective_tflops"], r["power_mw"],
            r["effective_tflops_per_w"], r["conv_effective_tflops_per_w"],
            r["system_effective_tflops_per_w"], _f(r.get("peak_conv_effective_tflops_per_w"), "%.2f")))
    a("")
    a("![efficiency vs voltage](images/reproduction/efficiency_vs_voltage.png)")
    a("")
    a("![conv-pass efficiency vs voltage](images/reproduction/conv_efficiency_vs_voltage.png)")
    a("")
    a("![throughput vs voltage](images/reproduction/throughput_vs_voltage.png)")
    a("")
    a("![power vs voltage](images/reproduction/power_vs_voltage.png)")
    a("")
    a("![energy breakdown vs voltage](images/reproduction/energy_breakdown_vs_voltage.png)")
    a("")
    a("## Real trace")
    a("")
    tr = ev.get("trace")
    if not tr:
        a("No bundled trace under configs/traces/: this part was skipped.")
    else:
        a("Trace `%s` (recorded by scripts/gen_trace.py from real training; docs/trace-generator.md). "
          "Its masks are sub-structured: a trace fixes the masks and bitmaps, so "
          "`workload.pruning` of a config does not apply. The unstructured row is therefore the "
          "*unstructured baseline's hardware* (crossbar routing, no reorder unit, no DBL) on "
          "SWPU's sub-structured masks, not unstructured pruning. Each recorded step is one "
          "simulated iteration."
          % meta["trace"])
        a("")
        a("| config | cycles | chip uJ | chip uJ per recorded step | utilization | conv compute "
          "utilization | conv-pass TFLOPS/W |")
        a("|---|---:|---:|---|---:|---:|---:|")
        for name in ("swpu", "unstructured"):
            m = tr.get(name)
            if m is None:
                a("| %s | run failed ||||||" % name)
                continue
            a("| %s | %.0f | %.1f | %s | %.3f | %.3f | %.2f |" % (
                name, m["cycles"], m["chip_uj"],
                ", ".join("%.1f" % i["energy_chip_uj"] for i in m["iterations"]),
                m["utilization"], m["conv_compute_utilization"], m["conv_effective_tflops_per_w"]))
        if tr.get("swpu") and tr.get("unstructured"):
            a("")
            a("Ratio unstructured-hardware / SWPU on the trace: cycles %.2fx, chip energy %.2fx, "
              "conv-pass chip energy %.2fx." % (
                  tr["unstructured"]["cycles"] / tr["swpu"]["cycles"],
                  tr["unstructured"]["chip_uj"] / tr["swpu"]["chip_uj"],
                  tr["unstructured"]["conv_chip_uj"] / tr["swpu"]["conv_chip_uj"]))
        steps = trace_steps(os.path.join(REPO_ROOT, meta["trace"]))
        if steps:
            a("")
            a("Recorded steps (training iteration, mask update): %s. The simulator runs the "
              "reorder unit only at a step with `mask_update` true (and at the first), so a "
              "later step whose masks changed since (updates between non-consecutive recorded "
              "steps) runs with the clustering of the earlier step's masks." % ", ".join(
                  "%s (%s)" % (i, "yes" if u else "no") for i, u in steps))
        a("")
        a("```")
        for c in tr.get("commands", {}).values():
            a(c)
        a("```")
    a("")
    a("## Runs")
    a("")
    a("| run | status | seconds | command (add `--out DIR -q`) |")
    a("|---|---|---:|---|")
    for r in meta["run_list"]:
        a("| %s | %s | %.1f | `%s` |" % (r["id"], r["status"] if r["status"] == "ok" else
                                         "**failed**: " + _md_escape(r["error"]),
                                         r["seconds"], _md_escape(r["command"])))
    a("")
    return "\n".join(L)


# ----------------------------------------------------------------------------- plots

def _save(fig, path):
    fig.savefig(path, dpi=120, format="png")


def write_plots(ev, images_dir, subtitle):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import sweep_vf

    os.makedirs(images_dir, exist_ok=True)
    written = []
    net = ev["network"]

    # per-layer energy and cycles: SWPU vs the pruning/processor baselines
    order = [n for n in ("swpu", "dense", "structured", "unstructured", "prev_sparse_processor")
             if n in net]
    if order:
        layers = list(net[order[0]]["layers"])
        for key, fname, ylabel in (("energy_chip_uj", "layers_energy.png", "chip energy (uJ)"),
                                   ("cycles", "layers_cycles.png", "cycles")):
            fig, ax = plt.subplots(figsize=(12, 4.8))
            w = 0.8 / len(order)
            for i, n in enumerate(order):
                vals = [net[n]["layers"].get(l, {}).get(key, 0.0) for l in layers]
                ax.bar([x + (i - (len(order) - 1) / 2) * w for x in range(len(layers))], vals,
                       width=w, label=n)
            ax.set_xticks(range(len(layers)))
            ax.set_xticklabels(layers, rotation=60, ha="right", fontsize=7)
            ax.set_ylabel(ylabel + ", FF+BP+WG")
            ax.set_title("%s per layer, steady-state training iteration" %
                         ("Chip energy" if key.startswith("energy") else "Cycles"), fontsize=11)
            fig.suptitle(subtitle, fontsize=8, y=0.995)
            ax.grid(True, axis="y", alpha=0.3)
            ax.legend(fontsize=8)
            fig.tight_layout()
            _save(fig, os.path.join(images_dir, fname))
            plt.close(fig)
            written.append(fname)

    # ablation bars
    rows = [r for r in ev["ablation"] if r.get("cycles_ratio") is not None]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if rows:
        metrics = [("cycles_ratio", "cycles"), ("chip_uj_ratio", "chip energy"),
                   ("conv_chip_uj_ratio", "conv-pass chip energy")]
        w = 0.8 / len(metrics)
        for i, (k, lab) in enumerate(metrics):
            ax.bar([x + (i - 1) * w for x in range(len(rows))], [r[k] for r in rows], width=w,
                   label=lab)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([r["config"] for r in rows], fontsize=8)
        ax.set_ylabel("relative to SWPU")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no successful runs", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Ablation: cost of removing each technique (per iteration)", fontsize=11)
    fig.suptitle(subtitle, fontsize=8, y=0.995)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    _save(fig, os.path.join(images_dir, "ablation.png"))
    plt.close(fig)
    written.append("ablation.png")

    # voltage curve: scripts/sweep_vf.py's plots on rows of its CSV shape
    vrows = []
    for r in ev["vf"]:
        row = {"voltage": r["voltage"], "freq_fraction": 1.0,
               "status": "ok" if r.get("status") != "run failed" else "failed"}
        row.update(r.get("report_metrics", {}))
        vrows.append(row)
    sweep_vf.write_plots(images_dir, vrows, [1.0], subtitle + ", one iteration")
    written += list(sweep_vf.PLOTS)

    # conv-pass efficiency vs voltage: the network workload and the peak condition
    fig, ax = plt.subplots(figsize=(7, 4.5))
    pts = [(r["voltage"], r["conv_effective_tflops_per_w"]) for r in ev["vf"] if "clock_mhz" in r]
    if pts:
        ax.plot(*zip(*pts), marker="o", label="configs/swpu.json, workload of the subtitle")
    pk = [(r["voltage"], r["peak_conv_effective_tflops_per_w"]) for r in ev["vf"]
          if r.get("peak_conv_effective_tflops_per_w") is not None]
    if pk:
        ax.plot(*zip(*pk), marker="s", label="peak condition: configs/peak.json as is")
    ax.plot([0.56], [PAPER_PEAK_TFLOPS_W], marker="*", ms=14, ls="none", color="red",
            label="paper: 126.04 TFLOPS/W at 0.56 V")
    ax.set_xlabel("supply voltage (V)")
    ax.set_ylabel("effective TFLOPS/W, conv passes (chip)")
    ax.set_yscale("log")
    ax.set_title("Conv-pass energy efficiency vs voltage", fontsize=11)
    fig.suptitle(subtitle, fontsize=8, y=0.995)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, os.path.join(images_dir, "conv_efficiency_vs_voltage.png"))
    plt.close(fig)
    written.append("conv_efficiency_vs_voltage.png")
    return written
