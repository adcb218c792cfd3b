"""The baseline configs of the paper reproduction (scripts/reproduce_paper) and the paper's numbers.

Baselines (configs/baselines/*.json) are full copies of configs/swpu.json that differ only in the
fields listed in BASELINES. check_baselines() verifies exactly that (and fails loudly on drift);
write_baselines() regenerates the files from configs/swpu.json.
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


def rel(path):
    p = os.path.abspath(path)
    r = os.path.relpath(p, REPO_ROOT)
    return p if r.startswith("..") else r


class DriftError(Exception):
    """A baseline config no longer matches configs/swpu.json plus its documented fields."""


# ----------------------------------------------------------------------------- baselines

def _structured_sparsity(swpu):
    # Paper: sub-structured pruning reaches a 50.1% higher pruning ratio than structured pruning
    # at equal accuracy, so structured runs at the sub-structured ratio / 1.501.
    return round(swpu["workload"]["weight_sparsity"] / (1.0 + PAPER_PRUNING_GAIN), 4)


# The crossbar machine (decoupled groups) exists on the fast engine only (docs/architecture.md).
_CROSSBAR = {"compaction.routing": "crossbar", "simulation.engine": "fast"}
_NO_TECHNIQUES = dict(_CROSSBAR, **{"dbl.enabled": False, "reorder_unit.enabled": False})

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
        lambda s: dict(_CROSSBAR))),
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
        write_text_atomic(path, json.dumps(make_baseline(name, swpu), indent=2) + "\n")
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
                                "scripts/swpu/baselines.py and to docs/baselines.md)"
                                % rel(os.path.join(baseline_dir, fn)))
    if problems:
        raise DriftError("\n".join(problems))
