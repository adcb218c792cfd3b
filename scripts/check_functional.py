#!/usr/bin/python3
"""Recomputes every result of a swpu-sim tensor dump (--dump-tensors DIR) with PyTorch and checks it
against a bound derived from FP16 operands and FP32 accumulation (docs/functional.md).

For each dumped (iteration, layer, pass) the reference is computed in float64 from the dumped FP16
operands, with the mask applied to the weights: torch.nn.functional.conv2d (FF),
torch.nn.grad.conv2d_input (BP), torch.nn.grad.conv2d_weight (WG), and the linear-layer products
for FC. FP16 x FP16 products are exact in FP32, so the only errors are the FP32 additions: for an
output that sums n non-zero products p_j in any order,

    |sim - ref| <= gamma(n) * sum_j |p_j|,   gamma(n) = n u / (1 - n u),   u = 2^-24,

(the classical bound of recursive or tree summation). n and sum |p_j| are computed per output
element by the same operators on the operands' non-zero indicators and absolute values. A result
stored in FP16 ("*_stored") adds one rounding: + 2^-11 |ref| + 2^-25 (FP16 subnormal spacing / 2).

Exit status: 0 every element within its bound, 1 a mismatch, 2 a dump that cannot be read."""

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

U32 = 2.0 ** -24   # FP32 unit roundoff
U16 = 2.0 ** -11   # FP16 unit roundoff
SUB16 = 2.0 ** -25  # half the FP16 subnormal spacing


class DumpError(Exception):
    pass


def load(root, entry, name):
    f = entry["files"].get(name)
    if f is None:
        raise DumpError("%s %s %s: no '%s' file in the manifest" % (entry["layer"], entry["pass"],
                                                                     "it%d" % entry["iteration"], name))
    path = os.path.join(root, f["file"])
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DumpError("%s: cannot read: %s" % (path, e))
    want = {"float16": np.float16, "float32": np.float32, "uint8": np.uint8}[f["dtype"]]
    if a.dtype != want or list(a.shape) != list(f["shape"]):
        raise DumpError("%s: holds %s %s, the manifest says %s %s" % (path, a.dtype, list(a.shape),
                                                                       f["dtype"], f["shape"]))
    return torch.from_numpy(a.astype(np.float64))


def reference(operands, op, args):
    """(reference, sum of |products|, count of non-zero products) of one result: the operator on
    the operands, on their absolute values and on their non-zero indicators."""
    vals = op(*operands, **args)
    mags = op(*[t.abs() for t in operands], **args)
    cnts = op(*[(t != 0).double() for t in operands], **args)
    return vals, mags, cnts


def gamma(n):
    nu = n * U32
    return nu / (1.0 - nu)


def compute(e, root):
    """Yields (result name, simulated, reference, bound) of one dump entry."""
    p = e["pass"]
    mask = load(root, e, "mask")
    fc = e["type"] == "fc"
    if fc:
        ops = {
            "FF": lambda x, w: x @ w.T,
            "BP": lambda g, w: g @ w,
            "WG": lambda g, x: g.T @ x,
        }
        kw = {}
    else:
        st, pad = e["stride"], e["padding"]
        kw = {"stride": st, "padding": pad}
    if p == "FF":
        x, w = load(root, e, "input"), load(root, e, "weight") * mask
        if fc:
            ref, mag, cnt = reference((x, w), ops["FF"], {})
        else:
            ref, mag, cnt = reference((x, w), F.conv2d, kw)
        outs = [("output", False), ("output_stored", True)]
    elif p == "BP":
        g, w = load(root, e, "grad_output"), load(root, e, "weight") * mask
        if fc:
            ref, mag, cnt = reference((g, w), ops["BP"], {})
        else:
            in_shape = [e["batch"], e["in_channels"]] + list(e["in_hw"])
            op = lambda gg, ww, **a: torch.nn.grad.conv2d_input(in_shape, ww, gg, **a)  # noqa: E731
            ref, mag, cnt = reference((g, w), op, kw)
        outs = [("grad_input", False), ("grad_input_stored", True)]
    elif p == "WG":
        g, x = load(root, e, "grad_output"), load(root, e, "input")
        if fc:
            ref, mag, cnt = reference((g, x), ops["WG"], {})
        else:
            w_shape = [e["out_channels"], e["in_channels"]] + list(e["kernel"])
            op = lambda gg, xx, **a: torch.nn.grad.conv2d_weight(xx, w_shape, gg, **a)  # noqa: E731
            ref, mag, cnt = reference((g, x), op, kw)
        # Only kept weights have a gradient on the chip.
        ref, mag, cnt = ref * mask, mag * mask, cnt * mask
        outs = [("grad_weight", False)]
    else:
        raise DumpError("unknown pass %r" % p)
    for name, stored in outs:
        if name not in e["files"]:
            continue
        sim = load(root, e, name)
        bound = gamma(cnt) * mag
        if stored:
            bound = bound * (1 + U16) + U16 * ref.abs() + SUB16
        yield name, sim, ref, bound, int(cnt.max().item()) if cnt.numel() else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("dir", help="directory written by swpu-sim --dump-tensors")
    ap.add_argument("--quiet", action="store_true", help="print only mismatches and the per-pass summary")
    a = ap.parse_args(argv)
    try:
        with open(os.path.join(a.dir, "manifest.json")) as f:
            m = json.load(f)
        if m.get("format") != "swpu-tensor-dump":
            raise DumpError("%s/manifest.json: format is %r, expected 'swpu-tensor-dump'"
                            % (a.dir, m.get("format")))
        if not m["entries"]:
            raise DumpError("%s/manifest.json: no entries (the dump filter selected nothing)" % a.dir)
        bad = 0
        worst = {}  # (pass, result) -> (normwise relative error, layer, largest err/bound)
        for e in m["entries"]:
            for name, sim, ref, bound, n in compute(e, a.dir):
                err = (sim - ref).abs()
                over = err > bound
                ratio = float((err / bound.clamp_min(1e-300)).max()) if err.numel() else 0.0
                scale = float(ref.abs().max()) if ref.numel() else 0.0
                rel = float(err.max()) / scale if scale > 0 else float(err.max() if err.numel() else 0.0)
                key = (e["pass"], name)
                old = worst.get(key, (-1.0, "", 0.0))
                worst[key] = (rel, e["layer"], max(ratio, old[2])) if rel > old[0] else \
                    (old[0], old[1], max(ratio, old[2]))
                tag = "it%04d %-22s %s %-18s" % (e["iteration"], e["layer"], e["pass"], name)
                if over.any():
                    bad += 1
                    idx = tuple(int(i) for i in np.unravel_index(int(torch.argmax(err / bound.clamp_min(1e-300))),
                                                                  tuple(err.shape)))
                    print("MISMATCH %s: %d of %d elements exceed the bound; worst at %s: simulated %.9g, "
                          "PyTorch %.9g, bound %.3g" % (tag, int(over.sum()), over.numel(), list(idx),
                                                        float(sim[idx]), float(ref[idx]), float(bound[idx])))
                elif not a.quiet:
                    print("ok       %s: max |err| / max |ref| = %.3e, max err/bound = %.3f, n <= %d"
                          % (tag, rel, ratio, n))
        print("worst relative error (max |err| / max |ref|) per pass and result, and the largest "
              "err/bound:")
        for (p, name), (rel, layer, ratio) in sorted(worst.items()):
            print("  %-2s %-18s %.3e  (%s)  err/bound <= %.3f" % (p, name, rel, layer, ratio))
        if bad:
            print("check_functional: %d result tensor(s) outside the FP16/FP32 bound" % bad)
            return 1
        print("check_functional: all results of %d layer-passes within the FP16/FP32 bound"
              % len(m["entries"]))
        return 0
    except DumpError as e:
        print("check_functional: %s" % e, file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError) as e:
        print("check_functional: %s: malformed dump: %s" % (a.dir, e), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
