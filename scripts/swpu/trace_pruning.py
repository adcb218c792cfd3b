"""Dynamic weight pruning of the trace generator (scripts/gen_trace.py): masks of every pruning
mode on a layer's weights, the cubic sparsity schedule and the mask-update steps.
The method and its parameters: docs/trace-generator.md."""

import torch
import torch.nn as nn

# ---------------------------------------------------------------------------------------------
# Pruning

def _prune_lowest(scores, forced, n_prune, keep_min=1):
    """Boolean keep-mask over groups: prune the n_prune lowest-scoring groups.

    Groups in `forced` (already pruned) are always pruned; at least keep_min groups stay.
    Ties are broken by group index (stable sort), so the result is deterministic.
    """
    n = scores.numel()
    n_prune = max(int(n_prune), int(forced.sum()))
    n_prune = min(n_prune, n - keep_min)
    s = scores.clone()
    s[forced] = -1.0
    order = torch.argsort(s, stable=True)
    keep = torch.ones(n, dtype=torch.bool)
    keep[order[:n_prune]] = False
    return keep


class PrunedLayer:
    """Masks of one weighted layer at group granularity, and their application to the weights.

    conv weight W[K,C,R,S]: line mask [K,C,R], shape mask [C,R,S].
    FC weight W[K,F]: line mask [K, ceil(F/B)] (B consecutive inputs of one output neuron),
    shape mask [F] (one input neuron). Unstructured: element mask of W's shape.
    Structured: whole conv filters (the line mask is constant over (c,r) of a filter) and, for
    FC, whole input neurons (shape mask); the filter mask is also applied to the BatchNorm
    after the conv, so that a pruned filter's channel is exactly zero.
    """

    def __init__(self, name, module, bn, fc_block, prunable):
        self.name, self.module, self.bn, self.prunable = name, module, bn, prunable
        self.is_conv = isinstance(module, nn.Conv2d)
        self.fc_block = fc_block
        w = module.weight
        if self.is_conv:
            k, c, r, s = w.shape
            self.line = torch.ones(k, c, r, dtype=torch.bool)
            self.shape = torch.ones(c, r, s, dtype=torch.bool)
        else:
            k, f = w.shape
            self.line = torch.ones(k, -(-f // fc_block), dtype=torch.bool)
            self.shape = torch.ones(f, dtype=torch.bool)
        self.element = torch.ones(w.shape, dtype=torch.bool)
        self.filter = torch.ones(w.shape[0], dtype=torch.bool)  # structured conv only
        self.mask = torch.ones(w.shape, dtype=torch.bool)

    # effective element mask from the group masks
    def _from_groups(self):
        if self.is_conv:
            return self.line[:, :, :, None] & self.shape[None]
        f = self.shape.numel()
        return self.line.repeat_interleave(self.fc_block, dim=1)[:, :f] & self.shape[None, :]

    def _line_weight_counts(self):
        """Per line, the number of its weights the shape mask keeps."""
        if self.is_conv:
            return self.shape.sum(dim=2).unsqueeze(0).expand_as(self.line).to(torch.int64)
        f = self.shape.numel()
        nb = self.line.shape[1]
        pad = torch.zeros(nb * self.fc_block, dtype=torch.int64)
        pad[:f] = self.shape.to(torch.int64)
        return pad.view(nb, self.fc_block).sum(1).unsqueeze(0).expand_as(self.line)

    def _line_norms(self, w):
        if self.is_conv:
            return w.pow(2).sum(dim=3)
        k, f = w.shape
        nb = self.line.shape[1]
        sq = torch.zeros(k, nb * self.fc_block)
        sq[:, :f] = w.pow(2)
        return sq.view(k, nb, self.fc_block).sum(2)

    @torch.no_grad()
    def update(self, mode, sparsity, shape_fraction):
        """Recompute the masks for a target fraction `sparsity` of pruned weights.

        Groups are ranked by the L2 norm of their current (masked) weights; groups already
        pruned stay pruned (their weights are zero and frozen), so masks only grow sparser.
        """
        if not self.prunable or mode == "dense":
            return
        w = self.module.weight.detach() * self.mask
        n = w.numel()
        if mode == "unstructured":
            keep = _prune_lowest(w.abs().flatten(), ~self.element.flatten(),
                                 round(sparsity * n))
            self.element = keep.view(w.shape)
            self.mask = self.element.clone()
            return
        if mode == "structured":
            if self.is_conv:
                norms = w.pow(2).flatten(1).sum(1)
                self.filter = _prune_lowest(norms, ~self.filter, round(sparsity * norms.numel()))
                self.line = self.filter[:, None, None].expand_as(self.line).clone()
            else:
                norms = w.pow(2).sum(0)
                self.shape = _prune_lowest(norms, ~self.shape, round(sparsity * norms.numel()))
            self.mask = self._from_groups()
            return
        # shape-only, line-only, sub-structured. The kept fraction d = 1 - sparsity is split as
        # d = d_shape * d_line with d_shape = d ** shape_fraction (1 for shape-only, 0 for
        # line-only); line pruning then removes lines until the effective mask keeps d of W.
        f_shape = {"shape-only": 1.0, "line-only": 0.0}.get(mode, shape_fraction)
        d = 1.0 - sparsity
        if f_shape > 0:
            norms = w.pow(2).sum(0)  # conv: [C,R,S]; FC: [F]
            n_shape = norms.numel()
            self.shape = _prune_lowest(norms.flatten(), ~self.shape.flatten(),
                                       round((1.0 - d ** f_shape) * n_shape)).view(self.shape.shape)
        if f_shape < 1:
            counts = self._line_weight_counts().flatten()
            norms = self._line_norms(w * self._from_groups()).flatten()
            # lines already pruned, or with no weight left after shape pruning, go first
            forced = (~self.line.flatten()) | (counts == 0)
            s = norms.clone()
            s[forced] = -1.0
            order = torch.argsort(s, stable=True)
            cum = torch.cumsum(counts[order], 0)
            need = int(counts.sum()) - int(round(d * n))  # weights that line pruning must remove
            j = int(forced.sum())
            if need > 0:
                j = max(j, int(torch.searchsorted(cum, torch.tensor(need))) + 1)
            j = min(j, counts.numel() - 1)
            keep = torch.ones(counts.numel(), dtype=torch.bool)
            keep[order[:j]] = False
            self.line = keep.view(self.line.shape)
        self.mask = self._from_groups()

    @torch.no_grad()
    def apply(self, optimizer):
        """Zero pruned weights (and their momentum), and the BN of pruned filters."""
        w = self.module.weight
        w.mul_(self.mask)
        buf = optimizer.state.get(w, {}).get("momentum_buffer")
        if buf is not None:
            buf.mul_(self.mask)
        bn_mask = self._bn_mask()
        if bn_mask is not None:
            for p in (self.bn.weight, self.bn.bias):
                p.mul_(bn_mask)
                b = optimizer.state.get(p, {}).get("momentum_buffer")
                if b is not None:
                    b.mul_(bn_mask)

    def _bn_mask(self):
        if self.bn is None or self.filter.all():
            return None
        return self.filter.to(self.bn.weight.dtype)

    @torch.no_grad()
    def mask_grads(self):
        """Pruned weights get no gradient: the chip computes WG only for unpruned weights."""
        w = self.module.weight
        if w.grad is not None and not self.mask.all():
            w.grad.mul_(self.mask)
        bn_mask = self._bn_mask()
        if bn_mask is not None:
            for p in (self.bn.weight, self.bn.bias):
                if p.grad is not None:
                    p.grad.mul_(bn_mask)

    def sparsity(self):
        return 1.0 - float(self.mask.sum()) / self.mask.numel()

    def trace_masks(self, mode):
        if mode == "unstructured":
            return {"element_mask": self.element.numpy()}
        return {"line_mask": self.line.numpy(), "shape_mask": self.shape.numpy()}


def cubic_target(t, t0, t1, s_i, s_f):
    """Zhu & Gupta (2017) gradual pruning: s_t = s_f + (s_i - s_f) (1 - (t - t0)/(t1 - t0))^3."""
    if t <= t0:
        return s_i if t1 > t0 else s_f
    if t >= t1:
        return s_f
    return s_f + (s_i - s_f) * (1.0 - (t - t0) / (t1 - t0)) ** 3


def update_steps(total, t0, t1, interval):
    """Iterations at which the masks are recomputed: t0, t0 + interval, ..., and t1."""
    steps = set(range(t0, t1 + 1, interval))
    steps.add(t1)
    return {t for t in steps if 0 <= t < total}
