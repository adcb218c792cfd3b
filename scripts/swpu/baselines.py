"""The baseline configs of the paper reproduction (scripts/reproduce_paper) and the paper's numbers.

Each baseline (configs/baselines/NAME.json) is an overlay: `"extends": "../swpu.json"` plus only
the fields listed for it in BASELINES, so a change to configs/swpu.json reaches every baseline.
check_baselines() verifies that each file holds exactly its documented fields (and that no
undocumented file is in the directory); write_baselines() regenerates the files from BASELINES.

Adding a machine is one entry in BASELINES (with `claims` naming the paper claims it is a
baseline of); reproduce_paper and scripts/reconstruction_space.py pick it up from there.
"""

import collections
import json
import os

from .files import write_text_atomic
from .simulator import REPO_ROOT

SWPU_CONFIG = os.path.join(REPO_ROOT, "configs", "swpu.json")
PEAK_CONFIG = os.path.join(REPO_ROOT, "configs", "peak.json")
BASELINE_DIR = os.path.join(REPO_ROOT, "configs", "baselines")
TRACES_DIR = os.path.join(REPO_ROOT, "configs", "traces")
TRACE_GEN_DOC = os.path.join(REPO_ROOT, "docs", "trace-generator.md")
# what every overlay extends, relative to configs/baselines/
EXTENDS = "../swpu.json"

# The paper's numbers (abstract of the TCSI 2022 paper; shared/ARCHITECTURE.md section 1).
# They are only compared against: none of them feeds a config.
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


def rel(path):
    p = os.path.abspath(path)
    r = os.path.relpath(p, REPO_ROOT)
    return p if r.startswith("..") else r


class DriftError(Exception):
    """A baseline overlay holds other fields than its documented ones, or is not a documented one."""


# ----------------------------------------------------------------------------- baselines

class Baseline(object):
    """A machine compared with SWPU: what it is, why, the fields that differ from
    configs/swpu.json, the paper claims it is a baseline of ("3": sub-structured vs unstructured
    pruning; "4", "5": a previous sparse training processor), and for an ablation the technique
    it removes."""

    def __init__(self, what, why, fields, claims=(), technique=None):
        self.what, self.why, self.fields = what, why, collections.OrderedDict(fields)
        self.claims, self.technique = tuple(claims), technique


# Crossbar routing; its machines run on the fast engine like every machine of the reproduction (for
# speed: both engines model them, docs/architecture.md).
_CROSSBAR = [("compaction.routing", "crossbar"), ("simulation.engine", "fast")]
# The fine-grained machine: decoupled groups, per-group crossbars, element-indexed weights
# (docs/baselines.md "The fine-grained machine").
_FINE_GRAINED = _CROSSBAR + [("pe_array.group_sync", "decoupled"), ("reorder_unit.enabled", False),
                             ("workload.pruning", "unstructured")]
# The previous processors run on the fast engine like every machine of the reproduction.
_FAST = [("simulation.engine", "fast")]

# name -> Baseline. Reasons and citations: docs/baselines.md.
BASELINES = collections.OrderedDict([
    ("dense", Baseline(
        "the SWPU chip running dense training",
        "upper bound of the work: what weight pruning saves on the same machine",
        [("workload.pruning", "dense")])),
    ("structured", Baseline(
        "the SWPU chip with structured (whole-filter) pruning",
        "the paper's +50.1% pruning ratio is against structured pruning. Its weight sparsity is "
        "SWPU's unless a measured pruning-ratio result exists (scripts/pruning_ratio.py): then "
        "SWPU's sparsity / (1 + the measured gain), set by reproduce_paper on the command line "
        "(structured_sparsity()); no paper value feeds it",
        [("workload.pruning", "structured")])),
    ("unstructured", Baseline(
        "the fine-grained machine: unstructured (element-wise) pruning at SWPU's weight sparsity "
        "on SWPU's MACs, buffers and DRAM, each line read once and broadcast into per-group "
        "operand FIFOs, decoupled groups with per-group crossbars, weights stored as packed "
        "value + index words, no reorder unit",
        "the paper's 1.53x comparison: sub-structured vs fine-grained (unstructured) pruning at "
        "equal weight sparsity, against the fine-grained design a competent team would build "
        "(SparTen, SIGMA, Trainer); at 0% sparsity it costs what the dense config costs apart "
        "from its routing (docs/baselines.md)",
        _FINE_GRAINED, claims=("3",))),
    ("ganpu_like", Baseline(
        "a GANPU-like processor (ISSCC 2020): no weight pruning, zero skipping of activations "
        "(FF), output gradients (BP) and both (WG), lockstep groups with a shared compaction "
        "network, no reorder unit, FP16",
        "a previous sparse training processor of the paper's 3.72x / 4.69x comparison (the "
        "paper's 126.04 TFLOPS/W is quoted as 1.67x GANPU's)",
        _FAST + [("workload.pruning", "dense"), ("reorder_unit.enabled", False)],
        claims=("4", "5"))),
    ("lnpu_like", Baseline(
        "an LNPU-like processor (ISSCC 2019): no weight pruning, FP8 multipliers and operands, "
        "zero skipping of activations in FF and output gradients in BP only (none in WG), "
        "lockstep groups, no reorder unit",
        "a previous sparse training processor of the paper's 3.72x / 4.69x comparison",
        _FAST + [("workload.pruning", "dense"), ("reorder_unit.enabled", False),
                 ("pe_array.mult_format", "fp8"), ("skip.wg_activations", False),
                 ("skip.wg_gradients", False)],
        claims=("4", "5"))),
    ("coarse_fine_like", Baseline(
        "a PNPU-like processor (VLSI 2020 / SSC-L 2021: stochastic coarse-fine weight pruning, "
        "input/output/weight zero skipping in every training stage, a weight-sparsity balancer, "
        "FP8): weights pruned to element granularity at SWPU's sparsity on the fine-grained "
        "machine (decoupled groups balance the load), every zero skipped, FP8",
        "a previous sparse training processor of the paper's 3.72x / 4.69x comparison",
        _FINE_GRAINED + [("pe_array.mult_format", "fp8")],
        claims=("4", "5"))),
    ("trainer_like", Baseline(
        "a Trainer-like processor (VLSI 2021): dynamic fine-grained weight pruning on the "
        "fine-grained machine (decoupled groups, per-group crossbars, value + index weights) "
        "with BN/ReLU fused into the conv (its BN reformulation), FP16",
        "a previous sparse training processor of the paper's 3.72x / 4.69x comparison (same "
        "group as SWPU, in the paper's references)",
        _FINE_GRAINED + [("vector_unit.fuse_bn_relu", True)],
        claims=("4", "5"))),
    ("swpu_no_reorder", Baseline(
        "SWPU without the Hamming-distance clustering reorder unit (natural filter/channel order)",
        "ablation of technique 1",
        [("reorder_unit.enabled", False)],
        technique="Hamming-distance clustering (reorder unit)")),
    ("swpu_no_dbl", Baseline(
        "SWPU without the detect-before-load controller (detect-after-load: every line is read "
        "and zero-detected)",
        "ablation of technique 2",
        [("dbl.enabled", False)], technique="detect-before-load controller")),
    ("swpu_no_log_routing", Baseline(
        "SWPU with one shared N x L crossbar per cluster (groups still in lockstep) instead of "
        "the spatial-disconnect log-based routing with bi-directional switches",
        "ablation of technique 3",
        _CROSSBAR, technique="log-based routing + bi-directional switches")),
])
ABLATIONS = [n for n, b in BASELINES.items() if b.technique]
ABLATION_TECHNIQUE = {n: BASELINES[n].technique for n in ABLATIONS}


def baselines_of(claim_id):
    """Names of the baselines a paper claim is measured against, in BASELINES order."""
    return [n for n, b in BASELINES.items() if claim_id in b.claims]


def structured_sparsity(swpu_sparsity, pruning_result):
    """(weight sparsity of the structured baseline, how it was chosen). From the measured
    pruning-ratio gain of scripts/pruning_ratio.py when there is one (structured pruning keeps
    more weights at equal accuracy), else SWPU's own sparsity."""
    gain = (pruning_result or {}).get("relative_gain_sub_vs_structured")
    ci = ((pruning_result or {}).get("claim6_gain_sub_vs_structured") or {}).get("ci95")
    if isinstance(gain, (int, float)) and isinstance(ci, list) and len(ci) == 2 and ci[0] <= 0 <= ci[1]:
        return swpu_sparsity, ("equal to SWPU's weight sparsity %g: the measured pruning-ratio gain "
                               "%+.1f%% is not significant (its 95%% interval [%+.1f%%, %+.1f%%] "
                               "holds 0)" % (swpu_sparsity, 100 * gain, 100 * ci[0], 100 * ci[1]))
    if isinstance(gain, (int, float)) and gain > -1:
        v = round(swpu_sparsity / (1.0 + gain), 4)
        return v, ("measured: SWPU's weight sparsity %g / (1 + the measured pruning-ratio gain "
                   "%+.1f%%) = %g" % (swpu_sparsity, 100 * gain, v))
    if pruning_result:
        return swpu_sparsity, ("equal to SWPU's weight sparsity %g: the measured pruning-ratio gain is "
                               "undefined (structured pruning kept accuracy at no swept ratio)" % swpu_sparsity)
    return swpu_sparsity, ("equal to SWPU's weight sparsity %g (no measured pruning-ratio "
                           "result)" % swpu_sparsity)


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


def nest(fields):
    """{'a.b': 1} -> {'a': {'b': 1}} (key order kept)."""
    out = collections.OrderedDict()
    for path, v in fields.items():
        node = out
        parts = path.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, collections.OrderedDict())
        node[parts[-1]] = v
    return out


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f, object_pairs_hook=collections.OrderedDict)
    except (OSError, ValueError) as e:
        raise DriftError("%s: cannot read it as plain JSON: %s" % (rel(path), e))


def resolved(path, _seen=()):
    """The config a file means: its "extends" chain applied base first, overlay on top (what the
    simulator's loader does; the simulator's report carries the same as "config")."""
    cfg = load_json(path)
    ext = cfg.pop("extends", None)
    if ext is None:
        return cfg
    base = os.path.normpath(os.path.join(os.path.dirname(path), ext))
    if os.path.realpath(base) in _seen:
        raise DriftError("%s: extends %s closes a cycle" % (rel(path), ext))
    out = resolved(base, _seen + (os.path.realpath(path),))

    def merge(dst, src):
        for k, v in src.items():
            if isinstance(v, dict) and isinstance(dst.get(k), dict):
                merge(dst[k], v)
            else:
                dst[k] = v
    merge(out, cfg)
    return out


def baseline_path(name, baseline_dir=None):
    return os.path.join(baseline_dir or BASELINE_DIR, name + ".json")


def _fmt_value(v):
    return json.dumps(v)


def baseline_comment(name):
    b = BASELINES[name]
    return ("Baseline '%s': %s. Why: %s. An overlay of configs/swpu.json: only the fields below "
            "differ. Reasons and citations: docs/baselines.md. Generated by `scripts/reproduce_paper "
            "--write-baselines` from scripts/swpu/baselines.py BASELINES; scripts/reproduce_paper "
            "refuses to run if this file holds other fields." % (name, b.what, b.why))


def make_baseline(name):
    """The overlay: a _comment, "extends" and the documented fields."""
    out = collections.OrderedDict([("_comment", baseline_comment(name)), ("extends", EXTENDS)])
    out.update(nest(BASELINES[name].fields))
    return out


def write_baselines(baseline_dir=None):
    baseline_dir = baseline_dir or BASELINE_DIR
    os.makedirs(baseline_dir, exist_ok=True)
    written = []
    for name in BASELINES:
        path = baseline_path(name, baseline_dir)
        write_text_atomic(path, json.dumps(make_baseline(name), indent=2) + "\n")
        written.append(path)
    return written


def _same(a, b):
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b  # true/false/null only equal themselves (not 1, 0)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= 1e-12 * max(abs(a), abs(b))
    return a == b


def check_baselines(baseline_dir=None):
    """Every documented baseline exists, extends configs/swpu.json and holds exactly its
    documented fields with their documented values; no undocumented file is in the directory.
    Raises DriftError listing every problem."""
    baseline_dir = baseline_dir or BASELINE_DIR
    problems = []
    for name, b in BASELINES.items():
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
        if cfg.get("extends") != EXTENDS:
            problems.append("%s: \"extends\" is %s, expected %s (a baseline is an overlay of "
                            "configs/swpu.json)" % (rel(path), _fmt_value(cfg.get("extends")),
                                                    _fmt_value(EXTENDS)))
        got = flatten(collections.OrderedDict((k, v) for k, v in cfg.items() if k != "extends"))
        for k, want in b.fields.items():
            if k not in got:
                problems.append("%s: documented field %s is missing (expected %s)"
                                % (rel(path), k, _fmt_value(want)))
            elif not _same(got[k], want):
                problems.append("%s: documented field %s is %s, expected %s"
                                % (rel(path), k, _fmt_value(got[k]), _fmt_value(want)))
        for k in got:
            if k not in b.fields:
                problems.append("%s: %s = %s is not a documented field of this baseline (document "
                                "it in scripts/swpu/baselines.py BASELINES and docs/baselines.md)"
                                % (rel(path), k, _fmt_value(got[k])))
    if os.path.isdir(baseline_dir):
        for fn in sorted(os.listdir(baseline_dir)):
            if fn.endswith(".json") and fn[:-5] not in BASELINES:
                problems.append("%s is not a documented baseline (add it to BASELINES in "
                                "scripts/swpu/baselines.py and to docs/baselines.md)"
                                % rel(os.path.join(baseline_dir, fn)))
    if problems:
        raise DriftError("\n".join(problems))
