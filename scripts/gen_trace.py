#!/usr/bin/env -S /usr/bin/python3
"""Train ResNet-18 (CIFAR form) with dynamic weight pruning and write a swpu-sim trace (v1).

Run it with the system interpreter, which has Debian's PyTorch:

    /usr/bin/python3 scripts/gen_trace.py --mode sub-structured --out /tmp/trace

The trace format is docs/trace-format.md; the pruning method, its parameters and the shipped
trace are described in docs/trace-generator.md. Nothing is downloaded: the default data set is
scikit-learn's bundled digits; --dataset-dir reads a local CIFAR-10 copy.
"""

import argparse
import math
import os
import shlex
import shutil
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import swpu_trace  # noqa: E402

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as _e:  # pragma: no cover
    sys.exit("gen_trace.py needs PyTorch (%s); run it with the system interpreter: "
             "/usr/bin/python3 scripts/gen_trace.py ..." % _e)

MODES = swpu_trace.MODES
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


# ---------------------------------------------------------------------------------------------
# The network

class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class ResNet18Cifar(nn.Module):
    """ResNet-18, CIFAR form: 3x3 stride-1 stem, no max-pool, stages of 2 BasicBlocks."""

    def __init__(self, width=1.0, num_classes=10, in_channels=3):
        super().__init__()
        ch = swpu_trace.channels
        stem = ch(swpu_trace.RESNET18_STEM, width)
        self.conv1 = nn.Conv2d(in_channels, stem, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        cin = stem
        for si, base in enumerate(swpu_trace.RESNET18_STAGES):
            cout = ch(base, width)
            stride = 1 if si == 0 else 2
            setattr(self, "layer%d" % (si + 1),
                    nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)

    def weighted_layers(self):
        """[(trace name, weight module, following BatchNorm or None)] in trace order."""
        out = [("conv1", self.conv1, self.bn1)]
        for si in range(4):
            for bi, block in enumerate(getattr(self, "layer%d" % (si + 1))):
                prefix = "layer%d.%d" % (si + 1, bi)
                out.append((prefix + ".conv1", block.conv1, block.bn1))
                out.append((prefix + ".conv2", block.conv2, block.bn2))
                if block.downsample is not None:
                    out.append((prefix + ".downsample", block.downsample[0], block.downsample[1]))
        out.append(("fc", self.fc, None))
        return out


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


# ---------------------------------------------------------------------------------------------
# Data

class DataError(Exception):
    pass


def load_data(dataset_dir, split_seed, test_fraction, train_images, test_images):
    """Return (name, x_train, y_train, x_test, y_test, mean, std); images in [0,1], [N,3,32,32]."""
    if dataset_dir is None:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        d = load_digits()
        idx = np.arange(len(d.target))
        tr, te = train_test_split(idx, test_size=test_fraction, random_state=split_seed,
                                  stratify=d.target)
        x = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)
        x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
        x = x.clamp(0.0, 1.0).repeat(1, 3, 1, 1).contiguous()
        y = torch.from_numpy(d.target.astype(np.int64))
        x_tr, y_tr, x_te, y_te = x[tr], y[tr], x[te], y[te]
        m = float(x_tr.mean())
        sd = float(x_tr.std())
        mean, std = (m, m, m), (sd, sd, sd)
        name = "digits"
    else:
        import torchvision
        if not os.path.isdir(dataset_dir):
            raise DataError("--dataset-dir %s: no such directory" % dataset_dir)
        try:
            tr = torchvision.datasets.CIFAR10(root=dataset_dir, train=True, download=False)
            te = torchvision.datasets.CIFAR10(root=dataset_dir, train=False, download=False)
        except RuntimeError as e:
            raise DataError("--dataset-dir %s: no CIFAR-10 (python version, directory "
                            "cifar-10-batches-py) found there: %s" % (dataset_dir, e))

        def tensors(ds):
            xx = torch.from_numpy(np.asarray(ds.data)).permute(0, 3, 1, 2).float() / 255.0
            return xx.contiguous(), torch.tensor(ds.targets, dtype=torch.int64)

        x_tr, y_tr = tensors(tr)
        x_te, y_te = tensors(te)
        mean, std = CIFAR_MEAN, CIFAR_STD
        name = "cifar10"
    g = torch.Generator().manual_seed(split_seed)
    if train_images:
        sel = torch.randperm(len(y_tr), generator=g)[:train_images]
        x_tr, y_tr = x_tr[sel], y_tr[sel]
    if test_images:
        sel = torch.randperm(len(y_te), generator=g)[:test_images]
        x_te, y_te = x_te[sel], y_te[sel]
    return name, x_tr, y_tr, x_te, y_te, mean, std


def augment(x, gen, pad, flip):
    """Random translation by up to `pad` pixels (zero fill) and optional horizontal flip."""
    n, _, h, w = x.shape
    if pad:
        xp = F.pad(x, (pad, pad, pad, pad))
        offs = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen)
        x = torch.stack([xp[i, :, offs[i, 0]:offs[i, 0] + h, offs[i, 1]:offs[i, 1] + w]
                         for i in range(n)])
    if flip:
        f = torch.rand(n, generator=gen) < 0.5
        x = torch.where(f[:, None, None, None], x.flip(3), x)
    return x


def normalize(x, mean, std):
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    return (x - m) / s


@torch.no_grad()
def evaluate(model, x, y, mean, std, batch=250):
    model.eval()
    correct = 0
    for i in range(0, len(y), batch):
        out = model(normalize(x[i:i + batch], mean, std))
        correct += int((out.argmax(1) == y[i:i + batch]).sum())
    return correct / max(1, len(y))


# ---------------------------------------------------------------------------------------------
# Training with recording

class Recorder:
    """Hooks that capture the non-zero bitmaps of the first `batch` images of a training step."""

    def __init__(self, layers, batch):
        self.batch = batch
        self.on = False
        self.act, self.grad = {}, {}
        self.handles = []
        for name, module, _ in layers:
            self.handles.append(module.register_forward_pre_hook(self._pre(name)))
            self.handles.append(module.register_forward_hook(self._post(name)))

    def _pre(self, name):
        def hook(module, inputs):
            if self.on:
                self.act[name] = (inputs[0][:self.batch] != 0).detach().numpy()
        return hook

    def _post(self, name):
        def hook(module, inputs, output):
            if self.on and output.requires_grad:
                def grad_hook(g):
                    self.grad[name] = (g[:self.batch] != 0).detach().numpy()
                output.register_hook(grad_hook)
        return hook

    def start(self):
        self.act, self.grad, self.on = {}, {}, True

    def stop(self):
        self.on = False

    def remove(self):
        for h in self.handles:
            h.remove()


def _log(msg):
    print(msg, flush=True)


def run(cfg, log=_log):
    """Train with dynamic pruning; write the trace if cfg.out is set. Return a result dict.

    cfg: an argparse.Namespace from build_parser() (see --help for the fields).
    """
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.use_deterministic_algorithms(True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t_start = time.time()
    dname, x_tr, y_tr, x_te, y_te, mean, std = load_data(
        cfg.dataset_dir, cfg.split_seed, cfg.test_fraction, cfg.train_images, cfg.test_images)
    if len(y_tr) < cfg.batch_size:
        raise DataError("the training set has %d images, fewer than --batch-size %d"
                        % (len(y_tr), cfg.batch_size))
    iters_per_epoch = len(y_tr) // cfg.batch_size
    total = cfg.iterations if cfg.iterations else cfg.epochs * iters_per_epoch
    out_dir = getattr(cfg, "out", None)
    record = resolve_record(cfg, total) if out_dir else set()

    model = ResNet18Cifar(cfg.width, 10)
    layer_list = model.weighted_layers()
    pruned_names = [n for n, _, _ in layer_list
                    if cfg.mode != "dense"
                    and not (n == "conv1" and not cfg.prune_first_conv)
                    and not (n == "fc" and cfg.no_prune_fc)]
    layers = [PrunedLayer(n, m, bn, cfg.fc_block, n in pruned_names) for n, m, bn in layer_list]
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)
    t0 = int(round(cfg.prune_start * total))
    t1 = min(total - 1, max(t0, int(round(cfg.prune_end * total))))
    steps = update_steps(total, t0, t1, cfg.update_interval) if cfg.mode != "dense" else set()
    recorder = Recorder(layer_list, getattr(cfg, "trace_batch", 1))
    gen = torch.Generator().manual_seed(cfg.seed)
    pad, flip = 4, dname != "digits"

    net_layers = swpu_trace.resnet18_cifar_layers(cfg.width, 10, (3, 32, 32))
    iterations = []
    if out_dir:
        prepare_out_dir(out_dir, cfg.overwrite)

    perm = None
    for t in range(total):
        e, i = divmod(t, iters_per_epoch)
        if i == 0:
            perm = torch.randperm(len(y_tr), generator=gen)
        idx = perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]
        x = normalize(augment(x_tr[idx], gen, pad, flip), mean, std)
        y = y_tr[idx]
        for g in optimizer.param_groups:
            g["lr"] = cfg.lr * 0.5 * (1.0 + math.cos(math.pi * t / total))
        mask_update = t in steps
        if mask_update:
            target = cubic_target(t, t0, t1, cfg.initial_sparsity, cfg.sparsity)
            for pl in layers:
                pl.update(cfg.mode, target, cfg.shape_fraction)
                pl.apply(optimizer)
        rec = t in record
        if rec:
            recorder.start()
        model.train()
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        recorder.stop()
        for pl in layers:
            pl.mask_grads()
        optimizer.step()
        for pl in layers:
            pl.apply(optimizer)
        acc = float((logits.argmax(1) == y).float().mean())
        if rec:
            iterations.append(write_iteration(out_dir, t, float(loss), acc, mask_update, layers,
                                              recorder, cfg.mode))
            log("recorded iteration %d (loss %.4f, batch accuracy %.3f, mask update %s)"
                % (t, float(loss), acc, mask_update))
        if cfg.log_every and (t % cfg.log_every == 0 or t == total - 1):
            log("it %5d/%d epoch %d loss %.4f acc %.3f lr %.4f sparsity %.4f"
                % (t, total, e, float(loss), acc, optimizer.param_groups[0]["lr"],
                   overall_sparsity(layers, pruned_only=False)))
    recorder.remove()
    test_acc = evaluate(model, x_te, y_te, mean, std)
    elapsed = time.time() - t_start
    result = {
        "dataset": dname,
        "train_images": int(len(y_tr)),
        "test_images": int(len(y_te)),
        "iterations": total,
        "epochs": round(total / iters_per_epoch, 4),
        "test_accuracy": round(test_acc, 6),
        "weight_sparsity": {pl.name: round(pl.sparsity(), 6) for pl in layers},
        "pruned_layers": pruned_names,
        "pruning_ratio": round(overall_sparsity(layers, pruned_only=True), 6),
        "overall_weight_sparsity": round(overall_sparsity(layers, pruned_only=False), 6),
        "elapsed_s": round(elapsed, 1),
    }
    if out_dir:
        write_manifest(cfg, net_layers, iterations, result)
    return result


def overall_sparsity(layers, pruned_only):
    sel = [pl for pl in layers if pl.prunable or not pruned_only]
    tot = sum(pl.mask.numel() for pl in sel)
    kept = sum(int(pl.mask.sum()) for pl in sel)
    return 1.0 - kept / tot if tot else 0.0


def resolve_record(cfg, total):
    rec = set()
    for r in cfg.record_iterations or []:
        if not -total <= r < total:
            raise ArgError("--record-iterations: %d is outside the run's %d iterations "
                           "(0..%d, or negative from the end)" % (r, total, total - 1))
        rec.add(r % total)
    if cfg.record_every:
        rec.update(range(0, total, cfg.record_every))
    if not rec:
        rec.add(total - 1)
    return rec


class ArgError(Exception):
    pass


def prepare_out_dir(out, overwrite):
    if os.path.exists(out) and not os.path.isdir(out):
        raise ArgError("--out %s exists and is not a directory" % out)
    if os.path.isdir(out) and os.listdir(out):
        if not overwrite:
            raise ArgError("--out %s is not empty (use --overwrite to replace a trace there)"
                           % out)
        for entry in os.listdir(out):
            p = os.path.join(out, entry)
            if entry == "manifest.json":
                os.remove(p)
            elif entry.startswith("it") and entry[2:].isdigit() and os.path.isdir(p):
                shutil.rmtree(p)
    os.makedirs(out, exist_ok=True)


def write_iteration(out, t, loss, acc, mask_update, layers, recorder, mode):
    d = "it%04d" % t
    entry = {"index": t, "loss": round(loss, 6), "accuracy": round(acc, 6),
             "mask_update": mask_update, "layers": {}}
    kinds = {"line_mask": "line", "shape_mask": "shape", "element_mask": "elem"}
    for pl in layers:
        e = {}
        for key, bits in pl.trace_masks(mode).items():
            e[key] = swpu_trace.write_bitmap(out, "%s/%s.%s.npy" % (d, pl.name, kinds[key]), bits)
        e["input_nonzero"] = swpu_trace.write_bitmap(out, "%s/%s.act.npy" % (d, pl.name),
                                                     recorder.act[pl.name])
        e["output_grad_nonzero"] = swpu_trace.write_bitmap(out, "%s/%s.grad.npy" % (d, pl.name),
                                                           recorder.grad[pl.name])
        entry["layers"][pl.name] = e
    return entry


def write_manifest(cfg, net_layers, iterations, result):
    source = {
        "generator": "scripts/gen_trace.py",
        "command": shlex.join([sys.executable] + sys.argv) if cfg.command is None
        else cfg.command,
        "dataset": result["dataset"],
        "seed": cfg.seed,
        "split_seed": cfg.split_seed,
        "train_images": result["train_images"],
        "test_images": result["test_images"],
        "epochs": result["epochs"],
        "iterations": result["iterations"],
        "batch_size": cfg.batch_size,
        "optimizer": {"type": "sgd", "lr": cfg.lr, "schedule": "cosine",
                      "momentum": cfg.momentum, "weight_decay": cfg.weight_decay},
        "pruning": {"target_sparsity": cfg.sparsity, "initial_sparsity": cfg.initial_sparsity,
                    "schedule": "cubic", "prune_start": cfg.prune_start,
                    "prune_end": cfg.prune_end, "update_interval": cfg.update_interval,
                    "shape_fraction": cfg.shape_fraction, "ranking": "l2-norm",
                    "regrowth": False, "pruned_layers": result["pruned_layers"]},
        "trace_batch_from": "first images of the recorded training step's mini-batch",
        "final_test_accuracy": result["test_accuracy"],
        "weight_sparsity": result["weight_sparsity"],
        "pruning_ratio": result["pruning_ratio"],
        "overall_weight_sparsity": result["overall_weight_sparsity"],
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    manifest = {
        "format": swpu_trace.FORMAT,
        "version": swpu_trace.VERSION,
        "network": {"name": "resnet18-cifar", "width": cfg.width, "num_classes": 10,
                    "input": [3, 32, 32]},
        "batch": cfg.trace_batch,
        "pruning": {"mode": cfg.mode, "fc_block": cfg.fc_block},
        "source": source,
        "layers": net_layers,
        "iterations": iterations,
    }
    with open(os.path.join(cfg.out, "manifest.json"), "w") as f:
        f.write(swpu_trace.dump_manifest(manifest))


# ---------------------------------------------------------------------------------------------
# Command line

def _int_list(text):
    try:
        return [int(v) for v in text.split(",") if v.strip() != ""]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated integers, got %r" % text)


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a positive integer, got %r" % text)
    if v < 1:
        raise argparse.ArgumentTypeError("expected a positive integer, got %r" % text)
    return v


def _unit_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number in [0, 1], got %r" % text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError("expected a number in [0, 1], got %r" % text)
    return v


def _positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a positive number, got %r" % text)
    if not v > 0 or not math.isfinite(v):
        raise argparse.ArgumentTypeError("expected a positive number, got %r" % text)
    return v


def _nonneg_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number >= 0, got %r" % text)
    if not v >= 0 or not math.isfinite(v):
        raise argparse.ArgumentTypeError("expected a number >= 0, got %r" % text)
    return v


def build_parser(with_output=True):
    p = argparse.ArgumentParser(
        prog="gen_trace.py",
        description="Train ResNet-18 (CIFAR form) with dynamic weight pruning and write a "
                    "swpu-sim trace (format v1, docs/trace-format.md).")
    a = p.add_argument
    if with_output:
        a("--out", required=True, metavar="DIR", help="trace directory to write")
        a("--overwrite", action="store_true",
          help="replace the manifest and itNNNN/ directories of a trace already in --out")
    g = p.add_argument_group("network")
    g.add_argument("--width", type=_positive_float, default=1.0,
                   help="channel multiplier: channels = max(1, round(base * width)) (default 1.0)")
    g = p.add_argument_group("data")
    g.add_argument("--dataset-dir", metavar="DIR",
                   help="directory holding CIFAR-10 (cifar-10-batches-py/) to train on instead "
                        "of scikit-learn's bundled digits; never downloaded")
    g.add_argument("--split-seed", type=int, default=0,
                   help="seed of the digits train/test split and of the image subsets (default 0)")
    g.add_argument("--test-fraction", type=_unit_float, default=0.2,
                   help="digits: fraction of the 1797 images held out for testing (default 0.2)")
    g.add_argument("--train-images", type=_positive_int,
                   help="use only this many training images (a seeded subset)")
    g.add_argument("--test-images", type=_positive_int,
                   help="use only this many test images (a seeded subset)")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=_positive_int, default=10, help="epochs (default 10)")
    g.add_argument("--iterations", type=_positive_int,
                   help="train for exactly this many iterations (overrides --epochs)")
    g.add_argument("--batch-size", type=_positive_int, default=64,
                   help="training mini-batch (default 64)")
    g.add_argument("--lr", type=_positive_float, default=0.05,
                   help="initial SGD learning rate, cosine-annealed to 0 (default 0.05)")
    g.add_argument("--momentum", type=_unit_float, default=0.9, help="SGD momentum (default 0.9)")
    g.add_argument("--weight-decay", type=_nonneg_float, default=5e-4,
                   help="L2 weight decay (default 5e-4)")
    g.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    g.add_argument("--threads", type=_positive_int,
                   help="PyTorch CPU threads (default: PyTorch's choice)")
    g.add_argument("--log-every", type=int, default=0, metavar="N",
                   help="print training progress every N iterations (default: off)")
    g = p.add_argument_group("pruning")
    g.add_argument("--mode", choices=MODES, default="sub-structured",
                   help="pruning mode (default sub-structured)")
    g.add_argument("--sparsity", type=_unit_float, default=0.8,
                   help="final target fraction of pruned weights in each pruned layer "
                        "(default 0.8)")
    g.add_argument("--initial-sparsity", type=_unit_float, default=0.0,
                   help="target at the start of the pruning window (default 0)")
    g.add_argument("--prune-start", type=_unit_float, default=0.1,
                   help="pruning window start, as a fraction of the iterations (default 0.1)")
    g.add_argument("--prune-end", type=_unit_float, default=0.7,
                   help="pruning window end, where the target reaches --sparsity (default 0.7)")
    g.add_argument("--update-interval", type=_positive_int, default=10,
                   help="recompute masks every this many iterations in the window (default 10)")
    g.add_argument("--shape-fraction", type=_unit_float, default=0.5,
                   help="sub-structured: share of the kept density d = 1 - sparsity given to "
                        "shape pruning, d_shape = d ** shape_fraction; line pruning does the "
                        "rest (default 0.5)")
    g.add_argument("--fc-block", type=_positive_int, default=16,
                   help="FC line length B: consecutive inputs of one output neuron (default 16)")
    g.add_argument("--prune-first-conv", action="store_true",
                   help="also prune the stem conv (default: it stays dense)")
    g.add_argument("--no-prune-fc", action="store_true",
                   help="leave the FC layer dense (default: it is pruned)")
    if with_output:
        g = p.add_argument_group("recording")
        g.add_argument("--record-iterations", type=_int_list, metavar="I,J,...",
                       help="0-based iterations to record; negative counts from the end "
                            "(-1 = last). Default, without --record-every: the last iteration")
        g.add_argument("--record-every", type=_positive_int, metavar="M",
                       help="record iterations 0, M, 2M, ...")
        g.add_argument("--trace-batch", type=_positive_int, default=4,
                       help="images recorded per iteration: the first of the training "
                            "mini-batch (default 4)")
    return p


def check_args(p, cfg):
    if cfg.prune_end < cfg.prune_start:
        p.error("--prune-end (%g) is before --prune-start (%g)" % (cfg.prune_end, cfg.prune_start))
    if cfg.initial_sparsity > cfg.sparsity:
        p.error("--initial-sparsity (%g) exceeds --sparsity (%g)"
                % (cfg.initial_sparsity, cfg.sparsity))
    if cfg.sparsity >= 1.0:
        p.error("--sparsity must be below 1")
    if cfg.test_fraction <= 0.0 or cfg.test_fraction >= 1.0:
        p.error("--test-fraction must be strictly between 0 and 1")
    if getattr(cfg, "trace_batch", 0) > cfg.batch_size:
        p.error("--trace-batch (%d) exceeds --batch-size (%d)" % (cfg.trace_batch, cfg.batch_size))
    if cfg.dataset_dir is not None and not os.path.isdir(cfg.dataset_dir):
        p.error("--dataset-dir %s: no such directory" % cfg.dataset_dir)


def main(argv=None):
    p = build_parser()
    cfg = p.parse_args(argv)
    cfg.command = None if argv is None else shlex.join(["scripts/gen_trace.py"] + list(argv))
    check_args(p, cfg)
    try:
        res = run(cfg)
    except (ArgError, DataError) as e:
        p.error(str(e))
    print("dataset %s (%d train / %d test images), %d iterations (%.2f epochs), %.0f s"
          % (res["dataset"], res["train_images"], res["test_images"], res["iterations"],
             res["epochs"], res["elapsed_s"]))
    print("final test accuracy: %.4f" % res["test_accuracy"])
    print("weight sparsity per layer (mode %s):" % cfg.mode)
    for name, s in res["weight_sparsity"].items():
        print("  %-20s %.4f%s" % (name, s, "" if name in res["pruned_layers"] else "  (not pruned)"))
    print("pruning ratio over the pruned layers: %.4f; over all conv+fc weights: %.4f"
          % (res["pruning_ratio"], res["overall_weight_sparsity"]))
    print("trace written to %s" % cfg.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
