"""Accuracy-vs-sparsity curves from iterative pruning with fine-tuning (scripts/pruning_ratio.py).

One run of one pruning mode and one seed gives a whole curve: a dense network, pre-trained once
per seed (and cached, shared by every mode of that seed), is pruned up a staircase of target
sparsities; at each step the masks are raised to the step's target over a few mask updates
(the generator's L2-norm ranking, swpu.trace_pruning), the network is fine-tuned for a fixed
number of iterations with a cosine learning rate, and its accuracy on the whole test set is
measured. A dense run walks the same staircase without pruning (the same training budget),
tested at every step like the pruned runs; its last step is the reference.
"""

import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from .files import write_text_atomic
from .trace_data import augment, evaluate, load_data, normalize
from .trace_pruning import PrunedLayer
from .trace_training import ResNet18Cifar


def _data(cfg):
    name, x_tr, y_tr, x_te, y_te, mean, std = load_data(
        cfg.dataset_dir, cfg.split_seed, 0.2, cfg.train_images, cfg.test_images, cfg.dataset)
    return name, x_tr, y_tr, x_te, y_te, mean, std


def _train(model, layers, opt, data, gen, iters, lr, state, mask_steps=()):
    """`iters` SGD iterations at a cosine learning rate lr -> 0; mask_steps: {iteration: fn}."""
    name, x_tr, y_tr, _, _, mean, std = data
    pad, flip = (2 if name == "fashion-mnist" else 4), name != "digits"
    bs = state["batch_size"]
    per_epoch = len(y_tr) // bs
    model.train()
    for t in range(iters):
        if t in mask_steps:
            mask_steps[t]()
        pos = state["position"]
        if pos % per_epoch == 0 or "perm" not in state:
            state["perm"] = torch.randperm(len(y_tr), generator=gen)
        i = pos % per_epoch
        idx = state["perm"][i * bs:(i + 1) * bs]
        state["position"] = pos + 1
        x = normalize(augment(x_tr[idx], gen, pad, flip), mean, std)
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * t / iters))
        loss = F.cross_entropy(model(x), y_tr[idx])
        opt.zero_grad()
        loss.backward()
        for pl in layers:
            pl.mask_grads()
        opt.step()
        for pl in layers:
            pl.apply(opt)


@torch.no_grad()
def recalibrate_bn(model, data, gen, batches, batch_size):
    """Re-estimate every BatchNorm's running statistics on `batches` training batches (forward
    passes in training mode, cumulative average), as is usual after pruning: the statistics
    gathered before a pruning step no longer describe the pruned network's activations."""
    if batches <= 0:
        return
    name, x_tr, _, _, _, mean, std = data
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for _ in range(batches):
        idx = torch.randint(0, len(x_tr), (batch_size,), generator=gen)
        model(normalize(x_tr[idx], mean, std))
    for m, mom in zip(bns, saved):
        m.momentum = mom


def _setup(cfg, in_channels):
    model = ResNet18Cifar(cfg.width, 10, in_channels)
    layer_list = model.weighted_layers()
    layers = [PrunedLayer(n, m, bn, cfg.fc_block,
                          cfg.mode != "dense" and n != "conv1")  # the stem stays dense
              for n, m, bn in layer_list]
    return model, layers


def _optimizer(cfg, model):
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9,
                           weight_decay=cfg.weight_decay)


def pruning_ratio(layers):
    pruned = [pl for pl in layers if pl.prunable]
    if not pruned:
        return 0.0
    return 1.0 - sum(int(pl.mask.sum()) for pl in pruned) / sum(pl.mask.numel() for pl in pruned)


def pretrain(cfg, path, log):
    """Dense pre-training of one seed; cached at `path` (a torch file with its settings)."""
    key = {k: getattr(cfg, k) for k in ("dataset", "width", "train_images", "split_seed", "seed",
                                       "pretrain_iterations", "lr", "weight_decay",
                                       "batch_size")}
    if os.path.exists(path):
        ck = torch.load(path, weights_only=False)
        if ck["key"] != key:
            raise ValueError("%s: pre-trained with other settings %s, not %s"
                             % (path, ck["key"], key))
        return ck
    torch.manual_seed(cfg.seed)
    data = _data(cfg)
    model, layers = _setup(cfg, data[1].shape[1])
    opt = _optimizer(cfg, model)
    gen = torch.Generator().manual_seed(cfg.seed)
    state = {"position": 0, "batch_size": cfg.batch_size}
    iters = cfg.pretrain_iterations
    t0 = time.time()
    _train(model, layers, opt, data, gen, iters, cfg.lr, state)
    acc = evaluate(model, data[3], data[4], data[5], data[6])
    ck = {"key": key, "model": model.state_dict(), "test_accuracy": acc,
          "iterations": iters, "seconds": round(time.time() - t0, 1),
          "position": state["position"]}
    tmp = path + ".tmp"
    torch.save(ck, tmp)
    os.replace(tmp, path)
    log("pretrained seed %d: %d iterations, test accuracy %.4f, %.0f s"
        % (cfg.seed, iters, acc, ck["seconds"]))
    return ck


def run_curve(cfg, checkpoint, log=print, partial_path=None):
    """Walk the staircase cfg.levels for cfg.mode from the pre-trained checkpoint.

    Stops early after a step more than cfg.stop_below points under the pre-trained model's
    accuracy (deeper steps only lose more). A dense run walks every step and is tested after
    each (the same BatchNorm re-estimation and random draws as a pruned run); its last point is
    the reference, the earlier ones show how much the network still learns.
    Returns a dict with one point per step: target, measured pruning ratio, test accuracy.
    """
    torch.manual_seed(cfg.seed + 1000)
    data = _data(cfg)
    model, layers = _setup(cfg, data[1].shape[1])
    model.load_state_dict(checkpoint["model"])
    gen = torch.Generator().manual_seed(cfg.seed + 1000)
    state = {"position": checkpoint["position"], "batch_size": cfg.batch_size}
    ref = checkpoint["test_accuracy"]
    points, t_start = [], time.time()
    prev = 0.0
    for li, target in enumerate(cfg.levels):
        opt = _optimizer(cfg, model)
        steps = {}
        if cfg.mode != "dense":
            n_up = cfg.ramp_updates
            for j in range(n_up):
                s = prev + (target - prev) * (j + 1) / n_up

                def step(s=s):
                    for pl in layers:
                        pl.update(cfg.mode, s, cfg.shape_fraction)
                        pl.apply(opt)
                steps[j * cfg.update_interval] = step
        _train(model, layers, opt, data, gen, cfg.finetune_iterations, cfg.finetune_lr, state,
               steps)
        prev = target
        recalibrate_bn(model, data, gen, cfg.bn_batches, cfg.batch_size)
        acc = evaluate(model, data[3], data[4], data[5], data[6])
        pt = {"target": target, "pruning_ratio": round(pruning_ratio(layers), 6),
              "test_accuracy": round(acc, 6), "seconds": round(time.time() - t_start, 1)}
        points.append(pt)
        log("%s seed %d step %d: target %.2f ratio %.4f accuracy %.4f (%.0f s)"
            % (cfg.mode, cfg.seed, li, target, pt["pruning_ratio"], acc, pt["seconds"]))
        if partial_path:
            write_text_atomic(partial_path, json.dumps({"points": points}) + "\n")
        if cfg.mode != "dense" and acc < ref - cfg.stop_below / 100.0:
            break
    return {"pretrain_accuracy": round(ref, 6), "points": points,
            "seconds": round(time.time() - t_start, 1)}


def crossing(points, floor):
    """Highest sparsity whose accuracy stays at or above `floor`, read from a curve.

    Returns (last passing measured ratio, interpolated ratio): walking the curve in order, the
    last point before the first failing one passes; the interpolated value is the linear
    crossing of the floor between it and the first failing point (equal to the measured ratio
    when no point fails). Points are (pruning_ratio, accuracy) in increasing ratio.
    """
    last = None
    for i, (r, a) in enumerate(points):
        if a >= floor - 1e-12:
            last = (r, a)
            continue
        if last is None:
            return 0.0, 0.0
        r0, a0 = last
        frac = (a0 - floor) / (a0 - a) if a0 > a else 0.0
        return r0, r0 + frac * (r - r0)
    return (last[0], last[0]) if last else (0.0, 0.0)


def mean_sd(values):
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return None, None
    return float(v.mean()), (float(v.std(ddof=1)) if len(v) > 1 else None)
