"""Statistics of a trace that the synthetic workload is fitted to (scripts/fit_workload.py):
per-layer densities of input activations and output gradients, the distribution of Hamming
distances between filters' line masks, and how masks change from one mask update to the next."""

import numpy as np

from . import trace_format

# Histogram bins of the normalised Hamming distance between two filters' line masks.
HAMMING_BINS = np.linspace(0.0, 1.0, 21)


def pairwise_hamming(lines):
    """Normalised Hamming distances of all filter pairs of a line mask [K, J] (J lines a filter)."""
    a = lines.reshape(lines.shape[0], -1).astype(np.float32)
    j = a.shape[1]
    same = a @ a.T + (1 - a) @ (1 - a).T
    iu = np.triu_indices(a.shape[0], 1)
    return (j - same[iu]) / j


def _iteration_bitmaps(trace_dir, manifest, it):
    out = {}
    for name, e in it["layers"].items():
        out[name] = {k: trace_format.read_bitmap(trace_dir, e[k]) for k in e
                     if isinstance(e[k], dict)}
    return out


def trace_statistics(trace_dir):
    """Statistics of a trace directory (format v1), as a JSON-ready dict:

    layers[name]: input_density, grad_density (means over the recorded iterations; the
      gradient is the output gradient that reaches the layer, recorded from autograd),
      line_density, hamming_mean, hamming_hist (HAMMING_BINS), for conv layers with line masks
      (lines counted as kept when they hold a kept weight);
    evolution: between consecutive recorded mask updates, per layer the fraction of kept lines
      that are pruned at the next update (line_dropped) and of lines kept at the next update
      that were pruned before (line_added), and the same for shape groups.
    """
    m = trace_format.load_manifest(trace_dir)
    layers = {lay["name"]: lay for lay in m["layers"]}
    iters = m["iterations"]
    per_layer = {}
    masks_at = []  # (index, mask_update, {layer: (line, shape)})
    for it in iters:
        bm = _iteration_bitmaps(trace_dir, m, it)
        masks = {}
        for name, b in bm.items():
            d = per_layer.setdefault(name, {"input": [], "grad": [], "line": [], "ham": []})
            d["input"].append(float(b["input_nonzero"].mean()))
            d["grad"].append(float(b["output_grad_nonzero"].mean()))
            if "line_mask" in b and layers[name]["type"] == "conv":
                # effective lines: a line counts as kept when some weight of it is (a line
                # whose shape groups are all pruned holds no weight, whatever its line bit)
                sh = b["shape_mask"].astype(bool)
                ln = b["line_mask"].astype(bool) & sh.any(axis=2)[None]
                d["line"].append(float(ln.mean()))
                d["ham"].append(pairwise_hamming(ln))
                masks[name] = (ln, sh)
        masks_at.append((it["index"], bool(it.get("mask_update")), masks))
    out = {"trace": trace_dir, "network": m["network"], "mode": m["pruning"]["mode"],
           "iterations": [it["index"] for it in iters], "layers": {}}
    for name, d in per_layer.items():
        e = {"input_density": round(float(np.mean(d["input"])), 4),
             "grad_density": round(float(np.mean(d["grad"])), 4)}
        if d["ham"]:
            h = np.concatenate(d["ham"])
            e["line_density"] = round(float(np.mean(d["line"])), 4)
            e["hamming_mean"] = round(float(h.mean()), 4)
            e["hamming_hist"] = [round(float(x), 4) for x in
                                 np.histogram(h, HAMMING_BINS)[0] / max(1, len(h))]
        out["layers"][name] = e
    updates = [x for x in masks_at if x[1]]
    evo = []
    for (i0, _, a), (i1, _, b) in zip(updates, updates[1:]):
        per = {}
        for name in a:
            if name not in b:
                continue
            (l0, s0), (l1, s1) = a[name], b[name]
            per[name] = {
                "line_dropped": round(float((l0 & ~l1).sum() / max(1, l0.sum())), 4),
                "line_added": round(float((l1 & ~l0).sum() / max(1, l1.sum())), 4),
                "shape_dropped": round(float((s0 & ~s1).sum() / max(1, s0.sum())), 4),
                "shape_added": round(float((s1 & ~s0).sum() / max(1, s1.sum())), 4),
                "line_density": [round(float(l0.mean()), 4), round(float(l1.mean()), 4)],
            }
        evo.append({"from": i0, "to": i1, "layers": per})
    out["evolution"] = evo
    return out
